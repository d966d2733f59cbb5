#!/usr/bin/env python
"""Fine-tune MAViL (or an AV-MAE) for audio-visual classification (single- or multi-label) with Accelerate.

From the model pretrained by pretrain_audiovisual.py on the built-in audio-visual data:

    accelerate launch examples/finetune_audiovisual.py --model_name_or_path outputs/pretrain_audiovisual

The classifier has up to three heads (``--classifier_heads``): audio+visual (on the fused tokens of both
modalities), audio-only and video-only (on each modality encoder); each is trained with its own loss (summed) and
evaluated separately (accuracy for single-label data, mAP for multi-label data such as AudioSet or
``--demo_multi_label``). The best model by the main head's metric (audio+visual when present) is kept in
``<output_dir>/best_model`` and ends up in ``<output_dir>`` with a model card.

Augmentations: mixup of both modalities with one weight (``--mixup``), label smoothing, SpecAugment on the fbank
(``--freq_mask``/``--time_mask``), MAViL's token dropping (``--mask_time_prob``/``--mask_freq_prob`` on audio
tokens, ``--mask_video_prob`` on video tokens); layer-wise lr decay over modality + fusion layers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

import hf_maskedav  # noqa: F401
from hf_maskedav import MAViLConfig, MAViLForAudioVisualClassification
from hf_maskedav.data import clip_samples_for, spec_augment
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.metrics import load_metric
from hf_maskedav.training.utils import best_eval_text
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.validation_split import add_validation_split_argument, resolve_evaluation
from hf_maskedav.training.threads import add_num_threads_argument, configure_cpu_threads
from hf_maskedav.training import (
    check_world_size,
    StepLog,
    LoopProgress,
    TimeBudget,
    TrainingState,
    add_time_budget_argument,
    cosine_schedule_with_warmup,
    format_duration,
    list_checkpoints,
    load_checkpoint,
    maybe_inject_fault,
    parameter_groups,
    per_process_states,
    push_to_hub,
    resolve_resume_path,
    save_checkpoint,
    save_loss_curve,
)
from hf_maskedav.training.faults import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    StopOnSignal,
    ignore_stop_signals_in_worker,
    maybe_poison_loss,
    maybe_signal_self,
    step_if_finite,
)
from hf_maskedav.training.video_cli import add_video_data_arguments, open_video_split
from hf_maskedav.training.video_model_card import write_video_model_card
from hf_maskedav.training.config_overrides import add_config_overrides_argument, config_for_script
from hf_maskedav.training.video_training import (
    add_audiovisual_clip_arguments,
    audiovisual_processor_for,
    build_audiovisual_config,
    has_saved_processor,
    mavil_layer_id,
    mavil_num_layers,
    mix_batch,
    one_hot_targets,
    save_model_and_processors,
    soft_target_loss,
)

HEADS = ("audio_visual", "audio", "video")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", default=None, help="pretrained MAViL (pretrain_audiovisual.py output or Hub id)")
    model.add_argument("--config_name", default="mavil-tiny", help="preset/config used without --model_name_or_path")
    model.add_argument("--processor_name", default=None)
    model.add_argument("--classifier_heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    model.add_argument("--drop_path_rate", type=float, default=0.1)
    model.add_argument("--mask_time_prob", type=float, default=0.0, help="audio token dropping along time")
    model.add_argument("--mask_freq_prob", type=float, default=0.0, help="audio token dropping along frequency")
    model.add_argument("--mask_video_prob", type=float, default=0.0, help="random video token dropping")
    add_config_overrides_argument(model)
    add_audiovisual_clip_arguments(model)
    model.add_argument("--attn_implementation", default=None, choices=[None, "eager", "sdpa", "flash_attention_2"])

    add_validation_split_argument(add_video_data_arguments(parser, labels=True))
    parser.add_argument("--audio_column", default=None, help="a separate audio column (default: the videos' audio tracks)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--repeated_sampling", type=int, default=1, help="clips (with their audio) per decoded video")
    aug.add_argument("--mixup", type=float, default=0.0, help="mixup Beta alpha on both modalities (0 disables)")
    aug.add_argument("--mix_prob", type=float, default=1.0)
    aug.add_argument("--label_smoothing", type=float, default=0.0)
    aug.add_argument("--freq_mask", type=int, default=0, help="SpecAugment max band in mel bins")
    aug.add_argument("--time_mask", type=int, default=0, help="SpecAugment max band in frames")

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="outputs/finetune_audiovisual")
    train.add_argument("--overwrite_output_dir", action="store_true")
    train.add_argument("--per_device_train_batch_size", type=int, default=16, help="videos per process per step")
    train.add_argument("--per_device_eval_batch_size", type=int, default=32)
    train.add_argument("--learning_rate", type=float, default=1e-3)
    train.add_argument("--layer_decay", type=float, default=0.75)
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.999)
    train.add_argument("--max_grad_norm", type=float, default=None)
    train.add_argument("--max_nonfinite_in_a_row", type=int, default=5,
                       help="a NaN/Inf loss skips its optimizer update (counted, logged); stop after this many in a row")
    train.add_argument("--num_train_epochs", type=int, default=10)
    train.add_argument("--max_train_steps", type=int, default=None)
    add_time_budget_argument(train)
    add_num_threads_argument(train)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--num_warmup_steps", type=int, default=None)
    train.add_argument("--warmup_ratio", type=float, default=0.1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--eval_every_steps", type=int, default=None)
    train.add_argument("--checkpointing_steps", default=None)
    train.add_argument("--checkpoints_total_limit", type=int, default=2)
    train.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None)
    train.add_argument("--with_tracking", action="store_true")
    train.add_argument("--report_to", default="tensorboard")
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id", default=None)
    train.add_argument("--hub_token", default=None)
    args = parser.parse_args(argv)
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            parser.error(f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}")
        args.checkpointing_steps = int(args.checkpointing_steps)
    return args


def head_logits(output) -> dict[str, torch.Tensor]:
    return {name: getattr(output, f"{name}_logits") for name in HEADS if getattr(output, f"{name}_logits") is not None}


def evaluate_model(accelerator, model, dataloader, multi_label: bool, tracker) -> dict:
    """Accuracy or mAP of every head over a whole split, gathered from every process."""
    name = "mean_average_precision" if multi_label else "accuracy"
    metrics, count = {}, 0
    model.eval()
    for batch in dataloader:
        tracker.update(batch)
        with torch.no_grad():
            out = model(input_values=batch["input_values"], pixel_values=batch["pixel_values"])
        logits = head_logits(out)
        gathered = accelerator.gather_for_metrics((logits, batch["labels"]))
        logits, labels = gathered
        for head, values in logits.items():
            metric = metrics.setdefault(head, load_metric(name))
            if multi_label:
                metric.add_batch(predictions=torch.sigmoid(values.float()).cpu().tolist(), references=labels.cpu().tolist())
            else:
                metric.add_batch(predictions=values.argmax(-1).cpu().tolist(), references=labels.cpu().tolist())
        count += len(labels)
    return {head: metric.compute()[name] for head, metric in metrics.items()}


def main(argv=None):
    args = parse_args(argv)
    if not (args.resume_from_checkpoint or args.overwrite_output_dir) and os.path.isdir(args.output_dir) and (
        list_checkpoints(args.output_dir) or os.path.isfile(os.path.join(args.output_dir, "config.json"))
    ):
        raise SystemExit(f"{args.output_dir} already holds a run; pass --resume_from_checkpoint, "
                         "--overwrite_output_dir or another --output_dir")
    start_time = time.time()
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "runs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    log = accelerator.print
    check_world_size(accelerator)  # several launched processes but one in each: stop, say why
    configure_cpu_threads(accelerator, args.num_threads, log)  # on CPU: use the machine
    log(f"world size: {accelerator.num_processes} process(es), device {accelerator.device}")
    set_seed(args.seed, device_specific=True)

    train_source = open_video_split(args, args.train_split, accelerator, args.label_column, args.audio_column)
    labels = train_source.labels
    if labels is None:
        raise SystemExit("fine-tuning needs labels: pass --label_column")
    multi_label = labels.multi_label = labels.multi_label or args.multi_label

    def open_eval(split: str):
        source = open_video_split(args, split, accelerator, args.label_column, args.audio_column, train=False)
        source.labels = labels  # the training class order
        return source

    # --eval_split, or a held-out part of the training rows (--validation_split_percentage; by default when the data
    # has no such split)
    train_source, eval_source = resolve_evaluation(args, train_source, open_eval, log)
    log(f"training data: {train_source.description}; {labels.num_labels} classes, {'multi' if multi_label else 'single'}-label")

    head = dict(num_labels=labels.num_labels, id2label=labels.id2label, label2id={n: i for i, n in labels.id2label.items()},
                problem_type="multi_label_classification" if multi_label else "single_label_classification",
                classifier_heads=list(args.classifier_heads), drop_path_rate=args.drop_path_rate,
                mask_time_prob=args.mask_time_prob, mask_freq_prob=args.mask_freq_prob, mask_video_prob=args.mask_video_prob)
    base = MAViLConfig.from_pretrained(args.model_name_or_path, **head) if args.model_name_or_path else \
        build_audiovisual_config(args.config_name, **head)
    # --config_overrides, --num_frames, --clip_seconds (max_length); the processor below follows the config
    config = config_for_script(base, args.config_overrides, args.clip_seconds, log, num_frames=args.num_frames)
    if args.model_name_or_path:
        model = load_pretrained_quietly(  # one line instead of transformers' expected LOAD REPORT
            MAViLForAudioVisualClassification, args.model_name_or_path, config=config,
            attn_implementation=args.attn_implementation, ignore_mismatched_sizes=True, log=log)
    else:
        model = MAViLForAudioVisualClassification._from_config(config, attn_implementation=args.attn_implementation)
    config = model.config
    processor_source = args.processor_name or (args.model_name_or_path if has_saved_processor(args.model_name_or_path) else None)
    processor = audiovisual_processor_for(config, args.config_name, processor_source, video_fps=args.video_fps)
    feature_extractor = processor.feature_extractor
    recipe = video_recipe(processor.video_processor, config.model_type, "finetune")
    window = AudioWindow(feature_extractor.sampling_rate, clip_samples_for(feature_extractor))
    collator = VideoCollator(labels, feature_extractor)
    train_dataloader = torch.utils.data.DataLoader(
        VideoClipDataset(train_source, recipe, train=True, seed=args.seed, repeats=args.repeated_sampling, audio=window,
                         backend=args.decoding_backend),
        batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True, collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker, generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = None
    if eval_source is not None:
        eval_dataloader = accelerator.prepare(torch.utils.data.DataLoader(
            VideoClipDataset(eval_source, recipe, train=False, audio=window, backend=args.decoding_backend),
            batch_size=args.per_device_eval_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
        ))
        log(f"evaluation data: {eval_source.description}")

    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay, layer_decay=args.layer_decay, num_layers=mavil_num_layers(config),
                         layer_id=mavil_layer_id(config)),
        lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
    )
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if len(train_dataloader) == 0:
        raise SystemExit("the training split gives no full batch per process; lower --per_device_train_batch_size")
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_train_epochs = math.ceil(max_train_steps / steps_per_epoch)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(args.warmup_ratio * max_train_steps)
    budget = TimeBudget(args.max_train_minutes)  # the schedule follows max(step / max_steps, elapsed / budget)
    lr_scheduler = cosine_schedule_with_warmup(optimizer, warmup, max_train_steps, progress=budget.progress)
    accelerator.register_for_checkpointing(lr_scheduler)
    log(f"heads {list(config.classifier_heads)}; optimizer steps: {max_train_steps} ({num_train_epochs} epochs of "
        f"{steps_per_epoch}), peak lr {args.learning_rate}, layer decay {args.layer_decay}, mixup {args.mixup}")
    if args.with_tracking:
        accelerator.init_trackers("finetune_audiovisual", {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})

    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    nonfinite = NonFiniteLossGuard(args.max_nonfinite_in_a_row, log=log)
    state = TrainingState()
    resume_path = resolve_resume_path(args.resume_from_checkpoint, args.output_dir)
    if resume_path:
        state = load_checkpoint(accelerator, resume_path)
        nonfinite.load_state_dict(state.extra.get("nonfinite", {}))
        budget.load_state_dict(state.extra.get("time_budget"))
        tracker.load_state_dict(state.bad_samples.get(str(accelerator.process_index), tracker.state_dict()))
        log(f"resumed from {resume_path} at step {state.completed_steps}")
    step_log = StepLog(os.path.join(args.output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)
    eval_history = state.extra.setdefault("eval_history", [])
    best_dir = os.path.join(args.output_dir, "best_model")
    main_head = next(h for h in HEADS if h in config.classifier_heads)
    metric_name = "mAP" if multi_label else "accuracy"

    def run_evaluation(epoch: int):
        if eval_dataloader is None:
            return
        result = evaluate_model(accelerator, model, eval_dataloader, multi_label, tracker)
        model.train()
        eval_history.append([state.completed_steps, result])
        step_log.write(step=state.completed_steps, epoch=epoch, **{f"eval_{metric_name}_{h}": v for h, v in result.items()})
        if args.with_tracking:
            accelerator.log({f"eval/{metric_name}_{h}": v for h, v in result.items()}, step=state.completed_steps)
        improved = state.best_metric is None or result[main_head] > state.best_metric
        log(f"step {state.completed_steps}: eval {metric_name} " + ", ".join(f"{h} {v:.4f}" for h, v in result.items())
            + (" (best so far)" if improved else ""))
        if improved:
            state.best_metric = result[main_head]
            state.extra["best_step"], state.extra["best_result"] = state.completed_steps, result
            save_model_and_processors(accelerator, model, best_dir, [processor])

    saved_steps = []

    def checkpoint(epoch: int, batches_in_epoch: int):
        if batches_in_epoch >= len(train_dataloader):
            epoch, batches_in_epoch = epoch + 1, 0
        state.epoch, state.batches_in_epoch = epoch, batches_in_epoch
        state.bad_samples = per_process_states(accelerator, tracker.state_dict())
        state.extra["nonfinite"] = nonfinite.state_dict()
        state.extra["time_budget"] = budget.state_dict()
        log(f"saved checkpoint {save_checkpoint(accelerator, args.output_dir, state, args.checkpoints_total_limit)}")
        saved_steps.append(state.completed_steps)

    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc="fine-tuning", disable=not accelerator.is_local_main_process
    )
    micro_losses, micro = [], 0
    # SIGTERM/SIGUSR1 (pre-emption) stop the loop at the next optimizer-step boundary, with a checkpoint
    stopper, stopped = StopOnSignal(log=log), False
    budget.start()  # --max_train_minutes counts from here (plus the time of a resumed run)
    for epoch in range(state.epoch, num_train_epochs):
        if state.completed_steps >= max_train_steps or stopped or budget.exhausted():
            break
        model.train()
        skip = state.batches_in_epoch if epoch == state.epoch else 0
        train_dataloader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        batches_in_epoch = skip
        for batch in batches:
            batches_in_epoch += 1
            tracker.update(batch)
            maybe_signal_self(state.completed_steps + 1)  # test aid (a SIGTERM mid-step), inert by default
            with accelerator.accumulate(model):
                targets = one_hot_targets(batch["labels"], labels.num_labels, args.label_smoothing)
                rng = np.random.default_rng([args.seed, accelerator.process_index, state.completed_steps, micro])
                pixel_values, input_values, targets, _ = mix_batch(
                    rng, batch["pixel_values"], targets, batch["input_values"], args.mixup, 0.0, args.mix_prob)
                if args.freq_mask or args.time_mask:
                    input_values = spec_augment(input_values, args.freq_mask, args.time_mask)
                out = model(input_values=input_values, pixel_values=pixel_values)
                loss = sum(soft_target_loss(value, targets, multi_label) for value in head_logits(out).values())
                loss = maybe_poison_loss(loss, state.completed_steps + 1)  # test aid (a NaN loss), inert by default
                accelerator.backward(loss)
                if accelerator.sync_gradients:  # the update's loss over micro-batches and processes: finite -> step
                    try:
                        step_if_finite(accelerator, model, optimizer, [*micro_losses, loss.detach()], nonfinite,
                                       state.completed_steps + 1, args.max_grad_norm)
                    except NonFiniteLossError as error:
                        raise SystemExit(f"stopped: {error}") from error
            micro_losses.append(loss.detach())
            micro += 1
            if not accelerator.sync_gradients:
                continue
            micro = 0
            budget.tick(accelerator)  # the loop time the schedule and the budget check see
            lr_scheduler.step()
            state.completed_steps += 1
            step_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
            micro_losses = []
            state.loss_history.append([state.completed_steps, step_loss])
            step_log.write(step=state.completed_steps, epoch=epoch, loss=step_loss, lr=lr_scheduler.get_last_lr()[-1])
            if args.with_tracking:
                accelerator.log({"train/loss": step_loss}, step=state.completed_steps)
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.4f}")
            if args.eval_every_steps and state.completed_steps % args.eval_every_steps == 0:
                run_evaluation(epoch)
            if isinstance(args.checkpointing_steps, int) and state.completed_steps % args.checkpointing_steps == 0:
                checkpoint(epoch, batches_in_epoch)
            maybe_inject_fault(state.completed_steps)
            if stopper.should_stop(accelerator):
                stopped = True
                break
            if state.completed_steps >= max_train_steps or budget.exhausted():
                break
        if stopped:
            if not saved_steps or saved_steps[-1] != state.completed_steps:
                checkpoint(epoch, batches_in_epoch)
            progress.close()
            raise SystemExit(stopper.wind_down(accelerator, state.completed_steps, max_train_steps, log))
        if not args.eval_every_steps:
            run_evaluation(epoch)
        if args.checkpointing_steps == "epoch":
            checkpoint(epoch, batches_in_epoch)
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    if eval_dataloader is not None and (not eval_history or eval_history[-1][0] != state.completed_steps):
        run_evaluation(num_train_epochs - 1)
    progress.close()
    train_time = time.time() - start_time

    bad = tracker.totals(accelerator)
    if eval_dataloader is None or not os.path.isdir(best_dir):
        save_model_and_processors(accelerator, model, best_dir, [processor])
    if accelerator.is_main_process:
        for name in os.listdir(best_dir):
            shutil.copy2(os.path.join(best_dir, name), os.path.join(args.output_dir, name))
        if state.loss_history:
            save_loss_curve(state.loss_history, os.path.join(args.output_dir, "loss_curve.png"),
                            title=f"MAViL fine-tuning ({train_source.description})", ylabel="classification loss (sum of heads)")
        best = state.extra.get("best_result") or {}
        summary = {
            "world_size": accelerator.num_processes,
            "completed_steps": state.completed_steps,
            "max_train_steps": max_train_steps,
            **budget.summary(),
            "main_head": main_head,
            f"best_eval_{metric_name}": state.best_metric,
            f"best_eval_{metric_name}_per_head": best,
            "best_step": state.extra.get("best_step"),
            "eval_history": eval_history,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "nonfinite_loss_steps_skipped": nonfinite.skipped,
            "nonfinite_loss_steps": nonfinite.skipped_steps,
        }
        with open(os.path.join(args.output_dir, "train_summary.json"), "w") as handle:
            json.dump(summary, handle, indent=1)
        write_video_model_card(
            args.output_dir, args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
            task="audio-classification", audio_visual=True,
            summary=(f"A MAViL audio-visual classifier (heads {', '.join(config.classifier_heads)}; "
                     f"{'multi' if multi_label else 'single'}-label, {labels.num_labels} classes) fine-tuned with hf_maskedav."),
            base_model=args.model_name_or_path,
            datasets=[train_source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={f"eval {metric_name} ({h})": v for h, v in best.items()} or None,
            hyperparameters={"optimizer steps": state.completed_steps, "peak learning rate": args.learning_rate,
                             "layer decay": args.layer_decay, "mixup": args.mixup, "label smoothing": args.label_smoothing,
                             "SpecAugment (freq, time)": (args.freq_mask, args.time_mask),
                             "token dropping (time, freq, video)": (args.mask_time_prob, args.mask_freq_prob,
                                                                    args.mask_video_prob),
                             "processes": accelerator.num_processes},
            tags=["mavil", "audio-visual-classification"],
        )
        log(f"{best_eval_text(f'{metric_name} ({main_head})', state.best_metric, state.extra.get('best_step'))}; "
            f"wall time {format_duration(train_time)}; saved to {args.output_dir}")
        log(VideoBadSampleTracker.report(bad))
        if args.push_to_hub:
            url = push_to_hub(args.output_dir, args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                              token=args.hub_token)
            log(f"pushed to {url}")
    accelerator.wait_for_everyone()
    stopper.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
