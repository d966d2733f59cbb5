"""Wall-clock budget of a training loop (``--max_train_minutes``).

A :class:`TimeBudget` measures the time spent in the training loop (from its first step; model loading and the final
evaluation/saving are outside it), carries it across a checkpoint/resume (``state_dict`` goes into the training state),
and tells the loop when the budget is spent. The cosine learning-rate schedule follows the budget too: given
``progress=budget.progress``, :func:`~hf_maskedav.training.cosine_schedule_with_warmup` uses
``max(step / max_steps, elapsed / budget)`` (warm-up included), so a run stopped by its budget has annealed like a
run that reached its last step, instead of being cut off at a high learning rate.

With several processes the elapsed time is the main process's, broadcast at every optimizer step (one small
collective, only when a budget is set): every process then sets the same learning rate and stops at the same step.
"""

from __future__ import annotations

import time

import torch


class TimeBudget:
    """Time spent in the training loop, and an optional limit on it.

    Args:
        max_minutes: the budget in minutes, or None for no limit (the time is still measured).
        spent_seconds: loop time already spent by the run being resumed.
    """

    def __init__(self, max_minutes: float | None = None, spent_seconds: float = 0.0):
        if max_minutes is not None and max_minutes <= 0:
            raise ValueError(f"--max_train_minutes must be positive, got {max_minutes}")
        self.max_minutes = max_minutes
        self.spent_seconds = float(spent_seconds)
        self._started: float | None = None
        self._elapsed = float(spent_seconds)  # the value every process agrees on, updated by tick()
        self.stopped = False

    @property
    def limit_seconds(self) -> float | None:
        return None if self.max_minutes is None else 60.0 * self.max_minutes

    def start(self) -> None:
        """Start (or restart after a resume) the clock: call right before the first training step."""
        self._started = time.monotonic()

    def _local_elapsed(self) -> float:
        if self._started is None:
            return self.spent_seconds
        return self.spent_seconds + time.monotonic() - self._started

    def charge(self, seconds: float) -> None:
        """Count ``seconds`` of work done before the loop (e.g. fitting the head) as loop time: a fair comparison
        under one budget includes every second a method spends on training."""
        self.spent_seconds += float(seconds)
        self._elapsed += float(seconds)

    def tick(self, accelerator=None) -> float:
        """Read the clock at an optimizer-step boundary (call on every process at the same point); returns the
        elapsed seconds, the main process's when there are several."""
        elapsed = self._local_elapsed()
        if self.max_minutes is not None and accelerator is not None and accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            value = torch.tensor([elapsed], dtype=torch.float64, device=accelerator.device)
            elapsed = float(broadcast(value, from_process=0).item())
        self._elapsed = elapsed
        return elapsed

    @property
    def elapsed(self) -> float:
        """Loop seconds at the last :meth:`tick` (including those of the run resumed)."""
        return self._elapsed

    def progress(self) -> float:
        """Fraction of the budget spent at the last tick (0 without a budget); may exceed 1."""
        if self.max_minutes is None:
            return 0.0
        return self._elapsed / self.limit_seconds

    def exhausted(self) -> bool:
        """True once the budget is spent (as of the last tick); remembered as ``stopped``."""
        if self.max_minutes is not None and self._elapsed >= self.limit_seconds:
            self.stopped = True
        return self.stopped

    def state_dict(self) -> dict:
        """What a checkpoint keeps (``TrainingState.extra["time_budget"]``)."""
        return {"train_loop_seconds": self._elapsed}

    def load_state_dict(self, state: dict | None) -> None:
        seconds = float((state or {}).get("train_loop_seconds", 0.0))
        self.spent_seconds = self._elapsed = seconds
        self._started = None

    def summary(self) -> dict:
        """The ``train_summary.json`` fields."""
        return {
            "max_train_minutes": self.max_minutes,
            "stopped_by_time_budget": bool(self.stopped),
            "train_loop_seconds": round(self._elapsed, 1),
        }

    def describe(self, completed_steps: int, max_train_steps: int) -> str:
        """One line for the log when the budget ended the loop."""
        return (
            f"time budget of {self.max_minutes:g} min spent after {completed_steps} of {max_train_steps} optimizer "
            f"steps ({self._elapsed / 60:.2f} min in the loop): finishing the run (evaluation, saving)"
        )


class LoopProgress:
    """The training loop's progress bar, with a true ETA under ``--max_train_minutes``.

    Without a budget it is the usual bar over optimizer steps. With one, the run ends at whichever comes first, the
    last step or the end of the budget, so the bar shows the share of the run done -- the larger of
    ``steps / max_steps`` and ``elapsed / budget``, what the schedule follows -- in percent, with the step count
    beside it (a budgeted run often sets a huge step count, and a step bar would then promise hours).
    Drop-in for the ``tqdm`` calls the loops make: ``update(1)``, ``set_postfix(...)``, ``close()``; ``n`` / ``total``
    are the bar's position (percent or steps) even when the bar is disabled (processes other than the main one).

    Args:
        budget: the loop's :class:`TimeBudget` (its last :meth:`~TimeBudget.tick` is read on every update).
        max_train_steps: the step limit.
        completed_steps: steps already done (a resumed run).
        desc, disable: as ``tqdm``'s.
    """

    def __init__(self, budget: TimeBudget, max_train_steps: int, completed_steps: int = 0, *, desc: str = "",
                 disable: bool = False):
        from tqdm.auto import tqdm

        self.budget, self.max_train_steps, self.completed_steps = budget, max_train_steps, completed_steps
        self.timed = budget.max_minutes is not None
        if self.timed:
            self.bar = tqdm(
                total=100.0, initial=self._percent(), desc=desc, disable=disable, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
            )
            self.bar.set_postfix(step=completed_steps)
            self.n, self.total = self._percent(), 100.0
        else:
            self.bar = tqdm(
                total=max_train_steps, initial=completed_steps, desc=desc, disable=disable, dynamic_ncols=True
            )
            self.n, self.total = completed_steps, max_train_steps
        self._postfix: dict = {}

    def _percent(self) -> float:
        done = max(self.completed_steps / max(1, self.max_train_steps), self.budget.progress())
        return 100.0 * min(1.0, done)

    def update(self, steps: int = 1) -> None:
        self.completed_steps += steps
        if self.timed:
            percent = max(self.n, self._percent())
            self.bar.update(percent - self.n)
            self.n = percent
            self.bar.set_postfix(step=self.completed_steps, **self._postfix, refresh=False)
        else:
            self.bar.update(steps)
            self.n += steps

    def set_postfix(self, **values) -> None:
        self._postfix = values
        if self.timed:
            self.bar.set_postfix(step=self.completed_steps, **values)
        else:
            self.bar.set_postfix(**values)

    def close(self) -> None:
        self.bar.close()


def add_time_budget_argument(group) -> None:
    """``--max_train_minutes`` (every training script)."""
    group.add_argument(
        "--max_train_minutes",
        type=float,
        default=None,
        help="wall-clock budget of the training loop in minutes: stop at the first optimizer step after it, then "
        "evaluate and save as a normal end; the cosine schedule follows max(step/max_steps, elapsed/budget)",
    )


__all__ = ["LoopProgress", "TimeBudget", "add_time_budget_argument"]
