"""--validation_split_percentage: a seeded, label-stratified validation set carved out of the training rows
(hf_maskedav.data.splits.carve_validation, hf_maskedav.training.validation_split) and its use by finetune_audio.py."""

import argparse
import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from hf_maskedav.data import load_audio_source
from hf_maskedav.data.splits import carve_validation, stratified_holdout
from hf_maskedav.training.validation_split import resolve_evaluation

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_stratified_holdout_counts_no_overlap_and_seed():
    keys = ["a"] * 20 + ["b"] * 10 + ["c"] * 5
    train, held = stratified_holdout(keys, 20, seed=3)
    assert not set(train) & set(held) and sorted(train + held) == list(range(len(keys)))
    assert len(held) == 7 and Counter(keys[i] for i in held) == {"a": 4, "b": 2, "c": 1}
    assert stratified_holdout(keys, 20, seed=3) == (train, held)  # deterministic
    assert stratified_holdout(keys, 20, seed=4)[1] != held  # the seed chooses the rows
    # a tiny class keeps a training row; at least one row is held out
    train, held = stratified_holdout(["x", "x", "y"], 10, seed=0)
    assert len(held) == 1 and {"x", "y"} <= {["x", "x", "y"][i] for i in train}
    with pytest.raises(ValueError):
        stratified_holdout(keys, 100, seed=0)


@pytest.fixture
def tiny_audiofolder(tmp_path):
    """30 clips: 3 classes x (8 train + 2 test) rows in an 'official_split' column, plus a 'speaker' column."""
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        label = "abc"[i % 3]
        split = "test" if i >= 24 else "train"
        tone = np.sin(2 * np.pi * (300 + 200 * (i % 3)) * np.arange(8000) / 16000)
        soundfile.write(folder / f"clip{i:02d}.wav", (0.3 * tone + 0.01 * rng.normal(size=8000)).astype(np.float32), 16000)
        rows.append(f"clip{i:02d}.wav,{label},{split},{'s1' if i % 2 else 's2'}")
    (folder / "metadata.csv").write_text("file_name,label,official_split,speaker\n" + "\n".join(rows) + "\n")
    return folder


def _paths(source):
    return [row["audio"]["path"] for row in source.data]


def test_carve_validation_on_a_filtered_audiofolder(tiny_audiofolder):
    source = load_audio_source(None, None, str(tiny_audiofolder), split="official_split=train", label_column="label")
    assert len(source.data) == 24
    train, held = carve_validation(source, 25, seed=0)
    train_paths, held_paths = _paths(train), _paths(held)
    assert len(held_paths) == 6 and len(train_paths) == 18 and not set(train_paths) & set(held_paths)
    assert Counter(train.data["label"]) == Counter({"a": 6, "b": 6, "c": 6})
    assert Counter(held.data["label"]) == Counter({"a": 2, "b": 2, "c": 2})  # stratified
    assert all(int(Path(p).stem[4:]) < 24 for p in held_paths)  # only rows of the filtered training split
    assert _paths(carve_validation(source, 25, seed=0)[1]) == held_paths  # same seed, same rows
    assert _paths(carve_validation(source, 25, seed=1)[1]) != held_paths
    assert held.labels is source.labels and "held out" in held.description


def test_resolve_evaluation_policy(tiny_audiofolder):
    source = load_audio_source(None, None, str(tiny_audiofolder), split="official_split=train", label_column="label")
    lines = []

    def missing(split):
        raise ValueError(f"Unknown split {split!r}")

    def args(**kw):
        return argparse.Namespace(**{"seed": 0, "eval_split": "validation", "validation_split_percentage": None, **kw})

    train, held = resolve_evaluation(args(), source, missing, lines.append)  # missing split: 10 % by default
    assert len(held.data) == 2 and len(train.data) == 22 and "held out" in lines[-1]  # round(2.4)
    train, held = resolve_evaluation(args(validation_split_percentage=0), source, missing, lines.append)
    assert held is None and train is source
    train, held = resolve_evaluation(args(eval_split="none"), source, missing, lines.append)
    assert held is None
    # an explicit percentage wins over an existing evaluation split
    train, held = resolve_evaluation(args(validation_split_percentage=50), source, lambda s: source, lines.append)
    assert len(held.data) == 12 and len(train.data) == 12
    # an existing split is used as it is
    assert resolve_evaluation(args(), source, lambda s: "the split", lines.append) == (source, "the split")


def test_finetune_audio_without_an_eval_split(tiny_audiofolder, tmp_path, monkeypatch, capsys):
    from accelerate.state import AcceleratorState, GradientState, PartialState

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    spec = importlib.util.spec_from_file_location("example_finetune_audio_vsp", EXAMPLES / "finetune_audio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output_dir = tmp_path / "out"
    def reset():
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()

    reset()
    try:
        module.main([
            "--data_dir", str(tiny_audiofolder), "--train_split", "official_split=train",
            "--test_split", "official_split=test", "--max_train_steps", "2", "--per_device_train_batch_size", "4",
            "--num_threads", "1", "--output_dir", str(output_dir),
        ])
    finally:
        reset()
    out = capsys.readouterr().out
    assert "no evaluation split 'validation'" in out and "10 % of the training rows are held out" in out
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["best_eval_accuracy"] is not None and summary["test_accuracy"] is not None
