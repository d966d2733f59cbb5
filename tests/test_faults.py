"""Training faults with real processes: SIGTERM, SIGKILL while a checkpoint is written, non-finite losses, corrupt
files. (issue: reliability)

Every run trains the same tiny Audio-MAE (``examples/pretrain_audio.py``, one process, 8 optimizer steps, checkpoints
every 2) on a folder where 4 of 16 files are corrupt, with the loss of step 3 made NaN by the test aid
``HF_MASKEDAV_NAN_LOSS_AT_STEPS``. The reference run goes through uninterrupted; the others are stopped or killed and
resumed, and must repeat the reference's loss sequence exactly (model, optimizer, scheduler, RNG, data position and
fault counters restored). A fine-tuning run (``examples/finetune_audio.py``) is stopped and resumed too, and the
four video/audio-visual scripts (pretrain_video, pretrain_audiovisual, finetune_video, finetune_audiovisual) skip a NaN
step and stop on SIGTERM with a checkpoint.

Each run is its own OS process (real signals, real ``SIGKILL``, real exit codes), forked by ``tests/fault_runner.py``
from one interpreter that imported torch/transformers/datasets once: on a 2-core machine an interpreter start-up costs
more than a tiny run, and nine of them would take minutes. The runs of a phase run at the same time.

Also here: the fault pieces themselves (``hf_maskedav.training.faults``). The 2-process ``kill -9`` + resume test is
``tests/test_training_audio.py::test_kill_after_checkpoint_then_resume_repeats_the_uninterrupted_losses``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from hf_maskedav import AudioMAEConfig, MaskedAVVideoMAEConfig, MAViLConfig
from hf_maskedav.training.checkpointing import latest_checkpoint
from hf_maskedav.training.faults import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    StopOnSignal,
    maybe_poison_loss,
    parse_step_set,
    step_if_finite,
)

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = ROOT / "examples" / "pretrain_audio.py"
FINETUNE = ROOT / "examples" / "finetune_audio.py"
STEPS = 8
NAN_STEP = 3
CORRUPT = ("empty.wav", "notes.wav", "header_only.wav", "nan_samples.wav")

@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    config = root / "config"
    AudioMAEConfig(
        max_length=32, num_mel_bins=32, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, decoder_meta_hidden_size=32, mask_ratio=0.75,
    ).save_pretrained(config)
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        soundfile.write(data / f"clip{i:02d}.wav", (0.1 * rng.standard_normal(8000 + 400 * i)).astype(np.float32), 16000)
    (data / "empty.wav").write_bytes(b"")
    (data / "notes.wav").write_text("not audio\n" * 50)
    (data / "header_only.wav").write_bytes((data / "clip00.wav").read_bytes()[:40])
    samples = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    samples[100] = np.nan
    soundfile.write(data / "nan_samples.wav", samples, 16000, subtype="FLOAT")
    videomae = root / "config_videomae"
    MaskedAVVideoMAEConfig(
        image_size=32, patch_size=8, num_frames=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, mask_ratio=0.75, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64,
    ).save_pretrained(videomae)
    mavil = root / "config_mavil"
    MAViLConfig(
        num_mel_bins=32, max_length=32, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
        hidden_size=32, num_attention_heads=2, intermediate_size=64, audio_num_hidden_layers=1,
        video_num_hidden_layers=1, fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2, decoder_intermediate_size=64, inter_contrastive_weight=0.1,
    ).save_pretrained(mavil)
    return root, config, data, {"videomae": videomae, "mavil": mavil}


# the video and audio-visual scripts: (script, config, extra arguments)
VIDEO_SCRIPTS = {
    "pretrain_video": ("videomae", ["--model", "videomae"]),
    "pretrain_audiovisual": ("mavil", []),
    "finetune_video": ("videomae", ["--test_split", "none"]),
    "finetune_audiovisual": ("mavil", []),
}


def _pretrain(workspace, output_dir: Path, *extra: str) -> list[str]:
    _, config, data, _ = workspace
    return [
        str(PRETRAIN), "--config_name", str(config), "--audio_files", str(data), "--per_device_train_batch_size", "4",
        "--max_train_steps", str(STEPS), "--checkpointing_steps", "2", "--eval_split", "none",
        "--output_dir", str(output_dir), *extra,
    ]


def _finetune(workspace, output_dir: Path, *extra: str) -> list[str]:
    return [
        str(FINETUNE), "--config_name", str(workspace[1]), "--demo_num_clips", "16", "--per_device_train_batch_size", "4",
        "--max_train_steps", "6", "--eval_split", "none", "--test_split", "none", "--output_dir", str(output_dir),
        *extra,
    ]


class Run:
    """One run's result: exit status, output, and what its output folder held when its phase ended."""

    def __init__(self, name: str, output_dir: Path, result: dict):
        self.name, self.output_dir = name, output_dir
        self.returncode = result["returncode"]
        self.after = result["after"]
        self.output = Path(f"{output_dir}.{name}.out").read_text()


def _steps_logged(output_dir: Path) -> int:
    path = output_dir / "train_log.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.fixture(scope="module")
def runs(workspace, tmp_path_factory):
    """Two phases of runs, forked from one interpreter by tests/fault_runner.py (see its docstring)."""
    root = tmp_path_factory.mktemp("runs")
    out = {name: root / name for name in ("reference", "sigterm", "killed", "aborted", "external", "finetune")}

    def run(name, output, argv, script=PRETRAIN, kill_while_renaming=None, **env):
        environment = {"HF_MASKEDAV_NAN_LOSS_AT_STEPS": str(NAN_STEP), **env}
        return {"name": name, "output": str(output), "script": str(script), "argv": argv, "env": environment,
                "kill_while_renaming": kill_while_renaming}

    video = []
    for script, (config, extra) in VIDEO_SCRIPTS.items():
        out[script] = root / script
        argv = [str(ROOT / "examples" / f"{script}.py"), "--config_name", str(workspace[3][config]), *extra,
                "--demo_num_clips", "8", "--per_device_train_batch_size", "2", "--max_train_steps", "4",
                "--eval_split", "none", "--output_dir", str(out[script])]
        video.append(run(script, out[script], argv, script=argv[0], HF_MASKEDAV_NAN_LOSS_AT_STEPS="1",
                         HF_MASKEDAV_SIGTERM_AT_STEP="2", HF_MASKEDAV_CACHE=str(root / f"cache_{script}")))
    phase1 = video + [
        run("reference", out["reference"], _pretrain(workspace, out["reference"])),
        run("sigterm", out["sigterm"], _pretrain(workspace, out["sigterm"]), HF_MASKEDAV_SIGTERM_AT_STEP="5"),
        run("killed", out["killed"], _pretrain(workspace, out["killed"]), kill_while_renaming=4),
        run("aborted", out["aborted"], _pretrain(workspace, out["aborted"], "--max_nonfinite_in_a_row", "3"),
            HF_MASKEDAV_NAN_LOSS_AT_STEPS="2-100"),
        run("external", out["external"],
            _pretrain(workspace, out["external"], "--max_train_steps", "5000", "--checkpointing_steps", "1000")),
        run("finetune", out["finetune"], _finetune(workspace, out["finetune"]), script=FINETUNE,
            HF_MASKEDAV_NAN_LOSS_AT_STEPS="2", HF_MASKEDAV_SIGTERM_AT_STEP="4"),
    ]
    # the interrupted runs are resumed with the same command (the NaN at step 3 stays in the schedule)
    phase2 = [
        run("sigterm_resumed", out["sigterm"], _pretrain(workspace, out["sigterm"], "--resume_from_checkpoint")),
        run("killed_resumed", out["killed"], _pretrain(workspace, out["killed"], "--resume_from_checkpoint")),
        run("finetune_resumed", out["finetune"], _finetune(workspace, out["finetune"], "--resume_from_checkpoint"),
            script=FINETUNE, HF_MASKEDAV_NAN_LOSS_AT_STEPS="2"),
    ]
    for item in phase1 + phase2:
        item["argv"] = item["argv"][1:]  # the runner gets the script separately
        item["env"].setdefault("ACCELERATE_USE_CPU", "true")
    plan, results = root / "plan.json", root / "results.json"
    plan.write_text(json.dumps([phase1, phase2]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_MASKEDAV_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    runner = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fault_runner.py"), str(plan), str(results)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # a pre-emption notice from outside, to the long run's process, once it is training
    pids_file, deadline = Path(f"{results}.pids.json"), time.time() + 500
    while _steps_logged(out["external"]) < 3 and runner.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    signalled_after = _steps_logged(out["external"])
    os.kill(json.loads(pids_file.read_text())["external"], signal.SIGTERM)
    runner_output, _ = runner.communicate(timeout=900)
    assert runner.returncode == 0, runner_output[-5000:]
    found = json.loads(results.read_text())
    runs = {item["name"]: Run(item["name"], Path(item["output"]), found[item["name"]]) for item in phase1 + phase2}
    runs["external"].signalled_after = signalled_after
    runs["dirs"] = out
    return runs


def _losses(output_dir: Path) -> dict[int, float]:
    """step -> loss from the step log; a step logged twice (stopped run + resumed run) keeps its last value."""
    losses = {}
    for line in (output_dir / "train_log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            losses[record["step"]] = record["loss"]
    return losses


def _assert_same_losses(got: dict, expected: dict):
    assert sorted(got) == sorted(expected) == list(range(1, STEPS + 1))
    for step in expected:
        if np.isnan(expected[step]):
            assert np.isnan(got[step]), step
        else:
            assert got[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), (step, got, expected)


def _summary(output_dir: Path) -> dict:
    return json.loads((output_dir / "train_summary.json").read_text())


def _state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "training_state.json").read_text())


def test_corrupt_files_and_a_nan_loss_do_not_stop_a_run(runs):
    run, folder = runs["reference"], runs["dirs"]["reference"]
    assert run.returncode == 0, run.output[-3000:]
    summary = _summary(folder)
    assert summary["completed_steps"] == STEPS
    # 4 of 16 files are corrupt: each is skipped (replaced by the next good clip) and reported by name
    assert summary["bad_samples"]["skipped"] >= len(CORRUPT)
    assert summary["bad_samples"]["used"] == STEPS * 4
    for name in CORRUPT:
        assert any(name in example for example in summary["bad_samples"]["examples"]), name
    assert "bad samples:" in run.output and "skipped of" in run.output
    # the NaN step: logged as NaN, its update skipped and counted, the weights stay finite
    assert summary["nonfinite_loss_steps_skipped"] == 1 and summary["nonfinite_loss_steps"] == [NAN_STEP]
    losses = _losses(folder)
    assert np.isnan(losses[NAN_STEP]) and all(np.isfinite(v) for s, v in losses.items() if s != NAN_STEP)
    assert f"step {NAN_STEP}: non-finite loss (nan); update skipped (1 in a row, 1 in total" in run.output
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_sigterm_mid_step_saves_a_checkpoint_exits_0_and_resumes_exactly(runs):
    stopped, resumed, folder = runs["sigterm"], runs["sigterm_resumed"], runs["dirs"]["sigterm"]
    # the signal arrived during step 5: the step was finished, saved as checkpoint-5, and the process exited with 0
    assert stopped.returncode == 0, stopped.output[-3000:]
    assert "received SIGTERM" in stopped.output
    assert "stopped by SIGTERM after step 5 of 8" in stopped.output
    assert stopped.after["states"]["checkpoint-5"]["completed_steps"] == 5
    assert "config.json" not in stopped.after["entries"]  # the final model is not written by a stopped run
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert "resumed from" in resumed.output and "checkpoint-5: step 5" in resumed.output
    _assert_same_losses(_losses(folder), _losses(runs["dirs"]["reference"]))
    summary, reference = _summary(folder), _summary(runs["dirs"]["reference"])
    assert summary["nonfinite_loss_steps"] == [NAN_STEP]  # counters restored from the checkpoint
    assert summary["bad_samples"] == reference["bad_samples"]


def test_external_sigterm_stops_at_the_next_step_boundary(runs):
    run, folder = runs["external"], runs["dirs"]["external"]
    assert run.returncode == 0, run.output[-3000:]
    steps = _steps_logged(folder)
    assert steps >= run.signalled_after >= 3
    checkpoint = latest_checkpoint(str(folder))
    assert checkpoint is not None and checkpoint.endswith(f"checkpoint-{steps}")
    state = _state(Path(checkpoint))
    assert state["completed_steps"] == steps and len(state["loss_history"]) == steps
    assert f"stopped by SIGTERM after step {steps} of 5000" in run.output


def test_sigkill_while_writing_a_checkpoint_never_leaves_a_corrupt_latest(runs):
    killed, resumed, folder = runs["killed"], runs["killed_resumed"], runs["dirs"]["killed"]
    assert killed.returncode == -signal.SIGKILL, killed.output[-3000:]
    # what the kill left: checkpoint-2 complete, checkpoint-4 fully written but still under its temporary name, and
    # "latest" pointing at checkpoint-2
    left = killed.after
    assert "checkpoint-2" in left["entries"] and ".checkpoint-4.tmp" in left["entries"]
    assert "checkpoint-4" not in left["entries"]
    assert {"model.safetensors", "training_state.json"} <= set(left["contents"][".checkpoint-4.tmp"])
    assert left["latest"].endswith("checkpoint-2")
    # the resumed run started from checkpoint-2 (the latest complete one): steps 3 and 4 were redone...
    assert "checkpoint-2: step 2" in resumed.output, resumed.output[-3000:]
    assert resumed.returncode == 0
    # ...and the loss sequence is the uninterrupted one
    _assert_same_losses(_losses(folder), _losses(runs["dirs"]["reference"]))
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())  # the leftover was replaced when step 4 saved
    assert resumed.after["states"]["checkpoint-8"]["completed_steps"] == STEPS


def test_kill_leftover_is_ignored_by_latest(workspace, tmp_path):
    """What ``latest`` sees right after such a kill: a temporary folder and an unfinished checkpoint are skipped."""
    from hf_maskedav.training.checkpointing import list_checkpoints

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "training_state.json").write_text(json.dumps({"completed_steps": 2}))
    (tmp_path / ".checkpoint-4.tmp").mkdir()
    (tmp_path / ".checkpoint-4.tmp" / "model.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / "checkpoint-6").mkdir()  # no training_state.json: not complete (e.g. copied by hand)
    assert latest_checkpoint(str(tmp_path)).endswith("checkpoint-2")
    assert [Path(p).name for p in list_checkpoints(str(tmp_path))] == ["checkpoint-2"]


def test_nonfinite_losses_in_a_row_abort_with_a_message(runs):
    run, folder = runs["aborted"], runs["dirs"]["aborted"]
    assert run.returncode == 1, run.output[-3000:]
    assert (
        "stopped: the loss was non-finite (nan) for 4 optimizer steps in a row (steps [2, 3, 4, 5]), more than "
        "--max_nonfinite_in_a_row=3" in run.output
    )
    assert "lower the learning rate" in run.output
    # the last checkpoint before the abort is intact and resumable; no final model was written
    assert run.after["states"]["checkpoint-4"]["completed_steps"] == 4
    assert "config.json" not in run.after["entries"] and run.after["latest"].endswith("checkpoint-4")


def test_finetune_sigterm_and_nan_then_resume(runs):
    stopped, resumed, folder = runs["finetune"], runs["finetune_resumed"], runs["dirs"]["finetune"]
    assert stopped.returncode == 0, stopped.output[-3000:]
    assert "stopped by SIGTERM after step 4 of 6" in stopped.output
    state = stopped.after["states"]["checkpoint-4"]
    assert state["extra"]["nonfinite"]["skipped_steps"] == [2]
    assert resumed.returncode == 0, resumed.output[-3000:]
    summary = _summary(folder)
    assert summary["completed_steps"] == 6 and summary["nonfinite_loss_steps"] == [2]
    assert (folder / "model.safetensors").is_file()
    _check_loads_with_from_pretrained(folder / "checkpoint-4", "AutoModelForAudioClassification")


# the class that loads each script's checkpoints (through the Auto classes, or the package for MAViL's classifier)
CHECKPOINT_CLASSES = {"pretrain_video": "AutoModelForPreTraining", "pretrain_audiovisual": "AutoModelForPreTraining",
                      "finetune_video": "AutoModelForVideoClassification",
                      "finetune_audiovisual": "MAViLForAudioVisualClassification"}


def _check_loads_with_from_pretrained(checkpoint: Path, class_name: str) -> None:
    """A checkpoint folder is also a from_pretrained folder: every weight of the model loads from it, and the
    feature extractor / processor saved beside it loads too."""
    import transformers

    import hf_maskedav

    model_class = getattr(transformers, class_name, None) or getattr(hf_maskedav, class_name)
    _, info = model_class.from_pretrained(checkpoint, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], (checkpoint, info)
    loader = transformers.AutoFeatureExtractor if (checkpoint / "preprocessor_config.json").is_file() else \
        transformers.AutoProcessor
    assert loader.from_pretrained(checkpoint) is not None


@pytest.mark.parametrize("script", list(VIDEO_SCRIPTS))
def test_video_and_audiovisual_scripts_skip_nan_and_stop_on_sigterm(runs, script):
    """The same fault handling in the video/audio-visual scripts: NaN at step 1 skipped and counted (in the
    checkpoint), SIGTERM during step 2 -> checkpoint-2 and exit status 0."""
    run = runs[script]
    assert run.returncode == 0, run.output[-3000:]
    assert "step 1: non-finite loss (nan); update skipped" in run.output
    assert "stopped by SIGTERM after step 2 of 4" in run.output
    state = run.after["states"]["checkpoint-2"]
    assert state["completed_steps"] == 2 and state["extra"]["nonfinite"]["skipped_steps"] == [1]
    assert "config.json" not in run.after["entries"]
    _check_loads_with_from_pretrained(run.output_dir / "checkpoint-2", CHECKPOINT_CLASSES[script])


# ------------------------------------------------------------------------------------------------- the pieces


def test_guard_skips_counts_and_aborts():
    messages = []
    guard = NonFiniteLossGuard(max_in_a_row=2, log=messages.append)
    assert guard.update(1.0, 1)
    assert not guard.update(float("nan"), 2)
    assert not guard.update(float("inf"), 3)
    assert guard.update(torch.tensor(0.5), 4)  # a finite step resets the run of bad ones
    assert not guard.update(float("nan"), 5) and not guard.update(float("-inf"), 6)
    with pytest.raises(NonFiniteLossError, match=r"for 3 optimizer steps in a row \(steps \[5, 6, 7\]\)"):
        guard.update(float("nan"), 7)
    assert guard.skipped == 5 and len(messages) == 4
    restored = NonFiniteLossGuard(2)
    restored.load_state_dict(json.loads(json.dumps(guard.state_dict())))
    assert restored.state_dict() == guard.state_dict()
    with pytest.raises(ValueError):
        NonFiniteLossGuard(-1)


class _OneProcess:
    """The two Accelerator methods ``step_if_finite`` uses, for one process."""

    num_processes = 1

    def reduce(self, tensor, reduction="mean"):
        return tensor

    def clip_grad_norm_(self, parameters, max_norm):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


def test_step_if_finite_drops_the_gradients_of_a_nan_update():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    guard = NonFiniteLossGuard(3, log=None)
    loss = maybe_poison_loss(model(torch.randn(3, 4)).sum(), 1)  # inert: the variable is unset
    loss.backward()
    assert step_if_finite(_OneProcess(), model, optimizer, [loss.detach()], guard, 1, max_grad_norm=1.0) == loss.item()
    after_good = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(after_good["weight"], before["weight"])
    bad = model(torch.randn(3, 4)).sum() * float("nan")
    bad.backward()
    assert np.isnan(step_if_finite(_OneProcess(), model, optimizer, [bad.detach()], guard, 2))
    for key, value in model.state_dict().items():  # parameters untouched, gradients cleared, moments still finite
        assert torch.equal(value, after_good[key])
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert all(torch.isfinite(s["exp_avg"]).all() for s in optimizer.state.values())
    assert guard.skipped_steps == [2]


def test_poison_and_signal_aids(monkeypatch):
    assert parse_step_set("3, 5-7,") == {3, 5, 6, 7}
    monkeypatch.setenv("HF_MASKEDAV_NAN_LOSS_AT_STEPS", "2,4-5")
    assert torch.isnan(maybe_poison_loss(torch.tensor(1.0), 4)) and maybe_poison_loss(torch.tensor(1.0), 3) == 1.0


def test_stop_on_signal_sets_a_flag_and_restores_the_handlers():
    previous = signal.getsignal(signal.SIGTERM)
    messages = []
    with StopOnSignal(log=messages.append) as stopper:
        assert not stopper.should_stop()
        os.kill(os.getpid(), signal.SIGTERM)  # would end the test process without the handler
        os.kill(os.getpid(), signal.SIGTERM)  # a second one while stopping is ignored too
        assert stopper.should_stop() and stopper.received == "SIGTERM"
        assert len(messages) == 1 and "received SIGTERM" in messages[0]
    assert signal.getsignal(signal.SIGTERM) == previous
