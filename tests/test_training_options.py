"""Training-script options of issue #15: time budget, row-filter splits, config overrides, clip length, validation
carving, docs/--help agreement, compressed-audio trimming, compact load reports, CPU threads.

Tiny models and data; each test runs a script for a few optimizer steps in this process (or one launched process).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from hf_maskedav import AudioMAEConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load_example(name: str):
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
            return load_example(name).main(argv)
        finally:
            reset()

    return run


@pytest.fixture(scope="module")
def tiny_config_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_config")
    AudioMAEConfig(
        max_length=32, num_mel_bins=32, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, decoder_meta_hidden_size=32, mask_ratio=0.75,
    ).save_pretrained(folder)
    return str(folder)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------------
# A. --max_train_minutes
# ---------------------------------------------------------------------------------------------------------------------


def test_cosine_schedule_follows_the_time_budget_when_it_runs_out_first():
    from hf_maskedav.training import cosine_schedule_with_warmup

    def lrs(progress):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        schedule = cosine_schedule_with_warmup(optimizer, 10, 100, progress=progress)
        values = []
        for step in range(100):
            values.append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
        return values

    by_steps = lrs(None)
    assert by_steps == lrs(lambda: 0.0)  # no time spent: the step schedule
    half = lrs(lambda: 0.5)  # half the budget spent from the start: the schedule is at step 50 at least
    assert half[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 40 / 90)))
    assert half[80] == pytest.approx(by_steps[80])  # later, the steps lead
    assert lrs(lambda: 0.05)[0] == pytest.approx(6 / 11)  # warm-up is part of the progress: step 5 of 10
    assert lrs(lambda: 1.0)[3] == 0.0  # budget spent: annealed


def test_time_budget_state_and_summary(monkeypatch):
    from hf_maskedav.training import TimeBudget

    clock = [100.0]
    monkeypatch.setattr("hf_maskedav.training.budget.time.monotonic", lambda: clock[0])
    budget = TimeBudget(1.0, spent_seconds=0.0)
    budget.start()
    clock[0] += 30
    assert budget.tick() == 30 and budget.progress() == 0.5 and not budget.exhausted()
    resumed = TimeBudget(1.0)
    resumed.load_state_dict(budget.state_dict())  # a resumed run counts the 30 s already spent
    resumed.start()
    clock[0] += 31
    resumed.tick()
    assert resumed.exhausted() and resumed.summary() == {
        "max_train_minutes": 1.0, "stopped_by_time_budget": True, "train_loop_seconds": 61.0}
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0)
    before = TimeBudget(1.0)
    before.charge(45)  # work before the loop (the head's linear probe) counts in the budget
    before.start()
    clock[0] += 15
    assert before.tick() == 60 and before.exhausted()


def test_progress_bar_shows_the_share_of_a_budgeted_run(monkeypatch):
    """Under --max_train_minutes the bar is the larger of steps/max_steps and elapsed/budget (a budgeted run sets a
    huge step count: a step bar would promise hours); without a budget it counts steps."""
    from hf_maskedav.training import LoopProgress, TimeBudget

    clock = [100.0]
    monkeypatch.setattr("hf_maskedav.training.budget.time.monotonic", lambda: clock[0])
    budget = TimeBudget(1.0)
    budget.start()
    bar = LoopProgress(budget, max_train_steps=6_200_000, desc="pretraining", disable=True)
    clock[0] += 15
    budget.tick()
    bar.update(1)
    bar.set_postfix(loss="0.5")
    assert bar.n == pytest.approx(25.0) and bar.total == 100.0 and bar.completed_steps == 1
    clock[0] += 90  # past the budget: full, never beyond
    budget.tick()
    bar.update(1)
    assert bar.n == pytest.approx(100.0)
    # few steps and a long budget: the steps decide
    long_budget = TimeBudget(600.0)
    long_budget.start()
    long_budget.tick()
    steps_bar = LoopProgress(long_budget, max_train_steps=4, completed_steps=1, disable=True)
    steps_bar.update(1)
    assert steps_bar.n == pytest.approx(50.0)
    plain = LoopProgress(TimeBudget(None), max_train_steps=10, completed_steps=3, disable=True)
    plain.update(1)
    assert plain.n == 4 and plain.total == 10
    plain.close()


def test_pretrain_stops_on_the_time_budget_and_ends_normally(tiny_config_dir, in_process, tmp_path):
    output_dir = tmp_path / "budget"
    in_process("pretrain_audio", [
        "--config_name", tiny_config_dir, "--demo_num_clips", "16", "--per_device_train_batch_size", "4",
        "--max_train_steps", "100000", "--max_train_minutes", "0.01", "--output_dir", str(output_dir)])
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["stopped_by_time_budget"] is True and summary["max_train_minutes"] == 0.01
    assert 0 < summary["completed_steps"] < 100000 and summary["max_train_steps"] == 100000
    assert summary["train_loop_seconds"] >= 0.6
    # the schedule followed the budget: the last update used the annealed learning rate, not the peak
    assert read_log(output_dir / "train_log.jsonl")[-1]["lr"] == 0.0
    for name in ("model.safetensors", "preprocessor_config.json", "loss_curve.png", "reconstruction.png", "README.md"):
        assert (output_dir / name).is_file(), name


def test_resumed_run_counts_the_time_already_spent(tiny_config_dir, in_process, tmp_path):
    output_dir = tmp_path / "resume"
    common = ["--config_name", tiny_config_dir, "--demo_num_clips", "16", "--per_device_train_batch_size", "4",
              "--output_dir", str(output_dir)]
    in_process("pretrain_audio", [*common, "--max_train_steps", "3", "--checkpointing_steps", "3",
                                  "--max_train_minutes", "60"])
    state = json.loads((output_dir / "checkpoint-3" / "training_state.json").read_text())
    spent = state["extra"]["time_budget"]["train_loop_seconds"]
    assert spent > 0
    # resumed with a budget smaller than the time already spent: no further step, a normal end
    in_process("pretrain_audio", [*common, "--max_train_steps", "50", "--max_train_minutes", str(spent / 120),
                                  "--resume_from_checkpoint"])
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 3 and summary["stopped_by_time_budget"] is True


def test_torch_compile_trains_and_saves_the_weights_under_the_models_own_names(tiny_config_dir, in_process, tmp_path):
    """--torch_compile (inductor through Accelerate): a compiled model's state dict prefixes every key with
    ``_orig_mod.``; saved so, from_pretrained would find none of its weights. The saved model must hold the trained
    weights under the model's own names, the same as the checkpoint of the last step."""
    from safetensors.torch import load_file

    from hf_maskedav import AudioMAEForPreTraining

    output_dir = tmp_path / "compiled"
    try:
        in_process("pretrain_audio", [
            "--config_name", tiny_config_dir, "--demo_num_clips", "8", "--per_device_train_batch_size", "4",
            "--max_train_steps", "3", "--checkpointing_steps", "3", "--torch_compile", "--eval_split", "none",
            "--output_dir", str(output_dir)])
    finally:
        torch._dynamo.reset()
    saved = load_file(output_dir / "model.safetensors")
    checkpoint = load_file(output_dir / "checkpoint-3" / "model.safetensors")
    assert not [key for key in saved if key.startswith("_orig_mod.")]
    assert saved.keys() == checkpoint.keys()
    assert all(torch.equal(saved[key], checkpoint[key]) for key in saved)
    model, info = AudioMAEForPreTraining.from_pretrained(output_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_top_db_reaches_the_saved_feature_extractor_and_the_next_script(tiny_config_dir, in_process, tmp_path, capsys):
    """--top_db (the log-mel floor under each clip's peak) is saved with the pretraining's feature extractor, kept by
    a fine-tuning that loads it, and replaced only when given again."""
    from hf_maskedav import AudioMAEFeatureExtractor

    common = ["--demo_num_clips", "8", "--per_device_train_batch_size", "4", "--max_train_steps", "1",
              "--eval_split", "none"]
    pretrained = tmp_path / "pretrain"
    in_process("pretrain_audio", ["--config_name", tiny_config_dir, *common, "--feature_normalization", "per_clip",
                                  "--top_db", "60", "--output_dir", str(pretrained)])
    extractor = AudioMAEFeatureExtractor.from_pretrained(pretrained)
    assert (extractor.normalization, extractor.top_db) == ("per_clip", 60.0)
    in_process("finetune_audio", ["--model_name_or_path", str(pretrained), *common, "--output_dir", str(tmp_path / "a")])
    assert AudioMAEFeatureExtractor.from_pretrained(tmp_path / "a").top_db == 60.0  # the loaded one's, unchanged
    in_process("finetune_audio", ["--model_name_or_path", str(pretrained), *common, "--top_db", "80",
                                  "--output_dir", str(tmp_path / "b")])
    assert AudioMAEFeatureExtractor.from_pretrained(tmp_path / "b").top_db == 80.0
    for script in ("pretrain_audio", "finetune_audio", "pretrain_audiovisual", "finetune_audiovisual"):
        with pytest.raises(SystemExit):
            load_example(script).parse_args(["--top_db", "-3"])
        assert "--top_db: must be a positive number of decibels" in capsys.readouterr().err


def test_finetune_with_a_time_budget_evaluates_at_the_end_and_keeps_the_best(tiny_config_dir, in_process, tmp_path):
    output_dir = tmp_path / "finetune"
    in_process("finetune_audio", [
        "--config_name", tiny_config_dir, "--demo_num_clips", "16", "--per_device_train_batch_size", "4",
        "--max_train_steps", "100000", "--eval_every_steps", "100000", "--max_train_minutes", "0.01",
        "--output_dir", str(output_dir)])
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["stopped_by_time_budget"] is True and 0 < summary["completed_steps"] < 100000
    assert summary["eval_history"][-1][0] == summary["completed_steps"]  # evaluated at the end
    assert summary["best_eval_accuracy"] is not None and (output_dir / "best_model" / "model.safetensors").is_file()


def test_finetune_starts_from_the_linear_probe_head_once(tiny_config_dir, in_process, tmp_path, capsys):
    output_dir = tmp_path / "lpft"
    argv = ["--config_name", tiny_config_dir, "--demo_num_clips", "16", "--per_device_train_batch_size", "4",
            "--head_init", "linear_probe", "--checkpointing_steps", "2", "--output_dir", str(output_dir)]
    in_process("finetune_audio", [*argv, "--max_train_steps", "2"])
    assert "head set to the linear probe" in capsys.readouterr().out
    summary = json.loads((output_dir / "train_summary.json").read_text())
    probe = summary["head_probe"]
    assert summary["head_init"] == "linear_probe" and summary["completed_steps"] == 2
    assert probe["num_train"] == 16 and 0.0 <= probe["train_score"] <= 1.0 and probe["weight_decay"] > 0
    # resumed, the run keeps its head (from the checkpoint) and its first fit's record: no second fit
    in_process("finetune_audio", [*argv, "--max_train_steps", "4", "--resume_from_checkpoint", "latest"])
    assert "head set to the linear probe" not in capsys.readouterr().out
    resumed = json.loads((output_dir / "train_summary.json").read_text())
    assert resumed["completed_steps"] == 4 and resumed["head_probe"] == probe


# ---------------------------------------------------------------------------------------------------------------------
# B. COLUMN=VALUE split filters
# ---------------------------------------------------------------------------------------------------------------------

FSDD = ROOT.parent / "shared" / "datasets" / "fsdd"


def make_audiofolder(folder: Path, speakers=("ann", "bob", "cid"), per_speaker: int = 4, sampling_rate: int = 8000):
    """A tiny labelled audiofolder: ``metadata.csv`` with file_name,label,speaker,take."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for speaker in speakers:
        for take in range(per_speaker):
            name = f"{speaker}_{take}.wav"
            soundfile.write(folder / name, (rng.normal(size=sampling_rate // 2) * 0.1).astype(np.float32), sampling_rate)
            rows.append(f"{name},{take % 2},{speaker},{take}")
    (folder / "metadata.csv").write_text("file_name,label,speaker,take\n" + "\n".join(rows) + "\n")
    return folder


def test_row_filter_parsing():
    from hf_maskedav.data import RowFilter, SplitFilterError, parse_row_filter

    assert parse_row_filter("train") is None and parse_row_filter("train[:80%]") is None
    assert parse_row_filter("speaker=george, jackson") == RowFilter("speaker", ("george", "jackson"), False)
    assert parse_row_filter("official_split!=test") == RowFilter("official_split", ("test",), True)
    assert not RowFilter("take", ("1",)).keep(0) and RowFilter("take", ("1",)).keep(1)
    assert RowFilter("label", ("dog",)).keep(1, ["cat", "dog"])  # a ClassLabel matches by name too
    with pytest.raises(SplitFilterError):
        parse_row_filter("speaker=")


def test_audio_source_row_filters_on_a_tiny_audiofolder(tmp_path):
    from hf_maskedav.data import SplitFilterError, load_audio_source

    folder = make_audiofolder(tmp_path / "data")
    source = load_audio_source(data_dir=str(folder), split="speaker=ann,bob", label_column="label")
    assert len(source.data) == 8 and set(source.data["speaker"]) == {"ann", "bob"}
    assert "speaker=ann,bob" in source.description
    rest = load_audio_source(data_dir=str(folder), split="speaker!=ann,bob", label_column="label")
    assert set(rest.data["speaker"]) == {"cid"} and len(rest.data) == 4
    numbers = load_audio_source(data_dir=str(folder), split="take=0,3")  # compared as strings
    assert sorted(numbers.data["take"]) == [0, 0, 0, 3, 3, 3]
    with pytest.raises(SplitFilterError, match=r"no column 'spekaer'.*\['audio', 'label', 'speaker', 'take'\]"):
        load_audio_source(data_dir=str(folder), split="spekaer=ann")
    with pytest.raises(SplitFilterError, match="selects no row.*ann, bob, cid"):
        load_audio_source(data_dir=str(folder), split="speaker=zed")
    with pytest.raises(SplitFilterError, match="demo"):
        load_audio_source(split="label=1")


def test_finetune_audio_on_row_filter_splits(tiny_config_dir, in_process, tmp_path, capsys):
    folder = make_audiofolder(tmp_path / "data", speakers=("ann", "bob", "cid", "dan"))
    output_dir = tmp_path / "run"
    in_process("finetune_audio", [
        "--config_name", tiny_config_dir, "--data_dir", str(folder), "--train_split", "speaker=ann,bob,cid",
        "--eval_split", "none", "--test_split", "speaker=dan", "--per_device_train_batch_size", "4",
        "--max_train_steps", "2", "--output_dir", str(output_dir)])
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 2 and summary["test_accuracy"] is not None
    out = capsys.readouterr().out  # without evaluation, say so (never "best eval accuracy: None (step None)")
    assert "no evaluation during training" in out and "None (step None)" not in out
    # 8-kHz recordings at the 16-kHz front end: the empty top mel bins are named, with the option that handles them
    assert "warning: band-limited audio" in out and "--top_db 60" in out
    in_process("pretrain_audio", [
        "--config_name", tiny_config_dir, "--data_dir", str(folder), "--train_split", "speaker=ann,bob,cid",
        "--eval_split", "none", "--per_device_train_batch_size", "4", "--max_train_steps", "1", "--top_db", "60",
        "--output_dir", str(tmp_path / "floored")])
    assert "band-limited" not in capsys.readouterr().out  # the floor is set: nothing to say
    in_process("pretrain_audio", [  # a stream is checked too, on its first clips
        "--config_name", tiny_config_dir, "--data_dir", str(folder), "--streaming", "--per_device_train_batch_size",
        "4", "--max_train_steps", "1", "--output_dir", str(tmp_path / "streamed")])
    assert "warning: band-limited audio" in capsys.readouterr().out


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"the FSDD audiofolder is not at {FSDD} (shared data not mounted)")
def test_fsdd_speaker_and_official_splits():
    from hf_maskedav.data import load_audio_source

    train = load_audio_source(data_dir=str(FSDD), split="speaker=george,jackson,lucas,yweweler", label_column="label")
    test = load_audio_source(data_dir=str(FSDD), split="speaker=nicolas,theo", label_column="label")
    assert len(train.data) == 2000 and len(test.data) == 1000
    assert not set(train.data["speaker"]) & set(test.data["speaker"])
    assert train.labels.num_labels == 10
    official_train = load_audio_source(data_dir=str(FSDD), split="official_split=train")
    official_test = load_audio_source(data_dir=str(FSDD), split="official_split=test")
    assert len(official_train.data) + len(official_test.data) == 3000


# ---------------------------------------------------------------------------------------------------------------------
# C. --config_overrides, D. --clip_seconds (and MAViL's --num_frames / --video_fps)
# ---------------------------------------------------------------------------------------------------------------------


def test_parse_config_overrides():
    from hf_maskedav.training import parse_config_overrides

    assert parse_config_overrides('decoder_window_size=[5,4], mask_ratio=0.7,norm_pix_loss=false,name="a,b",t=(2,8)') == {
        "decoder_window_size": [5, 4], "mask_ratio": 0.7, "norm_pix_loss": False, "name": "a,b", "t": [2, 8]}
    assert parse_config_overrides("use_cls_token=True,x=None,attn=sdpa") == {"use_cls_token": True, "x": None,
                                                                              "attn": "sdpa"}
    assert parse_config_overrides(None) == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_config_overrides("mask_ratio")
    with pytest.raises(ValueError, match="unbalanced"):
        parse_config_overrides("decoder_window_size=[5,4")


def test_config_overrides_validated_unknown_keys_and_max_length():
    from hf_maskedav.training import apply_config_overrides, build_config

    config = build_config("audiomae-tiny")
    changed = apply_config_overrides(config, "max_length=160,decoder_window_size=[5,4]")
    assert changed.max_length == 160 and list(changed.decoder_window_size) == [5, 4] and changed.grid_size == (20, 8)
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['max_lenght'\]"):
        apply_config_overrides(config, "max_lenght=200")
    with pytest.raises(ValueError, match="max_length 200 .*not divisible.*nearest valid lengths: 192 and 224"):
        apply_config_overrides(config, "max_length=200")


def test_clip_seconds_rounds_up_to_an_accepted_length():
    from hf_maskedav.training import build_config, max_length_for_seconds

    tiny = build_config("audiomae-tiny")  # 8x8 patches, local decoder window (4, 4) -> multiples of 32 frames
    assert max_length_for_seconds(tiny, 2.0) == (200, 224)
    assert max_length_for_seconds(tiny, 0.96) == (96, 96)
    assert max_length_for_seconds(build_config("audiomae-base"), 10.0) == (1000, 1024)
    assert max_length_for_seconds(build_config("mavil-tiny"), 2.0) == (200, 200)  # multiples of 8


def test_pretrain_audio_clip_seconds_and_config_overrides(in_process, tmp_path, capsys):
    output_dir = tmp_path / "clip"
    in_process("pretrain_audio", [
        "--demo_num_clips", "8", "--per_device_train_batch_size", "4", "--max_train_steps", "1", "--clip_seconds", "2",
        "--config_overrides", "mask_ratio=0.5,decoder_num_hidden_layers=1", "--output_dir", str(output_dir)])
    assert "200 fbank frames rounded up to max_length 224" in capsys.readouterr().out
    config = json.loads((output_dir / "config.json").read_text())
    extractor = json.loads((output_dir / "preprocessor_config.json").read_text())
    assert config["max_length"] == extractor["max_length"] == 224
    assert config["mask_ratio"] == 0.5 and config["decoder_num_hidden_layers"] == 1
    with pytest.raises(ValueError, match="nearest valid lengths: 192 and 224"):
        in_process("pretrain_audio", ["--config_overrides", "max_length=200", "--output_dir", str(tmp_path / "bad")])


def test_mavil_processor_follows_the_config():
    from hf_maskedav.training import build_config, config_for_script
    from hf_maskedav.training.presets import audiovisual_processor_for

    config = config_for_script(build_config("mavil-tiny"), "image_size=48", 3.0, num_frames=4)
    processor = audiovisual_processor_for(config, "mavil-tiny", video_fps=2.0)
    assert (config.max_length, config.num_frames) == (304, 4)
    assert processor.feature_extractor.max_length == 304 and processor.video_processor.num_frames == 4
    assert processor.video_processor.fps == 2.0 and processor.video_processor.size.height == 48
    assert processor.feature_extractor.normalization == "dataset"  # the official statistics unless asked
    per_clip = audiovisual_processor_for(config, "mavil-tiny", feature_normalization="per_clip")
    assert per_clip.feature_extractor.normalization == "per_clip"
    assert processor.feature_extractor.top_db is None
    assert audiovisual_processor_for(config, "mavil-tiny", top_db=60).feature_extractor.top_db == 60.0
    with pytest.raises(ValueError, match="top_db must be a positive"):
        audiovisual_processor_for(config, "mavil-tiny", top_db=0)
    with pytest.raises(ValueError, match="--feature_normalization and --top_db are MAViL options"):
        audiovisual_processor_for(build_config("avmae-tiny"), "avmae-tiny", feature_normalization="per_clip")
    with pytest.raises(ValueError, match="--feature_normalization and --top_db are MAViL options"):
        audiovisual_processor_for(build_config("avmae-tiny"), "avmae-tiny", top_db=60)


def test_pretrain_audiovisual_clip_options_keep_config_and_processor_consistent(in_process, tmp_path):
    output_dir = tmp_path / "av"
    in_process("pretrain_audiovisual", [
        "--demo_num_clips", "4", "--demo_eval_num_clips", "4", "--per_device_train_batch_size", "4",
        "--max_train_steps", "1", "--clip_seconds", "2", "--num_frames", "4", "--video_fps", "3",
        "--feature_normalization", "per_clip", "--top_db", "60", "--demo_cache_dir", str(tmp_path / "demo"),
        "--output_dir", str(output_dir)])
    from hf_maskedav.models.mavil import MAViLProcessor

    config = json.loads((output_dir / "config.json").read_text())
    processor = MAViLProcessor.from_pretrained(output_dir)
    assert config["max_length"] == processor.feature_extractor.max_length == 200
    assert config["num_frames"] == processor.video_processor.num_frames == 4 and processor.video_processor.fps == 3.0
    assert processor.feature_extractor.normalization == "per_clip"  # what training used, for the probe and fine-tuning
    assert processor.feature_extractor.top_db == 60.0


def test_pretrain_audiovisual_warns_about_band_limited_audio_tracks(in_process, tmp_path, capsys):
    """Videos whose sound was recorded at 8 kHz (AAC): MAViL's fbank has empty top mel bins, and the script says so
    (stage 1, no --top_db)."""
    for label in ("a", "b"):
        for take in range(2):
            (tmp_path / "videos" / label).mkdir(parents=True, exist_ok=True)
            _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=8:duration=2", "-f", "lavfi", "-i",
                    f"anoisesrc=sample_rate=8000:duration=2:amplitude=0.3:seed={take}", "-c:v", "libx264", "-c:a", "aac",
                    "-shortest", str(tmp_path / "videos" / label / f"{take}.mp4"))
    argv = ["--data_dir", str(tmp_path / "videos"), "--eval_split", "none", "--per_device_train_batch_size", "4",
            "--max_train_steps", "1"]
    in_process("pretrain_audiovisual", [*argv, "--output_dir", str(tmp_path / "plain")])
    out = capsys.readouterr().out
    assert "warning: band-limited audio" in out and "4 of 4 sampled training clips" in out and "--top_db 60" in out
    in_process("pretrain_audiovisual", [*argv, "--top_db", "60", "--output_dir", str(tmp_path / "floored")])
    assert "band-limited" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------------
# G. compressed audio trimmed to the stream's duration
# ---------------------------------------------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def test_aac_and_mp4_audio_decode_to_the_stream_duration(tmp_path):
    from hf_maskedav.data import decode_audio
    from hf_maskedav.models.mavil.processing_mavil import read_audio_track

    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=2"]
    _ffmpeg(*sine, "-c:a", "aac", str(tmp_path / "a.m4a"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=8:duration=2", *sine, "-c:v", "libx264", "-c:a", "aac",
            "-shortest", str(tmp_path / "v.mp4"))
    frame = 160  # one 10 ms fbank frame at 16 kHz; undecoded padding was 768 samples (32,768 for 2.000 s)
    for path in (tmp_path / "a.m4a", tmp_path / "v.mp4"):
        assert abs(decode_audio(str(path)).numel() - 32000) < frame, path
        assert abs(decode_audio(path.read_bytes()).numel() - 32000) < frame, path
        assert abs(read_audio_track(path, 16000)[0].numel() - 32000) < frame, path  # MAViLProcessor's decoding
    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.zeros(12345, dtype=np.float32), 16000)
    assert decode_audio(str(wav)).numel() == 12345  # uncompressed audio is untouched


# ---------------------------------------------------------------------------------------------------------------------
# J. CPU threads under accelerate launch
# ---------------------------------------------------------------------------------------------------------------------

THREADS_SCRIPT = """
import os
import sys
import torch
from accelerate import Accelerator
from hf_maskedav.training.threads import configure_cpu_threads
accelerator = Accelerator(cpu=True)
configure_cpu_threads(accelerator, int(sys.argv[1]) if len(sys.argv) > 1 else None, log=lambda m: None)
os.write(1, f"THREADS {accelerator.process_index} {torch.get_num_threads()}\\n".encode())  # one write: atomic on a pipe
"""


def _launch_threads(tmp_path, launcher_args, script_args=(), omp=None) -> list[int]:
    import subprocess
    import sys

    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(ACCELERATE_USE_CPU="true", HF_HUB_OFFLINE="1")
    if omp is not None:
        env["OMP_NUM_THREADS"] = str(omp)
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", *launcher_args, str(script), *script_args],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [int(threads) for _, threads in re.findall(r"THREADS (\d+) (\d+)\n", result.stdout)]


def test_launched_script_uses_the_cores_unless_told_otherwise(tmp_path):
    from hf_maskedav.training.threads import available_cores

    cores = available_cores()
    assert _launch_threads(tmp_path, ["--num_processes", "1"]) == [cores]  # accelerate alone would leave 1
    assert _launch_threads(tmp_path, ["--num_processes", "1"], ["1"]) == [1]  # --num_threads wins
    assert _launch_threads(tmp_path, ["--num_processes", "1", "--num_cpu_threads_per_process", "1"]) == [1]
    assert _launch_threads(tmp_path, ["--num_processes", "1"], omp=1) == [1]  # the user's OMP_NUM_THREADS is kept
    two = _launch_threads(tmp_path, ["--multi_gpu", "--num_processes", "2"])
    assert sorted(two) == [max(1, cores // 2)] * 2


def test_every_example_script_takes_num_threads():
    """Training and evaluation scripts alike: --num_threads, and on CPU the machine's cores by default. Every script
    makes its Accelerator through one of the two shared set-ups, which take --num_threads and configure the threads."""
    import inspect

    from hf_maskedav.training import arguments

    setups = ("make_accelerator(", "make_eval_accelerator(")
    for setup in (arguments.make_accelerator, arguments.make_eval_accelerator):
        assert "configure_cpu_threads(accelerator, args.num_threads" in inspect.getsource(setup), setup.__name__
    assert "add_num_threads_argument(" in inspect.getsource(arguments.add_training_arguments)
    assert "add_num_threads_argument(" in inspect.getsource(arguments.add_encoder_arguments)
    scripts = [path for path in sorted(EXAMPLES.glob("*.py")) if any(s in path.read_text() for s in setups)]
    assert len(scripts) >= 9, scripts
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        assert "Accelerator(" not in text, f"{path.name} makes its own Accelerator (use make_accelerator)"
    for path in scripts:
        text = path.read_text()
        uses = ("add_training_arguments(" if "make_accelerator(" in text else "add_encoder_arguments(")
        assert uses in text, f"{path.name} does not take --num_threads"