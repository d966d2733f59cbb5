#!/usr/bin/env python
"""Fine-tune a video model (VideoMAE, MAE-ST, MaskFeat) for video classification (single- or multi-label).

From the model pretrained by pretrain_video.py on the built-in moving-shapes data:

    accelerate launch examples/finetune_video.py --model_name_or_path outputs/pretrain_videomae

On Kinetics-style CSV lists from a converted official checkpoint (recipe of the official fine-tuning: random resized
crop [0.08, 1], flip, mixup 0.8 / cutmix 1.0, label smoothing 0.1, layer decay 0.75, 2 clips per video, 5x3 views):

    accelerate launch --multi_gpu examples/finetune_video.py --model_name_or_path path/to/converted-videomae-base \
        --train_csv k400/train.csv --eval_csv k400/val.csv --data_root k400/videos --repeated_sampling 2 \
        --mixup 0.8 --cutmix 1.0 --label_smoothing 0.1 --layer_decay 0.75 --test_num_clips 5 --test_num_crops 3

Multi-label data (a list-valued label column, ``"a;b"`` strings with ``--multi_label``, or ``--demo_multi_label``)
trains with BCE and is evaluated with mAP; single-label data with (soft-target) cross-entropy and accuracy. Both
metrics are the ``evaluate`` modules bundled with the package. Evaluation during training uses the centre clip; the
final evaluation averages the class probabilities of ``--test_num_clips`` temporal x ``--test_num_crops`` spatial
views (multi-view testing). The best model (by the evaluation metric) is kept in ``<output_dir>/best_model`` and
is what ends up in ``<output_dir>``, with a model card.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import AutoConfig, AutoModelForVideoClassification

import hf_maskedav  # noqa: F401
from hf_maskedav.data.video import VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.metrics import load_metric
from hf_maskedav.training import (
    LoopProgress,
    StepLog,
    TrainingRun,
    add_config_overrides_argument,
    build_config,
    check_output_dir,
    config_for_script,
    format_duration,
    ignore_stop_signals_in_worker,
    parameter_groups,
    push_output,
    repo_name,
    save_loss_curve,
    save_model_and_processors,
    training_schedule,
    write_model_card,
)
from hf_maskedav.training.arguments import (
    add_model_runtime_arguments,
    add_training_arguments,
    check_training_arguments,
    make_accelerator,
    tracker_config,
)
from hf_maskedav.training.classification import classification_loss, mix_batch, one_hot_targets
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.presets import processor_source, video_processor_for
from hf_maskedav.training.utils import best_eval_text
from hf_maskedav.training.validation_split import add_validation_split_argument, resolve_evaluation
from hf_maskedav.training.data_options import SPLIT_MISSING_ERRORS, add_video_data_arguments, open_video_split

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", default=None,
                       help="pretrained video model (pretrain_video.py output, converted checkpoint or Hub id); "
                            "without it the model starts from random weights (--config_name)")
    model.add_argument("--config_name", default="videomae-tiny", help="preset/config used without --model_name_or_path")
    model.add_argument("--processor_name", default=None)
    model.add_argument("--drop_path_rate", type=float, default=0.1)
    model.add_argument("--classifier_dropout", type=float, default=None, help="dropout before the head (config default)")
    add_config_overrides_argument(model)
    add_model_runtime_arguments(model)  # --attn_implementation, --gradient_checkpointing

    add_validation_split_argument(add_video_data_arguments(parser, labels=True))
    clips = parser.add_argument_group("clips and augmentation")
    clips.add_argument("--repeated_sampling", type=int, default=1, help="clips per decoded video (official: 2)")
    clips.add_argument("--sampling_rate", type=float, default=None)
    clips.add_argument("--min_crop_scale", type=float, default=None, help="random resized crop (official 0.08)")
    clips.add_argument("--no_flip", action="store_true", help="no horizontal flip (e.g. Something-Something)")
    clips.add_argument("--mixup", type=float, default=0.0, help="mixup Beta alpha (official 0.8; 0 disables)")
    clips.add_argument("--cutmix", type=float, default=0.0, help="cutmix Beta alpha (official 1.0; 0 disables)")
    clips.add_argument("--mix_prob", type=float, default=1.0, help="probability of mixing a batch")
    clips.add_argument("--mix_switch_prob", type=float, default=0.5, help="probability of cutmix when both are on")
    clips.add_argument("--label_smoothing", type=float, default=0.0, help="official 0.1")
    clips.add_argument("--test_split", default="test", help="final multi-view evaluation split ('none' to skip)")
    clips.add_argument("--test_num_clips", type=int, default=2, help="temporal views of the final evaluation (official 5-10)")
    clips.add_argument("--test_num_crops", type=int, default=3, help="spatial views of the final evaluation (official 3)")

    add_training_arguments(
        parser, output_dir="outputs/finetune_video", learning_rate=1e-3, num_train_epochs=10, train_batch_size=16,
        eval_batch_size=32, finetune=True,
        help={"per_device_train_batch_size": "videos per process per step", "max_grad_norm": "official MAE-ST: 5.0"},
    )
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
    return args


def multi_view_scores(logits: torch.Tensor, views: int, multi_label: bool) -> torch.Tensor:
    """``[videos * views, C]`` logits -> ``[videos, C]`` class probabilities averaged over each video's views."""
    probabilities = torch.sigmoid(logits.float()) if multi_label else torch.softmax(logits.float(), dim=-1)
    return probabilities.view(-1, views, probabilities.shape[-1]).mean(dim=1)


def evaluate_model(accelerator, model, dataloader, multi_label: bool, tracker) -> dict:
    """Accuracy or mAP over a whole split (views of a video averaged), gathered from every process."""
    metric = load_metric("mean_average_precision" if multi_label else "accuracy")
    model.eval()
    total_loss, count = 0.0, 0
    for batch in dataloader:
        tracker.update(batch)
        views = batch["clips_per_video"]
        with torch.no_grad():
            logits = model(pixel_values=batch["pixel_values"]).logits
        scores = multi_view_scores(logits, views, multi_label)
        labels = batch["labels"][::views]
        scores, labels = accelerator.gather_for_metrics((scores, labels))
        if multi_label:
            total_loss += torch.nn.functional.binary_cross_entropy(scores.clamp(1e-7, 1 - 1e-7), labels.float()).item() * len(labels)
            metric.add_batch(predictions=scores.cpu().tolist(), references=labels.cpu().tolist())
        else:
            total_loss += torch.nn.functional.nll_loss(scores.clamp_min(1e-7).log(), labels).item() * len(labels)
            metric.add_batch(predictions=scores.argmax(-1).cpu().tolist(), references=labels.cpu().tolist())
        count += len(labels)
    name = "mean_average_precision" if multi_label else "accuracy"
    return {"metric": metric.compute()[name], "metric_name": "mAP" if multi_label else "accuracy",
            "loss": total_loss / max(count, 1)}


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args)  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    start_time = time.time()
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)
    log = accelerator.print
    set_seed(args.seed, device_specific=True)

    # ---- data first: the labels decide the head ------------------------------------------------------------------
    train_source = open_video_split(args, args.train_split, accelerator, args.label_column)
    labels = train_source.labels
    if labels is None:
        raise SystemExit("fine-tuning needs labels: pass --label_column")
    multi_label = labels.multi_label = labels.multi_label or args.multi_label

    def open_eval(split: str):
        source = open_video_split(args, split, accelerator, args.label_column, train=False)
        source.labels = labels  # the training class order
        return source

    # --eval_split, or a held-out part of the training rows (--validation_split_percentage; by default when the data
    # has no such split)
    train_source, eval_source = resolve_evaluation(args, train_source, open_eval, log)
    log(f"training data: {train_source.description}; {labels.num_labels} classes, {'multi' if multi_label else 'single'}-label")

    # ---- model ---------------------------------------------------------------------------------------------------
    head = dict(num_labels=labels.num_labels, id2label=labels.id2label,
                label2id={n: i for i, n in labels.id2label.items()},
                problem_type="multi_label_classification" if multi_label else "single_label_classification",
                drop_path_rate=args.drop_path_rate)
    if args.classifier_dropout is not None:
        head["classifier_dropout"] = args.classifier_dropout
    if args.model_name_or_path:
        config = config_for_script(AutoConfig.from_pretrained(args.model_name_or_path, **head), args.config_overrides)
        model = load_pretrained_quietly(  # one line instead of transformers' expected LOAD REPORT
            AutoModelForVideoClassification, args.model_name_or_path, config=config,
            attn_implementation=args.attn_implementation, ignore_mismatched_sizes=True, log=log,
        )
    else:
        config = config_for_script(build_config(args.config_name, **head), args.config_overrides)
        model = AutoModelForVideoClassification.from_config(config, attn_implementation=args.attn_implementation)
    config = model.config
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    processor = video_processor_for(config, args.config_name, processor_source(args.processor_name, args.model_name_or_path))
    recipe = video_recipe(processor, config.model_type, "finetune", sampling_rate=args.sampling_rate,
                          scale=(args.min_crop_scale, 1.0) if args.min_crop_scale else None,
                          flip=False if args.no_flip else None)
    log(f"model: {config.model_type}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; clips of "
        f"{recipe.num_frames} frames every {recipe.sampling_rate:g}, {recipe.train_crop} crop scale {recipe.scale}, "
        f"flip {recipe.flip}, {args.repeated_sampling} clip(s) per video")

    collator = VideoCollator(labels)
    train_dataset = VideoClipDataset(train_source, recipe, train=True, seed=args.seed, repeats=args.repeated_sampling,
                                     backend=args.decoding_backend)
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset, batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True, collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker, generator=torch.Generator().manual_seed(args.seed),
    )

    def eval_loader(split: str, num_clips: int, num_crops: int, source=None):
        if source is None:
            if split == "none":
                return None
            try:
                source = open_eval(split)
            except SPLIT_MISSING_ERRORS as error:
                log(f"no evaluation on split {split!r}: {error}")
                return None
        log(f"evaluation data ({num_clips}x{num_crops} views): {source.description}")
        return accelerator.prepare(torch.utils.data.DataLoader(
            VideoClipDataset(source, recipe, train=False, num_clips=num_clips, num_crops=num_crops,
                             backend=args.decoding_backend),
            batch_size=max(1, args.per_device_eval_batch_size // (num_clips * num_crops)), collate_fn=collator,
            num_workers=args.dataloader_num_workers,
        ))

    eval_dataloader = eval_loader(args.eval_split, 1, 1, eval_source) if eval_source is not None else None

    # ---- optimizer: AdamW with layer-wise lr decay, cosine schedule ----------------------------------------------
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay, layer_decay=args.layer_decay),
                                  lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader
    )
    log(f"optimizer steps: {max_train_steps} ({num_train_epochs} epochs of {steps_per_epoch}), warm-up {warmup}, peak lr "
        f"{args.learning_rate}, layer decay {args.layer_decay}, mixup {args.mixup}, cutmix {args.cutmix}, label "
        f"smoothing {args.label_smoothing}")
    if args.with_tracking:
        accelerator.init_trackers("finetune_video", tracker_config(args))

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters ------------------------------
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, processor])
    state = run.resume()
    step_log = StepLog(os.path.join(args.output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)
    eval_history = state.extra.setdefault("eval_history", [])
    best_dir = os.path.join(args.output_dir, "best_model")

    def run_evaluation(epoch: int):
        if eval_dataloader is None:
            return
        result = evaluate_model(accelerator, model, eval_dataloader, multi_label, tracker)
        model.train()
        eval_history.append([state.completed_steps, result["metric"]])
        step_log.write(step=state.completed_steps, epoch=epoch, **{f"eval_{result['metric_name']}": result["metric"],
                                                                   "eval_loss": result["loss"]})
        if args.with_tracking:
            accelerator.log({f"eval/{result['metric_name']}": result["metric"], "eval/loss": result["loss"]},
                            step=state.completed_steps)
        improved = state.best_metric is None or result["metric"] > state.best_metric
        log(f"step {state.completed_steps}: eval {result['metric_name']} {result['metric']:.4f}, loss "
            f"{result['loss']:.4f}{' (best so far)' if improved else ''}")
        if improved:
            state.best_metric = result["metric"]
            state.extra["best_step"] = state.completed_steps
            save_model_and_processors(accelerator, model, best_dir, [processor])

    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc="fine-tuning", disable=not accelerator.is_local_main_process
    )
    micro_losses, micro = [], 0
    # The loop body is written out in each script on purpose (the *_no_trainer.py style: it reads top to bottom and
    # differs per task); what must be right in all of them (resume, checkpoints, stopping) is TrainingRun's.
    # Epochs left from a resumed position; SIGTERM/SIGUSR1 (pre-emption) end the loop at the next optimizer-step
    # boundary with a checkpoint; the time budget starts here.
    for epoch in run.epochs(num_train_epochs):
        model.train()
        for batch in run.batches(train_dataloader, epoch):
            tracker.update(batch)
            with accelerator.accumulate(model):
                targets = one_hot_targets(batch["labels"], labels.num_labels, args.label_smoothing)
                # mixing draws come from (seed, process, step, micro-batch): reproducible, also after a resume
                rng = np.random.default_rng([args.seed, accelerator.process_index, state.completed_steps, micro])
                pixel_values, _, targets, _ = mix_batch(rng, batch["pixel_values"], targets, None, args.mixup,
                                                        args.cutmix, args.mix_prob, args.mix_switch_prob)
                logits = model(pixel_values=pixel_values).logits
                loss = classification_loss(logits, targets, multi_label)
                loss = run.test_aids(loss)  # inert unless a test sets HF_MASKEDAV_*
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:  # the update's loss over micro-batches and processes: finite -> step
                    step_loss = run.optimizer_step(model, optimizer, micro_losses, args.max_grad_norm)
                    micro_losses = []
            micro += 1
            if not accelerator.sync_gradients:
                continue
            micro = 0
            budget.tick(accelerator)  # the loop time the schedule and the budget check see
            lr_scheduler.step()
            state.completed_steps += 1
            state.loss_history.append([state.completed_steps, step_loss])
            step_log.write(step=state.completed_steps, epoch=epoch, loss=step_loss, lr=lr_scheduler.get_last_lr()[-1])
            if args.with_tracking:
                accelerator.log({"train/loss": step_loss, "train/lr": lr_scheduler.get_last_lr()[-1]}, step=state.completed_steps)
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.4f}")
            if args.eval_every_steps and state.completed_steps % args.eval_every_steps == 0:
                run_evaluation(epoch)
            if run.step_done():  # checkpoint every --checkpointing_steps; a stop signal, the step or time budget
                break
        if run.stopped:  # the checkpoint of this step, then exit 0
            progress.close()
            raise SystemExit(run.wind_down())
        if not args.eval_every_steps:
            run_evaluation(epoch)
        run.epoch_done()  # --checkpointing_steps epoch
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    if eval_dataloader is not None and (not eval_history or eval_history[-1][0] != state.completed_steps):
        run_evaluation(num_train_epochs - 1)
    progress.close()
    train_time = time.time() - start_time

    # ---- the best model becomes the output; final multi-view evaluation of it ------------------------------------
    if eval_dataloader is None or not os.path.isdir(best_dir):
        save_model_and_processors(accelerator, model, best_dir, [processor])
    test_result = None
    test_loader = eval_loader(args.test_split, args.test_num_clips, args.test_num_crops)
    if test_loader is not None:
        best = AutoModelForVideoClassification.from_pretrained(best_dir)
        best = accelerator.prepare_model(best, evaluation_mode=True)
        test_result = evaluate_model(accelerator, best, test_loader, multi_label, tracker)
        kept = "best model" if eval_dataloader is not None else "final model"  # no eval split: the last step's
        log(f"{kept} on {args.test_split} ({args.test_num_clips}x{args.test_num_crops} views): "
            f"{test_result['metric_name']} {test_result['metric']:.4f}")
    bad = tracker.totals(accelerator)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for name in os.listdir(best_dir):
            shutil.copy2(os.path.join(best_dir, name), os.path.join(args.output_dir, name))
        if state.loss_history:
            save_loss_curve(state.loss_history, os.path.join(args.output_dir, "loss_curve.png"), eval_history=None,
                            title=f"{config.model_type} fine-tuning ({train_source.description})", ylabel="training loss")
        metric_name = "mAP" if multi_label else "accuracy"
        summary = {
            f"best_eval_{metric_name}": state.best_metric,
            "best_step": state.extra.get("best_step"),
            "eval_history": eval_history,
            f"test_{metric_name}": test_result["metric"] if test_result else None,
            "test_views": [args.test_num_clips, args.test_num_crops] if test_result else None,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        metrics = {}
        if state.best_metric is not None:
            metrics[f"eval {metric_name} (best, 1 view)"] = state.best_metric
        if test_result:
            metrics[f"{args.test_split} {metric_name} ({args.test_num_clips}x{args.test_num_crops} views)"] = test_result["metric"]
        write_model_card(
            args.output_dir, repo_name(args),
            task="video-classification", modality="video",
            summary=(f"A {config.model_type.replace('maskedav_', '')} video classifier "
                     f"({'multi' if multi_label else 'single'}-label, {labels.num_labels} classes) fine-tuned with hf_maskedav."),
            base_model=args.model_name_or_path,
            datasets=[train_source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics=metrics or None,
            hyperparameters={"optimizer steps": state.completed_steps, "peak learning rate": args.learning_rate,
                             "layer decay": args.layer_decay, "weight decay": args.weight_decay,
                             "mixup / cutmix": (args.mixup, args.cutmix), "label smoothing": args.label_smoothing,
                             "clips per video": args.repeated_sampling, "drop path": args.drop_path_rate,
                             "crop": f"{recipe.train_crop} {recipe.scale}", "processes": accelerator.num_processes},
            tags=["video-classification", config.model_type.replace("maskedav_", "")],
        )
        log(f"{best_eval_text(metric_name, state.best_metric, state.extra.get('best_step'))}; wall time "
            f"{format_duration(train_time)}; saved to {args.output_dir}")
        log(VideoBadSampleTracker.report(bad))
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    run.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
