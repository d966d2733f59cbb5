"""Faults during training: pre-emption signals and non-finite losses, as pieces every training loop shares.

* :class:`StopOnSignal` -- SIGTERM (and SIGUSR1, which SLURM can send ahead of a pre-emption) set a flag instead of
  killing the process; the loop asks :meth:`StopOnSignal.should_stop` at each optimizer-step boundary, saves a
  checkpoint and exits cleanly (:data:`PREEMPTED_EXIT_CODE`). With several processes the flag is combined over all of
  them, so every process stops at the same step (a signal reaching only one process still stops all).
* :class:`NonFiniteLossGuard` -- a NaN/Inf loss skips the optimizer update (gradients dropped), is counted and logged,
  and ``max_in_a_row`` non-finite updates in a row stop the run with :class:`NonFiniteLossError`. The decision uses
  the loss averaged over processes, so every process skips the same updates.
* :func:`maybe_poison_loss` -- a test aid: ``HF_MASKEDAV_NAN_LOSS_AT_STEPS=3,5-6`` turns the loss of those optimizer
  updates into NaN, to exercise the guard from a real run. Inert when the variable is unset.
* :func:`maybe_signal_self` -- a test aid: ``HF_MASKEDAV_SIGTERM_AT_STEP=3`` makes the process SIGTERM itself in the
  middle of optimizer update 3 (a deterministic pre-emption). Inert when the variable is unset.
* :func:`ignore_stop_signals_in_worker` -- ``worker_init_fn`` for data-loader workers, so a SIGTERM sent to the whole
  process group does not kill the workers before the main process has saved its checkpoint.
* :func:`maybe_inject_fault` -- a test aid: ``HF_MASKEDAV_KILL_AT_STEP=N`` makes the process SIGKILL itself once N
  optimizer steps are done (after any checkpoint of that step), like a pre-empted machine. Inert when unset.

The loops do not call these one by one: :class:`~hf_maskedav.training.run.TrainingRun` wires them in (its
``optimizer_step``, ``step_done``, ``wind_down``; the test aids behind ``TrainingRun.test_aids``, which calls
:func:`apply_test_aids`).
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable, Iterable

import torch

__all__ = [
    "apply_test_aids",
    "KILL_ENV",
    "NAN_LOSS_ENV",
    "PREEMPTED_EXIT_CODE",
    "SIGTERM_ENV",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "StopOnSignal",
    "ignore_stop_signals_in_worker",
    "maybe_inject_fault",
    "maybe_poison_loss",
    "maybe_signal_self",
    "parse_step_set",
    "step_if_finite",
]

# Exit status of a run stopped by a signal after saving its checkpoint: 0, so that "exited cleanly" is what a
# scheduler sees; whether the run finished is in the log and in the checkpoint's completed_steps.
PREEMPTED_EXIT_CODE = 0
DEFAULT_STOP_SIGNALS = ("SIGTERM", "SIGUSR1")
NAN_LOSS_ENV = "HF_MASKEDAV_NAN_LOSS_AT_STEPS"
SIGTERM_ENV = "HF_MASKEDAV_SIGTERM_AT_STEP"
KILL_ENV = "HF_MASKEDAV_KILL_AT_STEP"


class StopOnSignal:
    """Turn stop signals into a flag that the training loop checks at optimizer-step boundaries.

    Args:
        signals: signal names to catch (default SIGTERM and SIGUSR1). SIGINT (Ctrl-C) is left alone: it still
            interrupts at once.
        log: where to report a received signal (``print`` by default; a signal handler must not block).

    The handlers are installed on construction, in the main thread, and restored by :meth:`close` (or ``with``). A
    second signal of the same kind while the flag is already set is ignored too: the checkpoint being written must
    finish; a scheduler that cannot wait sends SIGKILL, and the atomic checkpoints make that safe.
    """

    def __init__(self, signals: Iterable[str] = DEFAULT_STOP_SIGNALS, log: Callable[[str], None] | None = print):
        self.log = log
        self.received: str | None = None
        self._previous: dict[int, object] = {}
        for name in signals:
            number = getattr(signal, name, None)
            if number is None:  # e.g. SIGUSR1 on Windows
                continue
            self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number, frame) -> None:
        name = signal.Signals(number).name
        if self.received is None and self.log is not None:
            self.log(f"received {name}: saving a checkpoint and stopping at the end of the current optimizer step")
        self.received = self.received or name

    @property
    def requested(self) -> bool:
        """Whether this process received a stop signal."""
        return self.received is not None

    def should_stop(self, accelerator=None) -> bool:
        """Whether the loop must stop now: this process or (with several processes) any process got a signal.

        Call it on every process at the same point of the loop (it is a collective operation with several
        processes: one small all-reduce).
        """
        flag = self.requested
        if accelerator is not None and accelerator.num_processes > 1:
            value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
            flag = bool(accelerator.reduce(value, reduction="sum").item() > 0)
            if flag and self.received is None:
                self.received = "a signal on another process"
        return flag

    def wind_down(self, accelerator, completed_steps: int, max_train_steps: int,
                  log: Callable[[str], None] = print) -> int:
        """End a run stopped by :meth:`should_stop` once the checkpoint of ``completed_steps`` is written: say how to
        continue, restore the handlers, end Accelerate's trackers. Returns :data:`PREEMPTED_EXIT_CODE` (exit with it)."""
        log(f"stopped by {self.received} after step {completed_steps} of {max_train_steps}; the checkpoint is saved: "
            "run the same command with --resume_from_checkpoint to continue")
        self.close()
        accelerator.end_training()
        return PREEMPTED_EXIT_CODE

    def close(self) -> None:
        """Restore the previous handlers."""
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    def __enter__(self) -> "StopOnSignal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ignore_stop_signals_in_worker(worker_id: int | None = None) -> None:
    """``worker_init_fn`` for ``torch.utils.data.DataLoader``: data workers ignore SIGTERM/SIGUSR1, so a signal sent to
    the whole process group reaches the main process's handler while the workers keep serving batches (they exit
    with the main process)."""
    for name in DEFAULT_STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses in a row: the run is diverging (or the data is corrupt)."""


class NonFiniteLossGuard:
    """Skip optimizer updates whose loss is NaN/Inf, count them, and stop after ``max_in_a_row`` in a row.

    Args:
        max_in_a_row: consecutive non-finite updates tolerated; the next one raises :class:`NonFiniteLossError`.
            0 stops at the first one.
        log: called with a message for each skipped update.

    A skipped update still counts as an optimizer step of the schedule (as ``torch.amp.GradScaler`` does when it skips
    a step): the data is consumed, the learning-rate schedule advances, the step is logged with its loss; only the
    parameter update is dropped. Save :meth:`state_dict` in checkpoints so counts survive a resume.
    """

    def __init__(self, max_in_a_row: int = 5, log: Callable[[str], None] | None = print):
        if max_in_a_row < 0:
            raise ValueError(f"max_in_a_row must be >= 0, got {max_in_a_row}")
        self.max_in_a_row = max_in_a_row
        self.log = log
        self.skipped = 0
        self.in_a_row = 0
        self.skipped_steps: list[int] = []

    def update(self, loss: float | torch.Tensor, step: int) -> bool:
        """Record the loss of optimizer update ``step``; return True to apply the update, False to skip it.

        Raises:
            NonFiniteLossError: the ``max_in_a_row + 1``-th non-finite update in a row.
        """
        value = float(loss.detach().float().mean()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(value):
            self.in_a_row = 0
            return True
        self.skipped += 1
        self.in_a_row += 1
        self.skipped_steps.append(int(step))
        if self.in_a_row > self.max_in_a_row:
            raise NonFiniteLossError(
                f"the loss was non-finite ({value}) for {self.in_a_row} optimizer steps in a row (steps "
                f"{self.skipped_steps[-self.in_a_row:]}), more than --max_nonfinite_in_a_row={self.max_in_a_row}; "
                "stopping. The run is diverging or the data is corrupt: lower the learning rate, clip gradients "
                "(--max_grad_norm), use bf16 instead of fp16, or check the batches of those steps. The last "
                "checkpoint is intact; resume from it after the fix."
            )
        if self.log is not None:
            self.log(
                f"step {step}: non-finite loss ({value}); update skipped ({self.in_a_row} in a row, {self.skipped} in "
                f"total, stopping after {self.max_in_a_row} in a row)"
            )
        return False

    def state_dict(self) -> dict:
        return {"skipped": self.skipped, "in_a_row": self.in_a_row, "skipped_steps": list(self.skipped_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get("skipped", 0))
        self.in_a_row = int(state.get("in_a_row", 0))
        self.skipped_steps = [int(s) for s in state.get("skipped_steps", [])]


def step_if_finite(
    accelerator,
    model,
    optimizer,
    micro_losses: list[torch.Tensor],
    guard: NonFiniteLossGuard,
    step: int,
    max_grad_norm: float | None = None,
) -> float:
    """End of an optimizer update (call where ``accelerator.sync_gradients`` is True, inside ``accumulate``): the
    update's loss (mean over its micro-batches and over processes, the same value everywhere), then clip + step when
    it is finite, or drop the gradients when it is not (counted by ``guard``). Returns the loss.

    Raises:
        NonFiniteLossError: from ``guard`` after too many non-finite updates in a row.
    """
    loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
    if guard.update(loss, step):
        if max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    optimizer.zero_grad()
    return loss


def parse_step_set(text: str) -> set[int]:
    """``"3,5-7"`` -> ``{3, 5, 6, 7}``."""
    steps: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            steps.update(range(int(first), int(last) + 1))
        else:
            steps.add(int(part))
    return steps


def maybe_signal_self(step: int) -> None:
    """Test aid: ``HF_MASKEDAV_SIGTERM_AT_STEP=N`` makes the process send itself SIGTERM while it computes optimizer
    update ``N`` (call it at the start of each micro-batch with ``completed_steps + 1``), i.e. in the middle of a
    step, as a pre-emption notice arrives. Inert when the variable is unset."""
    target = os.environ.get(SIGTERM_ENV)
    if target is not None and step == int(target):
        os.kill(os.getpid(), signal.SIGTERM)


def maybe_poison_loss(loss: torch.Tensor, step: int) -> torch.Tensor:
    """Test aid: the loss of optimizer update ``step`` (1-based: the update that becomes step ``step``) is made NaN
    when ``step`` is listed in ``HF_MASKEDAV_NAN_LOSS_AT_STEPS`` (e.g. ``"3"``, ``"3,5-7"``). Gradients of a poisoned
    loss are NaN, as those of a diverged run. Returns ``loss`` unchanged otherwise."""
    spec = os.environ.get(NAN_LOSS_ENV)
    if spec and step in parse_step_set(spec):
        return loss * float("nan")
    return loss


def maybe_inject_fault(completed_steps: int) -> None:
    """Test aid: ``HF_MASKEDAV_KILL_AT_STEP=N`` makes the process SIGKILL itself once N optimizer steps are done
    (after any checkpoint of that step), like a pre-empted machine. Used by the resume tests; inert otherwise."""
    target = os.environ.get(KILL_ENV)
    if target is not None and completed_steps == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def apply_test_aids(loss: torch.Tensor, step: int) -> torch.Tensor:
    """The test aids of a micro-batch of optimizer update ``step`` (1-based), in one call: :func:`maybe_signal_self`
    (a SIGTERM mid-step) and :func:`maybe_poison_loss` (a NaN loss). Returns ``loss``, unchanged unless poisoned."""
    maybe_signal_self(step)
    return maybe_poison_loss(loss, step)
