"""Checkpoints for the Accelerate training scripts: atomic save, find the latest, resume everything.

A checkpoint is a folder ``<output_dir>/checkpoint-<step>`` holding what ``accelerator.save_state`` writes (model,
optimizer, registered objects such as the LR scheduler, and every process's RNG states) plus ``training_state.json``
(the loop's position: optimizer steps done, epoch, batches consumed in that epoch, loss history, bad-sample counts,
anything else the script adds). It is written under a temporary name and renamed when complete, so a crash or a
``kill -9`` during the write never leaves a half-written checkpoint that looks valid; ``training_state.json`` is
written last, and :func:`latest_checkpoint` only considers folders that have it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "training_state.json"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


@dataclass
class TrainingState:
    """Where the training loop is. Saved as JSON inside each checkpoint.

    Args:
        completed_steps: optimizer updates done.
        epoch: the epoch in progress (or the next one when ``batches_in_epoch`` reached the epoch's end).
        batches_in_epoch: data-loader batches (micro-batches, per process) consumed in ``epoch``.
        loss_history: ``[[step, loss], ...]`` for the loss curve.
        bad_samples: per-process :class:`~hf_maskedav.data.BadSampleTracker` states, keyed by process index (as a
            string, JSON keys): each process counts the samples it read.
        best_metric: best evaluation metric so far (fine-tuning).
        extra: anything else a script wants back after a resume.
    """

    completed_steps: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    loss_history: list = field(default_factory=list)
    bad_samples: dict = field(default_factory=dict)
    best_metric: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: str) -> "TrainingState":
        with open(path) as handle:
            data = json.load(handle)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def checkpoint_step(path: str) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name, else None."""
    match = _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else None


def list_checkpoints(output_dir: str) -> list[str]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        step = checkpoint_step(name)
        path = os.path.join(output_dir, name)
        if step is not None and os.path.isfile(os.path.join(path, STATE_FILE)):
            found.append((step, path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str) -> str | None:
    """The most recent complete checkpoint in ``output_dir``, or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def resolve_resume_path(resume_from_checkpoint: str | None, output_dir: str) -> str | None:
    """What ``--resume_from_checkpoint`` means: None (fresh run), ``"latest"`` (the newest complete checkpoint in
    ``output_dir``, or a fresh run when there is none), or a checkpoint folder (must exist and be complete)."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        return latest_checkpoint(output_dir)
    if not os.path.isfile(os.path.join(resume_from_checkpoint, STATE_FILE)):
        raise FileNotFoundError(
            f"{resume_from_checkpoint} is not a complete checkpoint (no {STATE_FILE}); pass a checkpoint-<step> "
            f"folder or 'latest'"
        )
    return resume_from_checkpoint


def save_checkpoint(
    accelerator, output_dir: str, state: TrainingState, total_limit: int | None = None, pretrained=()
) -> str:
    """Save everything needed to resume, atomically. Call on every process.

    Writes into ``.checkpoint-<step>.tmp`` (``accelerator.save_state`` + ``training_state.json`` last), then renames
    it to ``checkpoint-<step>``. With ``total_limit``, older checkpoints beyond the limit are deleted afterwards.
    ``pretrained``: objects with ``save_pretrained`` (the model's config, its feature extractor or processor) saved
    beside ``accelerate``'s ``model.safetensors``, so that the checkpoint also loads with ``from_pretrained`` (as a
    ``Trainer`` checkpoint does): probe, fine-tune or convert any step of a run.

    Returns:
        the final checkpoint folder.
    """
    step = state.completed_steps
    final = os.path.join(output_dir, f"{CHECKPOINT_PREFIX}{step}")
    temporary = os.path.join(output_dir, f".{CHECKPOINT_PREFIX}{step}.tmp")
    if accelerator.is_main_process:
        os.makedirs(output_dir, exist_ok=True)
        if os.path.exists(temporary):  # left over by a run killed while writing
            shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for part in pretrained:
            part.save_pretrained(temporary)
        with open(os.path.join(temporary, STATE_FILE + ".part"), "w") as handle:
            handle.write(state.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(os.path.join(temporary, STATE_FILE + ".part"), os.path.join(temporary, STATE_FILE))
        replace_folder(temporary, final)  # the same step saved again (a resumed run): swapped, never deleted first
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def replace_folder(temporary: str, final: str) -> None:
    """Rename the complete folder ``temporary`` to ``final``. An existing ``final`` (the same step saved again, e.g. by a
    resumed run; a better model) is swapped out first and deleted after, never deleted before: a crash leaves either
    the old folder or the new one."""
    if os.path.exists(final):
        stale = final + ".old"
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(final, stale)
        os.replace(temporary, final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.replace(temporary, final)


def model_state_dict(accelerator, model) -> dict:
    """The model's full state dict for ``save_pretrained`` (gathered under FSDP / DeepSpeed by
    ``accelerator.get_state_dict``), with the keys of the model itself: a model compiled by Accelerate
    (``--torch_compile``, ``accelerate launch --dynamo_backend ...``) is wrapped in torch's ``OptimizedModule``, whose
    state dict prefixes every key with ``_orig_mod.``; saved as such, ``from_pretrained`` would find none of its
    weights and start from random ones."""
    state = accelerator.get_state_dict(model)
    if state is None:  # processes other than the main one under some DeepSpeed stages
        return state
    prefix = "_orig_mod."
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in state.items()}


def save_model_and_processors(accelerator, model, folder: str, processors=(), atomic: bool = True,
                              beside_other_files: bool = False) -> None:
    """``save_pretrained`` of the (wrapped) model and its processors into ``folder`` (call on every process).

    With ``atomic`` it writes into ``folder.tmp`` and renames it when complete, so a crash never leaves a
    half-written model that looks valid. ``beside_other_files``: ``folder`` also holds what must stay (a pretraining
    run's output folder: checkpoints, logs, pictures), so the model is written into ``folder/.model.tmp`` and each
    complete file is then moved into ``folder`` by an atomic rename, the weights last: a crash mid-save leaves every
    file either whole from before or whole from now, never truncated.
    """
    if beside_other_files:
        target = os.path.join(folder, ".model.tmp")
    else:
        target = folder + ".tmp" if atomic else folder
    if accelerator.is_main_process and target != folder and os.path.exists(target):
        shutil.rmtree(target)
    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(
        target, is_main_process=accelerator.is_main_process, save_function=accelerator.save,
        state_dict=model_state_dict(accelerator, model),
    )
    # every process's save_pretrained creates and lists ``target``: the main one may move it away only once all are done
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for processor in processors:
            if processor is not None:
                processor.save_pretrained(target)
        if beside_other_files:
            _move_files_into(target, folder)
        elif atomic:
            replace_folder(target, folder)
    accelerator.wait_for_everyone()


def _is_weight_file(name: str) -> bool:
    return name.startswith(("model", "pytorch_model")) and name.endswith((".safetensors", ".bin", ".index.json"))


def _move_files_into(temporary: str, folder: str) -> None:
    """Move every file of the complete folder ``temporary`` into ``folder`` (atomic renames on one file system),
    weights last, then remove ``temporary``. Weight files of an earlier save that this one does not overwrite
    (another sharding) are removed first, so that no stale shard is ever loaded beside the new ones."""
    names = os.listdir(temporary)
    weights = sorted(name for name in names if _is_weight_file(name))
    for name in sorted(set(names) - set(weights)):
        os.replace(os.path.join(temporary, name), os.path.join(folder, name))
    for old in os.listdir(folder):
        if _is_weight_file(old) and old not in weights:
            os.remove(os.path.join(folder, old))
    for name in weights:
        os.replace(os.path.join(temporary, name), os.path.join(folder, name))
    shutil.rmtree(temporary)


def clear_previous_run(output_dir: str, log_name: str = "train_log.jsonl") -> None:
    """Remove another run's checkpoints (complete or not) and step log from ``output_dir`` before a fresh run there
    (``--overwrite_output_dir``), so that "latest" and the loss log can only refer to the new run. Main process only."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and (checkpoint_step(name) is not None or name.startswith(f".{CHECKPOINT_PREFIX}")):
            shutil.rmtree(path)
    if os.path.isfile(os.path.join(output_dir, log_name)):
        os.remove(os.path.join(output_dir, log_name))


def load_checkpoint(accelerator, path: str) -> TrainingState:
    """Restore model, optimizer, registered objects and RNG states from ``path``; return the loop state."""
    accelerator.load_state(path)
    return TrainingState.from_file(os.path.join(path, STATE_FILE))


__all__ = [
    "CHECKPOINT_PREFIX",
    "STATE_FILE",
    "TrainingState",
    "checkpoint_step",
    "clear_previous_run",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "replace_folder",
    "resolve_resume_path",
    "save_checkpoint",
    "save_model_and_processors",
]
