"""The correctness logic every training loop shares, in one place: resume, checkpoints, stopping.

The example scripts write their loop body out (the style of transformers' ``*_no_trainer.py`` examples) and hand what
must be right in all of them to a :class:`TrainingRun`:

* :meth:`TrainingRun.resume` -- ``--resume_from_checkpoint``: model, optimizer, registered objects (the LR schedule),
  every RNG, the data position and the fault counters (bad samples, non-finite losses, time budget);
* :meth:`TrainingRun.epochs` / :meth:`TrainingRun.batches` -- the epochs left and each epoch's batches in its seeded
  order, skipping what a resumed run already consumed;
* :meth:`TrainingRun.optimizer_step` -- the end of an update: clip and step when the loss is finite, skip (counted)
  when it is not, stop after too many in a row;
* :meth:`TrainingRun.step_done` -- after each counted update: a checkpoint every ``--checkpointing_steps``, then
  whether to end the epoch (a stop signal on any process, the step budget, the time budget);
* :meth:`TrainingRun.wind_down` -- a run stopped by a signal saves the checkpoint of its last step and exits 0;
* :meth:`TrainingRun.test_aids` -- the fault-injection hooks the tests drive through ``HF_MASKEDAV_*`` variables
  (inert otherwise), behind one call.

A loop then reads (``examples/pretrain_audio.py`` is the reference)::

    # pretrained=: saved into every checkpoint, so that each one also loads with from_pretrained
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, feature_extractor])
    state = run.resume()
    for epoch in run.epochs(num_train_epochs):               # starts the time budget
        model.train()
        for batch in run.batches(train_dataloader, epoch):
            with accelerator.accumulate(model):
                loss = run.test_aids(model(**batch).loss)
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:
                    step_loss = run.optimizer_step(model, optimizer, micro_losses, args.max_grad_norm)
                    micro_losses = []
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            state.completed_steps += 1
            ...                                               # log the step
            if run.step_done():
                break
        if run.stopped:
            return run.wind_down()
        run.epoch_done()                                      # --checkpointing_steps epoch
    run.close()
"""

from __future__ import annotations

import json
import math
import os
from itertools import islice

from .checkpointing import TrainingState, list_checkpoints, load_checkpoint, resolve_resume_path, save_checkpoint
from .faults import NonFiniteLossError, NonFiniteLossGuard, StopOnSignal, apply_test_aids, maybe_inject_fault, step_if_finite
from .utils import per_process_states


class TrainingRun:
    """Resume, checkpoint and stop one training run (see the module docstring for the loop that uses it).

    Args:
        accelerator: the run's ``Accelerator``.
        args: the script's parsed arguments; reads ``output_dir``, ``resume_from_checkpoint``, ``checkpointing_steps``
            (an int, ``"epoch"`` or None), ``checkpoints_total_limit`` and ``max_nonfinite_in_a_row``.
        max_train_steps: optimizer steps of the run.
        budget: the run's :class:`~hf_maskedav.training.TimeBudget` (saved in checkpoints, checked after each step).
        tracker: the run's bad-sample tracker (each process's counts saved in checkpoints).
        output_dir: where checkpoints go (default ``args.output_dir``; a stage-2 iteration has its own folder).
        pretrained: the model's config and its feature extractor / processor, saved into every checkpoint beside the
            weights so that ``from_pretrained("<output_dir>/checkpoint-<step>")`` loads the model at that step.

    Attributes:
        state: the :class:`~hf_maskedav.training.TrainingState` the loop advances (``completed_steps``, ``loss_history``,
            ``best_metric``, ``extra``...).
        nonfinite: the :class:`~hf_maskedav.training.faults.NonFiniteLossGuard` (its counts go into the summary).
        stopped: True once a stop signal ended the loop.
    """

    def __init__(self, accelerator, args, max_train_steps: int, budget, tracker, output_dir: str | None = None,
                 pretrained=()):
        self.accelerator, self.budget, self.tracker = accelerator, budget, tracker
        self.log = accelerator.print
        self.output_dir = output_dir or args.output_dir
        self.resume_from_checkpoint = args.resume_from_checkpoint
        self.checkpointing_steps = args.checkpointing_steps
        self.checkpoints_total_limit = args.checkpoints_total_limit
        self.max_train_steps = max_train_steps
        self.nonfinite = NonFiniteLossGuard(args.max_nonfinite_in_a_row, log=self.log)
        self.state = TrainingState()
        self.stopper: StopOnSignal | None = None
        self.stopped = False
        self.epoch, self.batches_in_epoch, self._epoch_length = self.state.epoch, 0, None
        self._saved_steps: list[int] = []
        self.pretrained = tuple(pretrained)

    # ---- before the loop ---------------------------------------------------------------------------------------------

    def resume(self) -> TrainingState:
        """Restore the checkpoint ``--resume_from_checkpoint`` names (``latest``: the newest complete one in the output
        folder) and every counter saved with it; return the loop state (a fresh one without a checkpoint)."""
        path = resolve_resume_path(self.resume_from_checkpoint, self.output_dir)
        if path:
            self.state = state = load_checkpoint(self.accelerator, path)
            if str(self.accelerator.process_index) in state.bad_samples:
                self.tracker.load_state_dict(state.bad_samples[str(self.accelerator.process_index)])
            self.nonfinite.load_state_dict(state.extra.get("nonfinite", {}))
            self.budget.load_state_dict(state.extra.get("time_budget"))
            self.log(f"resumed from {path}: step {state.completed_steps}, epoch {state.epoch}, "
                     f"{state.batches_in_epoch} batches into it")
        elif self.resume_from_checkpoint:
            self.log(f"no checkpoint in {self.output_dir}; starting from scratch")
        return self.state

    # ---- the loop ----------------------------------------------------------------------------------------------------

    def epochs(self, num_train_epochs: int):
        """The epochs left (from the resumed one), ending early once the run is finished or stopped. Installs the
        stop-signal handlers (SIGTERM/SIGUSR1 end the loop at the next step boundary, with a checkpoint) and starts
        the time budget (``--max_train_minutes`` counts from here, plus the time of a resumed run)."""
        self.stopper = StopOnSignal(log=self.log)
        self.budget.start()
        for epoch in range(self.state.epoch, num_train_epochs):
            if self.state.completed_steps >= self.max_train_steps or self.stopped or self.budget.exhausted():
                break
            yield epoch

    def batches(self, dataloader, epoch: int, streaming: bool = False):
        """The batches of ``epoch``, counted for checkpoints; a resumed run skips what its checkpoint consumed.

        The epoch's shuffling order comes from ``set_epoch``: a resumed run starts at a later epoch, and without it
        the loader (and the skipping loader made from it, which copies its epoch) would replay epoch 0's order. A
        stream (``streaming``) has no epochs: it is read again up to the saved position.
        """
        skip = self.state.batches_in_epoch if epoch == self.state.epoch else 0
        self.epoch, self.batches_in_epoch = epoch, skip
        if streaming:
            self._epoch_length = None
            batches = islice(iter(dataloader), skip, None)
        else:
            self._epoch_length = len(dataloader)
            dataloader.set_epoch(epoch)
            batches = self.accelerator.skip_first_batches(dataloader, skip) if skip else dataloader
        for batch in batches:
            self.batches_in_epoch += 1
            yield batch

    def test_aids(self, loss):
        """Fault injection for the tests, inert unless their variables are set: a SIGTERM to this process during
        update N (``HF_MASKEDAV_SIGTERM_AT_STEP``), a NaN loss at the listed updates (``HF_MASKEDAV_NAN_LOSS_AT_STEPS``).
        Returns the loss (NaN when poisoned)."""
        return apply_test_aids(loss, self.state.completed_steps + 1)

    def optimizer_step(self, model, optimizer, micro_losses, max_grad_norm: float | None = None) -> float:
        """The end of an optimizer update (inside ``accumulate``, where ``sync_gradients`` is True): the update's
        loss averaged over its micro-batches and the processes; a finite one clips and steps, a NaN/Inf one drops the
        gradients (counted, logged). Returns the loss; too many non-finite updates in a row end the run with a
        message (exit status 1; the last checkpoint is intact)."""
        try:
            return step_if_finite(self.accelerator, model, optimizer, micro_losses, self.nonfinite,
                                  self.state.completed_steps + 1, max_grad_norm)
        except NonFiniteLossError as error:
            raise SystemExit(f"stopped: {error}") from error

    def step_done(self) -> bool:
        """After an update is counted (``state.completed_steps += 1``) and logged: save a checkpoint every
        ``--checkpointing_steps``; return True when the epoch loop must end (a stop signal on any process -- a
        collective call, every process makes it --, the step budget or the time budget)."""
        if isinstance(self.checkpointing_steps, int) and self.state.completed_steps % self.checkpointing_steps == 0:
            self.save_checkpoint()
        maybe_inject_fault(self.state.completed_steps)  # test aid: SIGKILL after step N (and its checkpoint)
        if self.stopper.should_stop(self.accelerator):
            self.stopped = True
            return True
        return self.state.completed_steps >= self.max_train_steps or self.budget.exhausted()

    def epoch_done(self) -> None:
        """At the end of an epoch: the checkpoint of ``--checkpointing_steps epoch`` (a stream has no epochs)."""
        if self.checkpointing_steps == "epoch" and self._epoch_length is not None:
            self.save_checkpoint()

    def save_checkpoint(self) -> str:
        """Save everything a resume needs, atomically (call on every process): model, optimizer, schedule, RNGs,
        the data position, each process's bad-sample counts, the non-finite and time-budget counters."""
        state = self.state
        epoch, batches_in_epoch = self.epoch, self.batches_in_epoch
        if self._epoch_length is not None and batches_in_epoch >= self._epoch_length:
            epoch, batches_in_epoch = epoch + 1, 0  # the epoch is finished: resume at the next one
        state.epoch, state.batches_in_epoch = epoch, batches_in_epoch
        state.bad_samples = per_process_states(self.accelerator, self.tracker.state_dict())
        state.extra["nonfinite"] = self.nonfinite.state_dict()
        state.extra["time_budget"] = self.budget.state_dict()
        path = save_checkpoint(self.accelerator, self.output_dir, state, self.checkpoints_total_limit, self.pretrained)
        self.log(f"saved checkpoint {path}")
        self._saved_steps.append(state.completed_steps)
        return path

    # ---- after the loop ----------------------------------------------------------------------------------------------

    def wind_down(self) -> int:
        """End a run stopped by a signal: the checkpoint of its last step (unless just saved), how to continue, the
        handlers restored, Accelerate's trackers ended. Returns the exit status (0: the checkpoint is complete)."""
        if not self._saved_steps or self._saved_steps[-1] != self.state.completed_steps:
            self.save_checkpoint()
        return self.stopper.wind_down(self.accelerator, self.state.completed_steps, self.max_train_steps, self.log)

    def first_and_last_loss(self) -> tuple[float | None, float | None]:
        """The loss of the first step and the mean of the last 10 (None before any step)."""
        history = self.state.loss_history
        if not history:
            return None, None
        return history[0][1], sum(v for _, v in history[-10:]) / len(history[-10:])

    def write_summary(self, fields: dict) -> dict:
        """Write ``train_summary.json`` into the output folder (main process): the run's world size, steps, time
        budget and non-finite-loss counts around the script's own ``fields``; returns the summary."""
        summary = {
            "world_size": self.accelerator.num_processes,
            "completed_steps": self.state.completed_steps,
            "max_train_steps": self.max_train_steps,
            **self.budget.summary(),
            **fields,
            "nonfinite_loss_steps_skipped": self.nonfinite.skipped,
            "nonfinite_loss_steps": self.nonfinite.skipped_steps,
        }
        with open(os.path.join(self.output_dir, "train_summary.json"), "w") as handle:
            json.dump(summary, handle, indent=1)
        return summary

    def close(self) -> None:
        """Restore the signal handlers once everything is saved (a signal may end the process again)."""
        if self.stopper is not None:
            self.stopper.close()


def training_schedule(accelerator, args, optimizer, train_dataloader, streaming: bool = False):
    """The run's length and learning-rate schedule, from the prepared training loader.

    Optimizer steps are counted once per update whatever the gradient accumulation: ``--max_train_steps``, else
    ``--num_train_epochs`` epochs of ``ceil(batches / accumulation)`` updates (a stream has no length: one "epoch" of
    ``--max_train_steps``). Warm-up is ``--num_warmup_steps`` or ``--warmup_ratio`` of the steps. The cosine schedule
    is not passed to ``accelerator.prepare`` (a prepared scheduler steps once per process per update): the loop steps
    it once per update, it is registered so checkpoints save and restore it, and with ``--max_train_minutes`` it
    follows ``max(step / max_train_steps, elapsed / budget)``.

    Returns:
        ``(steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler)`` (``steps_per_epoch``
        None for a stream).
    """
    from .budget import TimeBudget
    from .optim import cosine_schedule_with_warmup

    if streaming:
        steps_per_epoch, max_train_steps, num_train_epochs = None, args.max_train_steps, 1
    else:
        if len(train_dataloader) == 0:
            raise SystemExit(
                f"the training data gives no full batch of {args.per_device_train_batch_size} per process "
                f"({len(train_dataloader.dataset)} samples, {accelerator.num_processes} processes); lower "
                "--per_device_train_batch_size"
            )
        steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
        max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
        num_train_epochs = math.ceil(max_train_steps / steps_per_epoch)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(args.warmup_ratio * max_train_steps)
    budget = TimeBudget(args.max_train_minutes)
    min_lr_ratio = getattr(args, "min_learning_rate", 0.0) / args.learning_rate  # pretraining scripts have the option
    lr_scheduler = cosine_schedule_with_warmup(optimizer, warmup, max_train_steps, min_lr_ratio, progress=budget.progress)
    accelerator.register_for_checkpointing(lr_scheduler)
    return steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler


def check_output_dir(args, *markers: str) -> None:
    """Refuse to mix a new run into a folder holding another run's checkpoints or model (or one of ``markers``,
    names of entries that also mean "a run is here"), unless ``--resume_from_checkpoint`` or
    ``--overwrite_output_dir``."""
    if args.resume_from_checkpoint or args.overwrite_output_dir or not os.path.isdir(args.output_dir):
        return
    names = ("config.json", *markers)
    if list_checkpoints(args.output_dir) or any(os.path.exists(os.path.join(args.output_dir, n)) for n in names):
        raise SystemExit(
            f"{args.output_dir} already holds a run (checkpoints or a saved model). Pass --resume_from_checkpoint to "
            "continue it, --overwrite_output_dir to start again there, or another --output_dir."
        )


__all__ = ["TrainingRun", "check_output_dir", "training_schedule"]
