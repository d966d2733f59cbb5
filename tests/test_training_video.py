"""The video and audio-visual training scripts for real: 2-process CPU DDP through ``accelerate launch`` for
pretrain_video.py (each family) and pretrain_audiovisual.py (stage 1, then chained stage-2 iterations), kill +
resume = uninterrupted, then fine-tuning, linear probe and retrieval in-process on their outputs.

Tiny models (width 32, 2 layers, 8 frames of 32x32) on a few clips of the built-in demo data, written once into a
temporary cache shared by the whole file.
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
import torch

from hf_maskedav import AVMAEConfig, MAESTConfig, MaskedAVVideoMAEConfig, MaskFeatConfig, MAViLConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = dict(num_frames=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
TINY_DECODER = dict(decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
                    decoder_intermediate_size=64)
CONFIGS = {
    "videomae": lambda: MaskedAVVideoMAEConfig(image_size=32, patch_size=8, intermediate_size=64, mask_ratio=0.75,
                                               **TINY, **TINY_DECODER),
    "mae_st": lambda: MAESTConfig(image_size=32, patch_size=8, intermediate_size=64, pred_t_dim=8, mask_ratio=0.75,
                                  **TINY, **TINY_DECODER),
    "maskfeat": lambda: MaskFeatConfig(
        backbone="vit", image_size=32, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8], patch_padding=[0, 0, 0],
        separate_position_embeddings=True, hog_cell_size=4, mask_window_size=[4, 4, 4], **TINY),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    """One demo-data cache for the module (and for the launched processes, through the environment)."""
    return str(tmp_path_factory.mktemp("demo_cache"))


def _run_launch(args: list[str], cache: str, env_extra: dict | None = None, timeout: int = 300):
    env = {k: v for k, v in os.environ.items() if k != "HF_MASKEDAV_KILL_AT_STEP"}
    env.update({"ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1", "HF_MASKEDAV_CACHE": cache})
    env.update(env_extra or {})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _read_log(path: Path, key: str = "loss") -> dict[int, float]:
    values = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if key in record:
            values[record["step"]] = record[key]
    return values


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, str]:
    folders = {}
    for name, make in CONFIGS.items():
        folder = tmp_path_factory.mktemp(f"config_{name}")
        make().save_pretrained(folder)
        folders[name] = str(folder)
    folder = tmp_path_factory.mktemp("config_mavil")
    MAViLConfig(num_mel_bins=32, max_length=32, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
                hidden_size=32, num_attention_heads=2, intermediate_size=64, audio_num_hidden_layers=1,
                video_num_hidden_layers=1, fusion_num_hidden_layers=1, decoder_hidden_size=32,
                decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64,
                inter_contrastive_weight=0.1).save_pretrained(folder)
    folders["mavil"] = str(folder)
    folder = tmp_path_factory.mktemp("config_avmae")
    AVMAEConfig(num_mel_bins=32, max_length=32, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
                hidden_size=32, num_attention_heads=2, intermediate_size=64, num_hidden_layers=2, num_fusion_layers=1,
                decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                decoder_intermediate_size=64, audio_mask_ratio=0.75, video_mask_ratio=0.75).save_pretrained(folder)
    folders["avmae"] = str(folder)
    return folders


def _video_args(family: str, config: str, output_dir: Path, steps: int = 3) -> list[str]:
    # 8 clips, 2 videos per process per batch, 2 processes -> 2 batches per process per epoch; accumulation 1
    return [str(EXAMPLES / "pretrain_video.py"), "--model", family, "--config_name", config, "--demo_num_clips", "8",
            "--per_device_train_batch_size", "2", "--max_train_steps", str(steps), "--output_dir", str(output_dir)]


@pytest.fixture(scope="module")
def videomae_run(configs, cache, tmp_path_factory):
    """Uninterrupted 2-process VideoMAE run (reference of the resume test): 5 steps over 3 epochs, checkpoint at 3 (mid-epoch),
    repeated sampling 2, held-out loss on 4 validation clips, TensorBoard."""
    output_dir = tmp_path_factory.mktemp("videomae") / "run"
    args = _video_args("videomae", configs["videomae"], output_dir, steps=5) + [
        "--checkpointing_steps", "3", "--repeated_sampling", "2", "--with_tracking", "--demo_eval_num_clips", "4"]
    result = _run_launch(args, cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return output_dir, result.stdout + result.stderr, args


def _check_pretraining_output(output_dir: Path, log: str, steps: int, clips_per_video: int):
    assert "world size: 2 process(es)" in log and "distributed type MULTI_CPU" in log
    assert "process 0 of 2 started" in log and "process 1 of 2 started" in log
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["completed_steps"] == steps
    assert summary["clips_per_video"] == clips_per_video
    assert set(summary["videos_per_process"]) == {"0", "1"} and min(summary["videos_per_process"].values()) >= 2 * steps
    for name in ("config.json", "model.safetensors", "video_preprocessor_config.json", "loss_curve.png",
                 "reconstruction.png", "README.md"):
        assert (output_dir / name).is_file(), name
    assert len(_read_log(output_dir / "train_log.jsonl")) == steps

    from transformers import AutoModelForPreTraining, AutoVideoProcessor

    model = AutoModelForPreTraining.from_pretrained(output_dir)
    processor = AutoVideoProcessor.from_pretrained(output_dir)
    clip = np.random.default_rng(0).integers(0, 255, (12, 40, 50, 3), dtype=np.uint8)
    inputs = processor(clip, return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 8, 3, 32, 32)
    assert torch.isfinite(model(**inputs).loss)
    return summary


def test_pretrain_videomae_two_process_ddp(videomae_run):
    output_dir, log, _ = videomae_run
    summary = _check_pretraining_output(output_dir, log, steps=5, clips_per_video=2)
    assert summary["eval_loss"] is not None and (output_dir / "checkpoint-3" / "training_state.json").is_file()
    assert (output_dir / "checkpoint-3" / "random_states_1.pkl").is_file()
    from transformers import AutoModelForPreTraining, AutoVideoProcessor

    # the checkpoint also loads with from_pretrained: the model at step 3, with the run's processor
    model, info = AutoModelForPreTraining.from_pretrained(output_dir / "checkpoint-3", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    final = AutoModelForPreTraining.from_pretrained(output_dir).state_dict()
    assert any(not torch.equal(final[k], v) for k, v in model.state_dict().items())
    assert AutoVideoProcessor.from_pretrained(output_dir / "checkpoint-3").to_dict() == \
        AutoVideoProcessor.from_pretrained(output_dir).to_dict()
    assert list((output_dir / "runs").rglob("events.out.tfevents*")), "no TensorBoard event file"
    card = (output_dir / "README.md").read_text()
    assert "AutoVideoProcessor" in card and "held-out masked reconstruction loss" in card


@pytest.mark.parametrize("family", ["mae_st", "maskfeat"])
def test_pretrain_other_families_two_process_ddp(family, configs, cache, tmp_path):
    output_dir = tmp_path / family
    result = _run_launch(_video_args(family, configs[family], output_dir, steps=2) + ["--eval_split", "none"], cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    log = result.stdout + result.stderr
    _check_pretraining_output(output_dir, log, steps=2, clips_per_video=4 if family == "mae_st" else 1)
    card = (output_dir / "README.md").read_text()
    assert ("masked HOG feature modelling" if family == "maskfeat" else "masked video modelling") in card


def test_kill_after_checkpoint_then_resume_repeats_the_uninterrupted_losses(videomae_run, cache, tmp_path):
    reference = _read_log(videomae_run[0] / "train_log.jsonl")
    args = [a if a != str(videomae_run[0]) else str(tmp_path / "killed") for a in videomae_run[2]]
    output_dir = tmp_path / "killed"
    # both processes SIGKILL themselves right after step 4 (checkpoint 3, mid-epoch, was written; step 4 is lost)
    killed = _run_launch(args, cache, env_extra={"HF_MASKEDAV_KILL_AT_STEP": "4"})
    assert killed.returncode != 0
    assert (output_dir / "checkpoint-3" / "training_state.json").is_file() and not (output_dir / "config.json").exists()
    resumed = _run_launch(args + ["--resume_from_checkpoint"], cache)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    assert "resumed from" in resumed.stdout and "checkpoint-3: step 3, epoch 1, 1 batches into it" in resumed.stdout
    losses = _read_log(output_dir / "train_log.jsonl")
    assert sorted(losses) == [1, 2, 3, 4, 5]
    for step in range(1, 6):  # same data order, clips, masks and optimizer state after the restart
        assert losses[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), (step, losses, reference)


@pytest.fixture(scope="module")
def mavil_stage1(configs, cache, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("mavil") / "stage1"
    result = _run_launch([str(EXAMPLES / "pretrain_audiovisual.py"), "--config_name", configs["mavil"],
                          "--demo_num_clips", "8", "--demo_eval_num_clips", "6", "--per_device_train_batch_size", "2",
                          "--max_train_steps", "3", "--output_dir", str(output_dir)], cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return output_dir, result.stdout + result.stderr


def test_pretrain_audiovisual_stage1_then_two_stage2_iterations_ddp(mavil_stage1, cache, tmp_path):
    stage1, log = mavil_stage1
    assert "world size: 2 process(es)" in log and "process 1 of 2 started" in log
    records = [json.loads(line) for line in (stage1 / "train_log.jsonl").read_text().splitlines()]
    terms = ("loss", "audio_reconstruction_loss", "video_reconstruction_loss", "inter_contrastive_loss",
             "audio_intra_contrastive_loss", "video_intra_contrastive_loss")
    assert len(records) == 3 and all(all(np.isfinite(r[t]) for t in terms) for r in records)
    summary = json.loads((stage1 / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["retrieval"]["chance_R@1"] == pytest.approx(1 / 6)
    for name in ("model.safetensors", "reconstruction.png", "reconstruction_audio.png", "loss_curve.png", "README.md"):
        assert (stage1 / name).is_file(), name

    output_dir = tmp_path / "stage2"
    result = _run_launch([str(EXAMPLES / "pretrain_audiovisual.py"), "--stage", "2", "--teacher", str(stage1),
                          "--iterations", "2", "--demo_num_clips", "8", "--eval_split", "none",
                          "--per_device_train_batch_size", "2", "--max_train_steps", "2", "--output_dir",
                          str(output_dir)], cache)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    log = result.stdout
    assert f"iteration 1 (teacher {stage1})" in log and f"iteration 2 (teacher {output_dir / 'iteration-1'})" in log
    from transformers import AutoConfig, AutoProcessor

    for folder in (output_dir / "iteration-1", output_dir / "iteration-2", output_dir):
        assert AutoConfig.from_pretrained(folder).reconstruction_target == "teacher"
        assert len(_read_log(folder / "train_log.jsonl", "audio_reconstruction_loss")) == 2 or folder == output_dir
    assert AutoProcessor.from_pretrained(output_dir).feature_extractor.num_mel_bins == 32


def test_audiovisual_avmae_inpainting_variant_single_process(configs, cache, in_process, tmp_path):
    """Georgescu et al.'s AV-MAE is its own family: the script's variant options build AVMAEConfig fields (joint
    decoder, inpainting), and the same options on a MAViL config are refused with the reason."""
    output_dir = tmp_path / "avmae"
    in_process("pretrain_audiovisual", [
        "--config_name", configs["avmae"], "--decoder_type", "joint", "--use_inpainting", "--demo_num_clips", "4",
        "--eval_split", "none", "--per_device_train_batch_size", "2", "--max_train_steps", "2",
        "--output_dir", str(output_dir)], cache)
    records = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and "inter_contrastive_loss" not in records[0] and "video_loss" in records[0]
    assert "audio_loss" in records[0]
    saved = json.loads((output_dir / "config.json").read_text())
    assert saved["use_inpainting"] is True and saved["decoder_strategy"] == "concat_and_decode"
    for options, message in ((["--decoder_type", "joint"], "an AV-MAE variant needs an AV-MAE config"),
                             (["--inpainting", "audio_to_video"], "--use_inpainting")):
        with pytest.raises(SystemExit, match=message):
            in_process("pretrain_audiovisual", ["--config_name", configs["mavil"], *options, "--demo_num_clips", "4",
                                                "--output_dir", str(tmp_path / "refused")], cache)


# ---------------------------------------------------------------------------------------------------------------------
# In-process: fine-tuning, linear probe, retrieval on the pretraining outputs
# ---------------------------------------------------------------------------------------------------------------------


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_process(monkeypatch):
    from accelerate.state import AcceleratorState, GradientState, PartialState

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")

    def reset():
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()

    def run(name: str, argv: list[str], cache: str):
        monkeypatch.setenv("HF_MASKEDAV_CACHE", cache)
        reset()
        try:
            _load_example(name).main(argv)
        finally:
            reset()

    return run


def test_finetune_video_with_mixing_and_multi_view_test(videomae_run, cache, in_process, tmp_path):
    output_dir = tmp_path / "finetuned"
    in_process("finetune_video", [
        "--model_name_or_path", str(videomae_run[0]), "--demo_num_clips", "8", "--demo_eval_num_clips", "4",
        "--per_device_train_batch_size", "4", "--max_train_steps", "3", "--eval_every_steps", "2",
        "--mixup", "0.8", "--cutmix", "1.0", "--label_smoothing", "0.1", "--repeated_sampling", "2",
        "--test_split", "validation", "--test_num_clips", "2", "--test_num_crops", "3", "--output_dir", str(output_dir),
    ], cache)
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 3 and [s for s, _ in summary["eval_history"]] == [2, 3]
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["test_views"] == [2, 3]
    card = (output_dir / "README.md").read_text()
    assert "pipeline_tag: video-classification" in card and "accuracy (2x3 views)" in card

    from transformers import pipeline

    classifier = pipeline("video-classification", model=str(output_dir), top_k=2)
    video = str(next(Path(cache).rglob("00001.mp4")))
    predictions = classifier(video)
    assert len(predictions) == 2 and predictions[0]["label"] in ("still", "slide", "rise", "fall", "flash", "bounce",
                                                                  "shake", "pulse")


def test_finetune_audiovisual_multi_label(mavil_stage1, cache, in_process, tmp_path):
    output_dir = tmp_path / "av_finetuned"
    in_process("finetune_audiovisual", [
        "--model_name_or_path", str(mavil_stage1[0]), "--demo_multi_label", "--demo_num_clips", "6",
        "--demo_eval_num_clips", "4", "--per_device_train_batch_size", "3", "--max_train_steps", "2",
        "--mixup", "0.8", "--freq_mask", "4", "--time_mask", "6", "--mask_time_prob", "0.25",
        "--output_dir", str(output_dir)], cache)
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["completed_steps"] == 2 and set(summary["best_eval_mAP_per_head"]) == {"audio_visual", "audio", "video"}
    from hf_maskedav import MAViLForAudioVisualClassification

    model = MAViLForAudioVisualClassification.from_pretrained(output_dir)
    assert model.config.problem_type == "multi_label_classification" and model.config.num_labels == 8


def test_linear_probe_video_and_audiovisual_pretrained_and_random(videomae_run, mavil_stage1, cache, in_process, tmp_path):
    common = ["--demo_num_clips", "8", "--demo_eval_num_clips", "8"]
    for model_dir, extra, name in ((videomae_run[0], [], "video"), (mavil_stage1[0], ["--modality", "audio_visual"], "av")):
        for flag in ((), ("--random_init",)):
            folder = tmp_path / f"{name}{'_random' if flag else ''}"
            in_process("linear_probe_video", ["--model_name_or_path", str(model_dir), *flag, *extra, *common,
                                              "--output_dir", str(folder)], cache)
    # a checkpoint folder of the run is probed as it is (its config and processor are saved beside the weights)
    in_process("linear_probe_video", ["--model_name_or_path", str(videomae_run[0] / "checkpoint-3"), *common,
                                      "--output_dir", str(tmp_path / "checkpoint")], cache)
    at_step_3 = json.loads((tmp_path / "checkpoint" / "probe_results.json").read_text())
    assert at_step_3["num_train"] == 8 and at_step_3["feature_dim"] == 32 and not at_step_3["random_init"]
    video, video_random = (json.loads((tmp_path / n / "probe_results.json").read_text()) for n in ("video", "video_random"))
    av = json.loads((tmp_path / "av" / "probe_results.json").read_text())
    assert video["num_train"] == 8 and video["num_eval"] == 8 and video["feature_dim"] == 32
    assert av["feature_dim"] == 64 and av["modality"] == "audio_visual"  # fused audio + video features
    assert video_random["random_init"] and not video["random_init"]
    assert all(0.0 <= r["eval_accuracy"] <= 1.0 for r in (video, video_random, av))
    # the attentive probe over MAViL's fused tokens: both parts of the fusion output, one token sequence
    in_process("linear_probe_video", ["--model_name_or_path", str(mavil_stage1[0]), "--modality", "audio_visual",
                                      "--readout", "attentive", "--attentive_steps", "30", *common,
                                      "--output_dir", str(tmp_path / "attentive")], cache)
    attentive = json.loads((tmp_path / "attentive" / "probe_results.json").read_text())
    assert attentive["readout"] == "attentive" and attentive["feature_dim"] == 32 and attentive["num_tokens"] > 2


def test_retrieval_eval(mavil_stage1, cache, in_process, tmp_path):
    in_process("retrieval_eval", ["--model_name_or_path", str(mavil_stage1[0]), "--demo_eval_num_clips", "6",
                                  "--eval_split", "validation", "--output_dir", str(tmp_path)], cache)
    results = json.loads((tmp_path / "retrieval_results.json").read_text())
    assert results["num_clips"] == 6 and results["chance_R@1"] == pytest.approx(1 / 6)
    assert 0 <= results["audio_to_video_R@1"] <= results["audio_to_video_R@5"] <= results["audio_to_video_R@10"] == 1.0
