"""The training scripts for real: 2-process CPU DDP through ``accelerate launch``, kill + resume, fine-tuning,
linear probe, streaming from a local audiofolder with corrupt files.

Tiny model (32 x 32 spectrograms, 16 tokens, width 32) and tiny data so the whole file runs in about a minute.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from hf_maskedav import AudioMAEConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run_launch(args: list[str], env_extra: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_MASKEDAV_KILL_AT_STEP"}
    env.update(
        {
            "ACCELERATE_USE_CPU": "true",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(env_extra or {})
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        *args,
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _read_log(path: Path) -> dict[int, float]:
    """step -> loss; a step logged twice (killed run + resumed run) keeps its last value."""
    losses = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[record["step"]] = record["loss"]
    return losses


@pytest.fixture(scope="module")
def tiny_config_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_config")
    AudioMAEConfig(
        max_length=32,
        num_mel_bins=32,
        patch_size=8,
        patch_stride=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=64,
        decoder_meta_hidden_size=32,
        mask_ratio=0.75,
    ).save_pretrained(folder)
    return str(folder)


def _pretrain_args(config_dir: str, output_dir: Path) -> list[str]:
    # 20 clips, 2 per process per batch, 2 processes -> 5 batches per process per epoch; gradient accumulation 2 ->
    # 3 optimizer steps per epoch (the last with one micro-batch). Checkpoint 4 is in the middle of epoch 1.
    return [
        str(EXAMPLES / "pretrain_audio.py"),
        "--config_name",
        config_dir,
        "--demo_num_clips",
        "20",
        "--per_device_train_batch_size",
        "2",
        "--gradient_accumulation_steps",
        "2",
        "--max_train_steps",
        "7",
        "--checkpointing_steps",
        "4",
        "--with_tracking",
        "--output_dir",
        str(output_dir),
    ]


@pytest.fixture(scope="module")
def ddp_run(tiny_config_dir, tmp_path_factory):
    """An uninterrupted 2-process run (also the reference of the resume test)."""
    output_dir = tmp_path_factory.mktemp("ddp") / "run"
    result = _run_launch(_pretrain_args(tiny_config_dir, output_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return output_dir, result.stdout + result.stderr


def test_pretrain_two_process_ddp_checkpoint_and_reload(ddp_run):
    output_dir, log = ddp_run
    assert "world size: 2 process(es)" in log and "distributed type MULTI_CPU" in log
    assert "process 0 of 2 started" in log and "process 1 of 2 started" in log
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["completed_steps"] == 7
    # the held-out loss over the 160 validation clips, gathered from both processes (gather_for_metrics)
    assert "held-out reconstruction loss (validation)" in log and 0.0 < summary["eval_loss"] < 10.0
    # both processes read data: 5 + 5 + 2 micro-batches of 2 clips each
    assert summary["train_samples_per_process"] == {"0": 24, "1": 24}
    checkpoint = output_dir / "checkpoint-4"
    assert (checkpoint / "training_state.json").is_file() and (checkpoint / "model.safetensors").is_file()
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()
    state = json.loads((checkpoint / "training_state.json").read_text())
    assert (state["completed_steps"], state["epoch"], state["batches_in_epoch"]) == (4, 1, 2)
    _check_checkpoint_loads_with_from_pretrained(checkpoint, output_dir)
    for name in (
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "loss_curve.png",
        "reconstruction.png",
        "README.md",
    ):
        assert (output_dir / name).is_file(), name
    assert list((output_dir / "runs").rglob("events.out.tfevents*")), "no TensorBoard event file"
    assert len(_read_log(output_dir / "train_log.jsonl")) == 7

    from transformers import AutoFeatureExtractor, AutoModelForPreTraining

    model = AutoModelForPreTraining.from_pretrained(output_dir)
    assert type(model).__name__ == "AudioMAEForPreTraining"
    fe = AutoFeatureExtractor.from_pretrained(output_dir)
    assert (fe.max_length, fe.num_mel_bins) == (32, 32)
    inputs = fe(
        [np.random.default_rng(0).normal(size=6000).astype(np.float32) * 0.1], sampling_rate=16000, return_tensors="pt"
    )
    assert torch.isfinite(model(**inputs).loss)


def _check_checkpoint_loads_with_from_pretrained(checkpoint: Path, output_dir: Path):
    """A checkpoint folder is also a from_pretrained folder: config and feature extractor beside accelerate's weights,
    every tensor of the model loaded from them (the model at that step, not the final one)."""
    from safetensors.torch import load_file
    from transformers import AutoFeatureExtractor, AutoModelForPreTraining

    model, info = AutoModelForPreTraining.from_pretrained(checkpoint, output_loading_info=True)
    assert type(model).__name__ == "AudioMAEForPreTraining"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    saved = load_file(checkpoint / "model.safetensors")
    state = model.state_dict()
    assert set(saved) <= set(state) and all(torch.equal(state[k], v) for k, v in saved.items())
    final = AutoModelForPreTraining.from_pretrained(output_dir).state_dict()
    assert any(not torch.equal(final[k], v) for k, v in state.items()), "the checkpoint holds the final weights"
    fe = AutoFeatureExtractor.from_pretrained(checkpoint)
    assert fe.to_dict() == AutoFeatureExtractor.from_pretrained(output_dir).to_dict()


def test_kill_after_checkpoint_then_resume_repeats_the_uninterrupted_losses(ddp_run, tiny_config_dir, tmp_path):
    reference = _read_log(ddp_run[0] / "train_log.jsonl")
    output_dir = tmp_path / "killed"
    # both processes SIGKILL themselves right after optimizer step 5 (checkpoint 4 was written, step 5 is lost)
    # (no held-out evaluation at the end of these two runs: it does not change the training losses compared)
    args = _pretrain_args(tiny_config_dir, output_dir) + ["--eval_split", "none"]
    killed = _run_launch(args, env_extra={"HF_MASKEDAV_KILL_AT_STEP": "5"})
    assert killed.returncode != 0
    assert (output_dir / "checkpoint-4" / "training_state.json").is_file()
    assert not (output_dir / "config.json").exists() and not (output_dir / "checkpoint-6").exists()
    assert sorted(_read_log(output_dir / "train_log.jsonl")) == [1, 2, 3, 4, 5]

    resumed = _run_launch(args + ["--resume_from_checkpoint"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    assert "resumed from" in resumed.stdout and "checkpoint-4: step 4, epoch 1, 2 batches into it" in resumed.stdout
    losses = _read_log(output_dir / "train_log.jsonl")
    assert sorted(losses) == list(range(1, 8))
    # Steps 5-7 were recomputed after the restart: same data order, masks, dropout and optimizer state.
    for step in range(1, 8):
        assert losses[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), (step, losses, reference)
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 7


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_process(monkeypatch):
    """Run an example's main() in this process, with a fresh Accelerate state before and after."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")

    def reset():
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()

    def run(name: str, argv: list[str]):
        reset()
        try:
            _load_example(name).main(argv)
        finally:
            reset()

    return run


def test_finetune_multi_label_from_the_pretrained_model(ddp_run, in_process, tmp_path):
    output_dir = tmp_path / "finetuned"
    in_process(
        "finetune_audio",
        [
            "--model_name_or_path",
            str(ddp_run[0]),
            "--demo_multi_label",
            "--demo_num_clips",
            "16",
            "--per_device_train_batch_size",
            "4",
            "--max_train_steps",
            "4",
            "--eval_every_steps",
            "2",
            "--mixup_prob",
            "0.5",
            "--freq_mask",
            "4",
            "--time_mask",
            "6",
            "--layer_decay",
            "0.75",
            "--checkpointing_steps",
            "2",
            "--output_dir",
            str(output_dir),
        ],
    )
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 4 and [s for s, _ in summary["eval_history"]] == [2, 4]
    assert 0.0 < summary["best_eval_mAP"] <= 1.0
    assert summary["best_eval_mAP"] == max(v for _, v in summary["eval_history"])
    assert 0.0 < summary["test_mAP"] <= 1.0  # the kept model scored on the demo's test split
    assert (output_dir / "best_model" / "model.safetensors").is_file()
    card = (output_dir / "README.md").read_text()
    assert (
        "pipeline_tag: audio-classification" in card
        and "eval mAP (best, built-in demo audio (validation" in card  # the evaluation data, described
        and "test mAP (split test)" in card
    )

    from transformers import AutoModelForAudioClassification, pipeline

    model = AutoModelForAudioClassification.from_pretrained(output_dir)
    assert model.config.problem_type == "multi_label_classification" and model.config.num_labels == 8
    classifier = pipeline("audio-classification", model=str(output_dir))
    wave = np.random.default_rng(1).normal(size=16000).astype(np.float32) * 0.1
    predictions = classifier({"raw": wave, "sampling_rate": 16000}, top_k=3)
    assert len(predictions) == 3 and all(p["label"] in model.config.label2id for p in predictions)


def test_linear_probe_pretrained_and_random(ddp_run, in_process, tmp_path):
    for flag, folder in ((), "pretrained"), (("--random_init",), "random"):
        in_process(
            "linear_probe",
            [
                "--model_name_or_path",
                str(ddp_run[0]),
                *flag,
                "--demo_num_clips",
                "96",
                "--eval_split",
                "validation",
                "--output_dir",
                str(tmp_path / folder),
            ],
        )
    pretrained = json.loads((tmp_path / "pretrained" / "probe_results.json").read_text())
    random = json.loads((tmp_path / "random" / "probe_results.json").read_text())
    assert pretrained["random_init"] is False and random["random_init"] is True
    for result in (pretrained, random):
        assert result["num_train"] == 96 and result["num_eval"] == 160 and result["feature_dim"] == 32
        assert 0.0 <= result["eval_accuracy"] <= 1.0 and result["train_accuracy"] > 0.3
    assert pretrained["eval_accuracy"] != random["eval_accuracy"]  # different weights, different features
    assert pretrained["readout"] == "mean" and "num_tokens" not in pretrained
    # the attentive probe reads the same encoder's tokens (cls excluded) with a learned query
    in_process("linear_probe", ["--model_name_or_path", str(ddp_run[0]), "--readout", "attentive",
                                "--attentive_steps", "30", "--demo_num_clips", "96", "--eval_split", "validation",
                                "--output_dir", str(tmp_path / "attentive")])
    attentive = json.loads((tmp_path / "attentive" / "probe_results.json").read_text())
    assert attentive["readout"] == "attentive" and attentive["feature_dim"] == 32 and attentive["num_tokens"] > 1
    assert set(attentive["validation_scores"]) == {"0.01", "0.1", "1.0"} and attentive["train_accuracy"] > 0.3


def test_pretrain_streaming_local_audiofolder_with_corrupt_files(tiny_config_dir, in_process, tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(10):
        soundfile.write(data / f"clip{i}.wav", (rng.normal(size=8000 + 800 * i) * 0.1).astype(np.float32), 16000)
        rows.append(f"clip{i}.wav,{'a' if i % 2 else 'b'}")
    (data / "broken.wav").write_bytes(b"RIFF not really a wav file")
    rows.append("broken.wav,a")
    (data / "metadata.csv").write_text("file_name,label\n" + "\n".join(rows) + "\n")
    output_dir = tmp_path / "streamed"
    in_process(
        "pretrain_audio",
        [
            "--config_name",
            tiny_config_dir,
            "--data_dir",
            str(data),
            "--streaming",
            "--max_train_steps",
            "3",
            "--per_device_train_batch_size",
            "4",
            "--features_on_device",
            "--output_dir",
            str(output_dir),
        ],
    )
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 3
    # 12 clips used over 3 steps; the broken file was met once per pass over the 11 rows and reported
    assert summary["bad_samples"]["used"] == 12 and summary["bad_samples"]["skipped"] >= 1
    assert any("broken.wav" in e for e in summary["bad_samples"]["examples"])
    assert (output_dir / "model.safetensors").is_file()
