"""Small pieces the training scripts share: the step log, per-process state collection, the world-size check, texts."""

from __future__ import annotations

import json
import os


class StepLog:
    """Append-only JSON-lines log of training/eval records (``train_log.jsonl``), written by the main process.

    Each line is flushed at once, so a killed run keeps every record up to its last step.
    """

    def __init__(self, path: str, enabled: bool = True):
        self.path = path
        self.enabled = enabled
        if enabled:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, **record) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    @staticmethod
    def read(path: str) -> list[dict]:
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]


def per_process_states(accelerator, state: dict) -> dict[str, dict]:
    """``{process_index: state}`` for every process (call on every process)."""
    if accelerator.num_processes == 1:
        return {"0": state}
    from accelerate.utils import gather_object

    gathered = gather_object([state])
    return {str(i): s for i, s in enumerate(gathered)}


def check_world_size(accelerator) -> None:
    """Stop when the launcher started several processes but Accelerate sees only one in each (every process would
    train alone and they would overwrite each other's outputs). Happens with torchrun-launched CPU processes when
    ``ACCELERATE_USE_CPU=true`` is not set."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        raise SystemExit(
            f"the launcher started {launched} processes but Accelerate sees a single one in each: they would train "
            "separately. On CPU, set ACCELERATE_USE_CPU=true (e.g. ACCELERATE_USE_CPU=true accelerate launch "
            "--multi_gpu --num_processes 2 ...); on GPU, check that CUDA is visible to every process."
        )
    note = sharding_fallback_note(accelerator)
    if note is not None and accelerator.is_main_process:
        print(note, flush=True)


def sharding_fallback_note(accelerator) -> str | None:
    """What to tell the user when the accelerate config asked for FSDP or DeepSpeed and Accelerate does not apply it.

    ``accelerate launch --config_file fsdp.yaml`` sets ``ACCELERATE_USE_FSDP=true`` in every process, but with
    ``ACCELERATE_USE_CPU=true`` Accelerate makes the run ``MULTI_CPU`` (its ``AcceleratorState`` turns FSDP on only for
    accelerator types, DeepSpeed only when not on CPU): the processes then train as plain data parallel (gloo), with
    nothing sharded. The run is correct, but not what the config says, so the scripts say it once at start.
    """
    asked = [name for name, variable in (("FSDP", "ACCELERATE_USE_FSDP"), ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED"))
             if os.environ.get(variable, "false").lower() == "true"]
    kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))
    if not asked or kind in ("FSDP", "DEEPSPEED"):
        return None
    return (
        f"note: the accelerate config asks for {' and '.join(asked)}, but Accelerate runs this as {kind} (on CPU it "
        "applies neither): the processes train as plain data parallel and nothing is sharded. FSDP/DeepSpeed need "
        "GPUs (untested on GPU here; docs/training.md#multi-gpu-configs)."
    )


def best_eval_text(metric_name: str, best_metric: float | None, best_step: int | None) -> str:
    """The fine-tuning scripts' closing line about the kept model: the best evaluation score and its step, or, when
    nothing was evaluated, that the last model is kept (never "best eval accuracy: None (step None)")."""
    if best_metric is None:
        return "no evaluation during training (no evaluation split): the model of the last step is kept"
    return f"best eval {metric_name}: {best_metric:.4f} (step {best_step})"


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


__all__ = [
    "StepLog",
    "best_eval_text",
    "check_world_size",
    "format_duration",
    "per_process_states",
]
