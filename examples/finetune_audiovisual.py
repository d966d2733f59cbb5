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
import os
import shutil
import sys
import time

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import AutoConfig

import hf_maskedav  # noqa: F401
from hf_maskedav import MAViLForAudioVisualClassification
from hf_maskedav.data import clip_samples_for, spec_augment
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
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
    mavil_layer_id,
    mavil_num_layers,
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
from hf_maskedav.training.clip_length import add_audiovisual_clip_arguments
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.presets import audiovisual_processor_for, processor_source
from hf_maskedav.training.recipes import add_feature_normalization_argument, warn_if_band_limited
from hf_maskedav.training.utils import best_eval_text
from hf_maskedav.training.validation_split import add_validation_split_argument, resolve_evaluation
from hf_maskedav.training.data_options import add_decoded_cache_argument, add_video_data_arguments, open_video_split

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
    add_feature_normalization_argument(model)  # MAViL's fbank: 'dataset' (official) or 'per_clip'
    add_model_runtime_arguments(model, gradient_checkpointing=False)  # not wired to the classifier here: not offered

    data = add_video_data_arguments(parser, labels=True)
    add_validation_split_argument(data)
    add_decoded_cache_argument(data, "decoded audio tracks (the frames are decoded per clip)")
    parser.add_argument("--audio_column", default=None, help="a separate audio column (default: the videos' audio tracks)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--repeated_sampling", type=int, default=1, help="clips (with their audio) per decoded video")
    aug.add_argument("--mixup", type=float, default=0.0, help="mixup Beta alpha on both modalities (0 disables)")
    aug.add_argument("--mix_prob", type=float, default=1.0)
    aug.add_argument("--label_smoothing", type=float, default=0.0)
    aug.add_argument("--freq_mask", type=int, default=0, help="SpecAugment max band in mel bins")
    aug.add_argument("--time_mask", type=int, default=0, help="SpecAugment max band in frames")

    add_training_arguments(
        parser, output_dir="outputs/finetune_audiovisual", learning_rate=1e-3, num_train_epochs=10,
        train_batch_size=16, eval_batch_size=32, finetune=True,
        help={"per_device_train_batch_size": "videos per process per step"},
    )
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
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
    check_output_dir(args)  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    start_time = time.time()
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)
    log = accelerator.print
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
    base = AutoConfig.from_pretrained(args.model_name_or_path, **head) if args.model_name_or_path else \
        build_config(args.config_name, **head)
    if base.model_type != "maskedav_mavil":
        # AV-MAE fine-tunes as MBT (AVMAEForAudioVisualClassification), whose streams are not initialised from an
        # AVMAEForPreTraining folder by any mapping here
        raise SystemExit(f"{args.model_name_or_path or args.config_name}: model type {base.model_type!r}; this script "
                         "fine-tunes MAViL models (AV-MAE fine-tuning is MBT: AVMAEForAudioVisualClassification, from a "
                         "converted checkpoint, docs/cavmae_avmae.md)")
    # --config_overrides, --num_frames, --clip_seconds (max_length); the processor below follows the config
    config = config_for_script(base, args.config_overrides, args.clip_seconds, log, num_frames=args.num_frames)
    if args.model_name_or_path:
        model = load_pretrained_quietly(  # one line instead of transformers' expected LOAD REPORT
            MAViLForAudioVisualClassification, args.model_name_or_path, config=config,
            attn_implementation=args.attn_implementation, ignore_mismatched_sizes=True, log=log)
    else:
        model = MAViLForAudioVisualClassification._from_config(config, attn_implementation=args.attn_implementation)
    config = model.config
    processor = audiovisual_processor_for(config, args.config_name, processor_source(args.processor_name, args.model_name_or_path),
                                          video_fps=args.video_fps, feature_normalization=args.feature_normalization,
                                          top_db=args.top_db)
    feature_extractor = processor.feature_extractor
    recipe = video_recipe(processor.video_processor, config.model_type, "finetune")
    window = AudioWindow(feature_extractor.sampling_rate, clip_samples_for(feature_extractor))
    collator = VideoCollator(labels, feature_extractor)
    train_dataset = VideoClipDataset(train_source, recipe, train=True, seed=args.seed, repeats=args.repeated_sampling,
                                     audio=window, backend=args.decoding_backend, decoded_cache_mb=args.decoded_cache_mb)
    if accelerator.is_main_process:
        warn_if_band_limited(feature_extractor, train_dataset, log)  # MAViL's fbank, 8-kHz audio and no --top_db
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True, collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker, generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = None
    if eval_source is not None:
        eval_dataloader = accelerator.prepare(torch.utils.data.DataLoader(
            VideoClipDataset(eval_source, recipe, train=False, audio=window, backend=args.decoding_backend,
                             decoded_cache_mb=args.decoded_cache_mb),
            batch_size=args.per_device_eval_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
        ))
        log(f"evaluation data: {eval_source.description}")

    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay, layer_decay=args.layer_decay, num_layers=mavil_num_layers(config),
                         layer_id=mavil_layer_id(config)),
        lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
    )
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader
    )
    log(f"heads {list(config.classifier_heads)}; optimizer steps: {max_train_steps} ({num_train_epochs} epochs of "
        f"{steps_per_epoch}), peak lr {args.learning_rate}, layer decay {args.layer_decay}, mixup {args.mixup}")
    if args.with_tracking:
        accelerator.init_trackers("finetune_audiovisual", tracker_config(args))

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters ------------------------------
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, processor])
    state = run.resume()
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
                rng = np.random.default_rng([args.seed, accelerator.process_index, state.completed_steps, micro])
                pixel_values, input_values, targets, _ = mix_batch(
                    rng, batch["pixel_values"], targets, batch["input_values"], args.mixup, 0.0, args.mix_prob)
                if args.freq_mask or args.time_mask:
                    input_values = spec_augment(input_values, args.freq_mask, args.time_mask)
                out = model(input_values=input_values, pixel_values=pixel_values)
                loss = sum(classification_loss(value, targets, multi_label) for value in head_logits(out).values())
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
                accelerator.log({"train/loss": step_loss}, step=state.completed_steps)
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
            "main_head": main_head,
            f"best_eval_{metric_name}": state.best_metric,
            f"best_eval_{metric_name}_per_head": best,
            "best_step": state.extra.get("best_step"),
            "eval_history": eval_history,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        write_model_card(
            args.output_dir, repo_name(args),
            task="audio-classification", modality="audio-visual",
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
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    run.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
