#!/usr/bin/env python
"""Fine-tune an Audio-MAE for audio classification (single- or multi-label) with Accelerate.

From the model pretrained by ``pretrain_audio.py`` on the built-in demo data:

    accelerate launch examples/finetune_audio.py --model_name_or_path outputs/pretrain_audio

On ESC-50 from a converted official checkpoint (recipe of the official ``main_finetune_esc.py``):

    accelerate launch examples/finetune_audio.py --model_name_or_path path/to/converted-audiomae-base \
        --dataset_name ashraq/esc50 --label_column category --eval_split "train[80%:]" --train_split "train[:80%]" \
        --learning_rate 2.5e-4 --layer_decay 0.75 --mixup_prob 0.5 --freq_mask 48 --time_mask 192

Multi-label data (AudioSet style: the label column holds a list of labels) is detected from the dataset, or asked
for with ``--multi_label``; it trains with a sigmoid/BCE head and is evaluated with mAP (macro average precision over
classes, the AudioSet convention). Single-label data uses cross-entropy and accuracy. Both metrics are ``evaluate``
modules bundled with the package (``hf_maskedav.metrics``), so no download is needed.

Augmentations: mixup of waveforms (``--mixup_prob``, Beta(10, 10), labels mixed alike), SpecAugment on the
features (``--freq_mask``/``--time_mask``), and Audio-MAE's time/frequency token dropping in the encoder
(``--mask_time_prob``/``--mask_freq_prob``). Layer-wise learning-rate decay with ``--layer_decay``. The model with
the best evaluation metric is kept in ``<output_dir>/best_model`` and is what ends up in ``<output_dir>``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from transformers import AutoConfig

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav import AudioMAEFeatureExtractor, AudioMAEForAudioClassification
from hf_maskedav.data import (
    AudioClipDataset,
    AudioCollator,
    BadSampleTracker,
    clip_samples_for,
    featurize,
    load_audio_source,
    spec_augment,
    spectrogram_jitter,
)
from hf_maskedav.metrics import load_metric
from hf_maskedav.training.utils import best_eval_text
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.validation_split import add_validation_split_argument, resolve_evaluation
from hf_maskedav.training.threads import add_num_threads_argument, configure_cpu_threads
from hf_maskedav.training import (
    StepLog,
    LoopProgress,
    TimeBudget,
    TrainingState,
    add_clip_seconds_argument,
    add_config_overrides_argument,
    add_time_budget_argument,
    build_config,
    check_world_size,
    clear_previous_run,
    config_for_script,
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
    write_model_card,
)
from hf_maskedav.training.recipes import add_recipe_argument, add_spectrogram_arguments
from hf_maskedav.training.faults import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    StopOnSignal,
    ignore_stop_signals_in_worker,
    maybe_poison_loss,
    maybe_signal_self,
    step_if_finite,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        default=None,
        help="pretrained Audio-MAE (our pretraining output, a converted official checkpoint, or a Hub id); "
        "without it the model starts from random weights (--config_name)",
    )
    model.add_argument("--config_name", default="audiomae-tiny", help="preset/config used without --model_name_or_path")
    model.add_argument("--feature_extractor_name", default=None)
    # The defaults suit the tiny model and the built-in data (short runs underfit with more regularisation); the
    # official AudioSet recipe is --drop_path_rate 0.1 --mask_time_prob 0.2 --mask_freq_prob 0.2 --mixup_prob 0.5
    # --freq_mask 48 --time_mask 192 --learning_rate 2e-4 (total batch 256).
    model.add_argument("--drop_path_rate", type=float, default=0.0, help="stochastic depth (official: 0.1)")
    model.add_argument("--mask_time_prob", type=float, default=0.0, help="token dropping along time (official: 0.2)")
    model.add_argument(
        "--mask_freq_prob", type=float, default=0.0, help="token dropping along frequency (official: 0.2)"
    )
    model.add_argument(
        "--use_cls_token", action="store_true", help="classify from the cls token instead of mean pooling"
    )
    add_config_overrides_argument(model)
    add_clip_seconds_argument(model)
    model.add_argument("--attn_implementation", default=None, choices=[None, "eager", "sdpa", "flash_attention_2"])
    model.add_argument("--gradient_checkpointing", action="store_true")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default="demo", help="Hub dataset id, local dataset folder, or 'demo'")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--data_dir", default=None, help="local audiofolder (audio files + metadata.csv with labels)")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="validation", help="'none' to train without evaluation")
    add_validation_split_argument(data)
    data.add_argument(
        "--test_split",
        default="test",
        help="split on which the best model is finally scored (skipped when the dataset has no such split or 'none')",
    )
    data.add_argument("--audio_column", default="audio")
    data.add_argument("--label_column", default="label")
    data.add_argument(
        "--label_names", nargs="+", default=None, help="class names (needed when they cannot be inferred)"
    )
    data.add_argument(
        "--multi_label",
        action="store_true",
        help="treat labels as multi-label (automatic for list-valued label columns and --demo_multi_label)",
    )
    data.add_argument("--demo_multi_label", action="store_true", help="the built-in dataset's multi-label variant")
    data.add_argument("--demo_num_clips", type=int, default=None)
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    data.add_argument("--features_on_device", action="store_true")
    data.add_argument("--max_bad_fraction", type=float, default=0.5)

    aug = parser.add_argument_group("augmentation")
    aug.add_argument(
        "--mixup_prob", type=float, default=0.0, help="probability of mixing a clip with another (official: 0.5)"
    )
    aug.add_argument("--mixup_alpha", type=float, default=10.0)
    aug.add_argument(
        "--freq_mask", type=int, default=0, help="SpecAugment max band in mel bins (official AudioSet: 48 of 128)"
    )
    aug.add_argument(
        "--time_mask", type=int, default=0, help="SpecAugment max band in frames (official AudioSet: 192 of 1024)"
    )

    add_spectrogram_arguments(aug)  # --time_shift, --mel_shift, --time_stretch, --feature_normalization

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="outputs/finetune_audio")
    train.add_argument("--overwrite_output_dir", action="store_true")
    train.add_argument("--per_device_train_batch_size", type=int, default=32)
    train.add_argument("--per_device_eval_batch_size", type=int, default=64)
    train.add_argument("--learning_rate", type=float, default=3e-3, help="peak learning rate (of the head)")
    train.add_argument("--layer_decay", type=float, default=0.75, help="layer-wise lr decay (1 disables)")
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.999)
    train.add_argument("--max_grad_norm", type=float, default=None)
    train.add_argument(
        "--max_nonfinite_in_a_row",
        type=int,
        default=5,
        help="a NaN/Inf loss skips its optimizer update; stop after this many such updates in a row",
    )
    train.add_argument("--num_train_epochs", type=int, default=30)
    train.add_argument("--max_train_steps", type=int, default=None)
    add_time_budget_argument(train)
    add_num_threads_argument(train)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--num_warmup_steps", type=int, default=None)
    train.add_argument("--warmup_ratio", type=float, default=0.1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument(
        "--eval_every_steps", type=int, default=None, help="evaluate every N steps (default: every epoch)"
    )
    train.add_argument("--checkpointing_steps", default=None, help="an integer or 'epoch'")
    train.add_argument("--checkpoints_total_limit", type=int, default=2)
    train.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None)
    train.add_argument("--with_tracking", action="store_true")
    train.add_argument("--report_to", default="tensorboard")
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id", default=None)
    train.add_argument("--hub_token", default=None)
    add_recipe_argument(parser, "finetune_audio", argv)  # --recipe small-data: a measured set of defaults
    args = parser.parse_args(argv)
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            parser.error(
                f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}"
            )
        args.checkpointing_steps = int(args.checkpointing_steps)
    return args


def open_source(args, split: str):
    name = None if args.dataset_name == "demo" and args.data_dir else args.dataset_name
    return load_audio_source(
        name,
        args.dataset_config_name,
        args.data_dir,
        None,
        split,
        args.audio_column,
        args.label_column,
        args.label_names,
        multi_label=True if args.multi_label else None,
        demo_multi_label=args.demo_multi_label,
        demo_num_clips=args.demo_num_clips if split == args.train_split else None,
    )


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Cross-entropy for class indices or soft (mixup) targets; BCE with logits for multi-label targets."""
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if labels.dim() == 2:  # soft targets after mixup
        return torch.sum(-labels.to(logits.dtype) * torch.log_softmax(logits, dim=-1), dim=-1).mean()
    return torch.nn.functional.cross_entropy(logits, labels)


def evaluate_model(accelerator, model, dataloader, feature_extractor, multi_label: bool, tracker) -> dict:
    """Accuracy (single-label) or mAP (multi-label) over the whole evaluation split, gathered from every process."""
    # in memory: every process computes the same result from the gathered predictions, with no shared cache files
    metric = load_metric("mean_average_precision" if multi_label else "accuracy", keep_in_memory=True)
    model.eval()
    losses, count = 0.0, 0
    for batch in dataloader:
        tracker.update(batch)
        with torch.no_grad():
            logits = model(input_values=featurize(feature_extractor, batch, accelerator.device)).logits
        # gather_for_metrics drops the samples duplicated to even out the last batch across processes
        logits, labels = accelerator.gather_for_metrics((logits, batch["labels"]))
        losses += classification_loss(logits.float(), labels, multi_label).item() * labels.shape[0]
        count += labels.shape[0]
        if multi_label:
            metric.add_batch(predictions=torch.sigmoid(logits.float()).cpu().tolist(), references=labels.cpu().tolist())
        else:
            metric.add_batch(predictions=logits.argmax(-1).cpu().tolist(), references=labels.cpu().tolist())
    result = metric.compute()
    name = "mean_average_precision" if multi_label else "accuracy"
    return {"metric": result[name], "metric_name": "mAP" if multi_label else "accuracy", "loss": losses / max(count, 1)}


def save_model_atomically(accelerator, model, feature_extractor, folder: str) -> None:
    """save_pretrained into a temporary folder, then rename (a crash never leaves a half-written best model)."""
    temporary = folder + ".tmp"
    if accelerator.is_main_process and os.path.exists(temporary):
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(
        temporary,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        feature_extractor.save_pretrained(temporary)
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(temporary, folder)
    accelerator.wait_for_everyone()


def main(argv=None):
    args = parse_args(argv)
    if (
        not (args.resume_from_checkpoint or args.overwrite_output_dir)
        and os.path.isdir(args.output_dir)
        and (list_checkpoints(args.output_dir) or os.path.isfile(os.path.join(args.output_dir, "config.json")))
    ):
        raise SystemExit(
            f"{args.output_dir} already holds a run; pass --resume_from_checkpoint, "
            "--overwrite_output_dir or another --output_dir"
        )
    start_time = time.time()
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "runs")
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    log = accelerator.print
    check_world_size(accelerator)
    configure_cpu_threads(accelerator, args.num_threads, log)  # on CPU: use the machine
    if accelerator.is_main_process and not args.resume_from_checkpoint:
        clear_previous_run(args.output_dir)  # only reached with --overwrite_output_dir or a new folder
    accelerator.wait_for_everyone()
    log(
        f"world size: {accelerator.num_processes} process(es), device {accelerator.device}, "
        f"mixed precision {accelerator.mixed_precision}"
    )
    set_seed(args.seed, device_specific=True)

    # ---- data first: the labels decide the head ----------------------------------------------------------------
    train_source = open_source(args, args.train_split)
    labels = train_source.labels
    if labels is None:
        raise SystemExit("fine-tuning needs labels: pass --label_column")
    multi_label = labels.multi_label or args.multi_label
    labels.multi_label = multi_label

    def open_eval(split: str):
        source = open_source(args, split)
        source.labels = labels  # same class order as training
        return source

    # --eval_split, or a held-out part of the training rows (--validation_split_percentage; by default when the data
    # has no such split)
    train_source, eval_source = resolve_evaluation(args, train_source, open_eval, log)
    log(
        f"training data: {train_source.description}; {labels.num_labels} classes, "
        f"{'multi' if multi_label else 'single'}-label"
    )

    # ---- model ---------------------------------------------------------------------------------------------------
    head = dict(
        num_labels=labels.num_labels,
        id2label=labels.id2label,
        label2id={n: i for i, n in labels.id2label.items()},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        drop_path_rate=args.drop_path_rate,
        mask_time_prob=args.mask_time_prob,
        mask_freq_prob=args.mask_freq_prob,
        use_mean_pooling=not args.use_cls_token,
    )
    base = (
        AutoConfig.from_pretrained(args.model_name_or_path, **head)
        if args.model_name_or_path
        else build_config(args.config_name, **head)
    )
    config = config_for_script(base, args.config_overrides, args.clip_seconds, log)  # --config_overrides, --clip_seconds
    if args.model_name_or_path:
        model = load_pretrained_quietly(  # one line instead of transformers' expected LOAD REPORT
            AudioMAEForAudioClassification, args.model_name_or_path, config=config,
            attn_implementation=args.attn_implementation, ignore_mismatched_sizes=True, log=log,
        )
    else:
        model = AudioMAEForAudioClassification._from_config(config, attn_implementation=args.attn_implementation)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    fe_source = args.feature_extractor_name or args.model_name_or_path
    saved_fe = fe_source and (
        not os.path.isdir(fe_source) or os.path.isfile(os.path.join(fe_source, "preprocessor_config.json"))
    )
    if saved_fe:
        feature_extractor = AudioMAEFeatureExtractor.from_pretrained(fe_source)
        if args.feature_normalization:
            feature_extractor.normalization = args.feature_normalization
        if args.clip_seconds is not None:
            feature_extractor.max_length = config.max_length  # the clip length asked for
    else:
        feature_extractor = AudioMAEFeatureExtractor(
            num_mel_bins=config.num_mel_bins,
            max_length=config.max_length,
            normalization=args.feature_normalization or "dataset",
        )
    clip_samples = clip_samples_for(feature_extractor)

    train_dataset = AudioClipDataset(train_source, clip_samples, train=True, seed=args.seed)
    collator = AudioCollator(
        None if args.features_on_device else feature_extractor,
        labels,
        mixup_prob=args.mixup_prob,
        mixup_alpha=args.mixup_alpha,
        seed=args.seed,
    )
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.per_device_train_batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker,  # a SIGTERM to the process group is handled by the loop
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = None
    if eval_source is not None:
        eval_dataloader = torch.utils.data.DataLoader(
            AudioClipDataset(eval_source, clip_samples, train=False),
            batch_size=args.per_device_eval_batch_size,
            collate_fn=AudioCollator(None if args.features_on_device else feature_extractor, labels),
            num_workers=args.dataloader_num_workers,
        )
        log(f"evaluation data: {eval_source.description}")

    # ---- optimizer: AdamW with layer-wise lr decay, cosine schedule ------------------------------------------------
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay, layer_decay=args.layer_decay),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
    )
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)
    if len(train_dataloader) == 0:
        raise SystemExit("the training split gives no full batch per process; lower --per_device_train_batch_size")
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_train_epochs = math.ceil(max_train_steps / steps_per_epoch)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(args.warmup_ratio * max_train_steps)
    budget = TimeBudget(args.max_train_minutes)  # the schedule follows max(step / max_steps, elapsed / budget)
    lr_scheduler = cosine_schedule_with_warmup(optimizer, warmup, max_train_steps, progress=budget.progress)
    accelerator.register_for_checkpointing(lr_scheduler)
    log(
        f"optimizer steps: {max_train_steps} ({num_train_epochs} epochs of {steps_per_epoch}), warm-up {warmup}, "
        f"peak lr {args.learning_rate}, layer decay {args.layer_decay}"
    )
    if args.with_tracking:
        accelerator.init_trackers(
            "finetune_audio", {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        )

    tracker = BadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    nonfinite = NonFiniteLossGuard(args.max_nonfinite_in_a_row, log=log)
    state = TrainingState()
    resume_path = resolve_resume_path(args.resume_from_checkpoint, args.output_dir)
    if resume_path:
        state = load_checkpoint(accelerator, resume_path)
        tracker.load_state_dict(state.bad_samples.get(str(accelerator.process_index), tracker.state_dict()))
        nonfinite.load_state_dict(state.extra.get("nonfinite", {}))
        budget.load_state_dict(state.extra.get("time_budget"))
        log(f"resumed from {resume_path} at step {state.completed_steps}")
    step_log = StepLog(os.path.join(args.output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)
    eval_history = state.extra.setdefault("eval_history", [])
    best_dir = os.path.join(args.output_dir, "best_model")

    def run_evaluation(epoch: int):
        if eval_dataloader is None:
            return
        result = evaluate_model(accelerator, model, eval_dataloader, feature_extractor, multi_label, tracker)
        model.train()
        eval_history.append([state.completed_steps, result["metric"]])
        step_log.write(
            step=state.completed_steps,
            epoch=epoch,
            **{f"eval_{result['metric_name']}": result["metric"], "eval_loss": result["loss"]},
        )
        if args.with_tracking:
            accelerator.log(
                {f"eval/{result['metric_name']}": result["metric"], "eval/loss": result["loss"]},
                step=state.completed_steps,
            )
        improved = state.best_metric is None or result["metric"] > state.best_metric
        log(
            f"step {state.completed_steps}: eval {result['metric_name']} {result['metric']:.4f}, loss "
            f"{result['loss']:.4f}{' (best so far)' if improved else ''}"
        )
        if improved:
            state.best_metric = result["metric"]
            state.extra["best_step"] = state.completed_steps
            save_model_atomically(accelerator, model, feature_extractor, best_dir)

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
    micro_losses = []
    # SIGTERM/SIGUSR1 (pre-emption) stop the loop at the next optimizer-step boundary with a checkpoint
    stopper, stopped = StopOnSignal(log=log), False
    budget.start()  # --max_train_minutes counts from here (plus the time of a resumed run)
    for epoch in range(state.epoch, num_train_epochs):
        if state.completed_steps >= max_train_steps or stopped or budget.exhausted():
            break
        model.train()
        skip = state.batches_in_epoch if epoch == state.epoch else 0
        train_dataloader.set_epoch(epoch)  # the epoch's shuffling order, also after a resume (see pretrain_audio.py)
        batches = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        batches_in_epoch = skip
        for batch in batches:
            batches_in_epoch += 1
            tracker.update(batch)
            maybe_signal_self(state.completed_steps + 1)  # test aid (a SIGTERM mid-step), inert by default
            with accelerator.accumulate(model):
                input_values = featurize(feature_extractor, batch, accelerator.device)
                input_values = spectrogram_jitter(input_values, args.time_shift, args.mel_shift, args.time_stretch)
                if args.freq_mask or args.time_mask:
                    input_values = spec_augment(input_values, args.freq_mask, args.time_mask)
                logits = model(input_values=input_values).logits
                loss = classification_loss(logits, batch["labels"], multi_label)
                loss = maybe_poison_loss(loss, state.completed_steps + 1)  # test aid, inert unless its variable is set
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:
                    # the update's loss, averaged over processes: finite -> clip and step; NaN/Inf -> skip (counted)
                    try:
                        step_loss = step_if_finite(
                            accelerator, model, optimizer, micro_losses, nonfinite, state.completed_steps + 1,
                            args.max_grad_norm,
                        )
                    except NonFiniteLossError as error:
                        raise SystemExit(f"stopped: {error}") from error
                    micro_losses = []
            if not accelerator.sync_gradients:
                continue
            budget.tick(accelerator)  # the loop time the schedule and the budget check see
            lr_scheduler.step()
            state.completed_steps += 1
            state.loss_history.append([state.completed_steps, step_loss])
            step_log.write(step=state.completed_steps, epoch=epoch, loss=step_loss, lr=lr_scheduler.get_last_lr()[-1])
            if args.with_tracking:
                accelerator.log(
                    {"train/loss": step_loss, "train/lr": lr_scheduler.get_last_lr()[-1]}, step=state.completed_steps
                )
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
            return stopper.wind_down(accelerator, state.completed_steps, max_train_steps, log)
        if not args.eval_every_steps:
            run_evaluation(epoch)
        if args.checkpointing_steps == "epoch":
            checkpoint(epoch, batches_in_epoch)
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    if eval_dataloader is not None and (not eval_history or eval_history[-1][0] != state.completed_steps):
        run_evaluation(num_train_epochs - 1)  # the final model is always evaluated
    progress.close()
    train_time = time.time() - start_time

    # ---- save: the best model (by the evaluation metric) becomes the output; the last one without evaluation ------
    accelerator.wait_for_everyone()
    if eval_dataloader is None or not os.path.isdir(best_dir):
        save_model_atomically(accelerator, model, feature_extractor, best_dir)

    # ---- the kept model on the test split: the model was chosen on the evaluation split, so score it elsewhere --------
    test_result = None
    if args.test_split != "none" and args.test_split != args.eval_split:
        try:
            test_source = open_source(args, args.test_split)
        except (ValueError, KeyError) as error:  # the dataset has no such split
            log(f"no test evaluation on split {args.test_split!r}: {error}")
            test_source = None
        if test_source is not None:
            test_source.labels = labels
            test_dataloader = accelerator.prepare(
                torch.utils.data.DataLoader(
                    AudioClipDataset(test_source, clip_samples, train=False),
                    batch_size=args.per_device_eval_batch_size,
                    collate_fn=AudioCollator(None if args.features_on_device else feature_extractor, labels),
                    num_workers=args.dataloader_num_workers,
                )
            )
            best_model = accelerator.prepare_model(
                AudioMAEForAudioClassification.from_pretrained(best_dir), evaluation_mode=True
            )
            test_result = evaluate_model(
                accelerator, best_model, test_dataloader, feature_extractor, multi_label, tracker
            )
            kept = "best model" if eval_dataloader is not None else "final model"  # no eval split: the last step's
            log(f"{kept} on {test_source.description}: {test_result['metric_name']} {test_result['metric']:.4f}")
    bad = tracker.totals(accelerator)
    if accelerator.is_main_process:
        for name in os.listdir(best_dir):
            shutil.copy2(os.path.join(best_dir, name), os.path.join(args.output_dir, name))
        if state.loss_history:
            save_loss_curve(
                state.loss_history,
                os.path.join(args.output_dir, "loss_curve.png"),
                title=f"Audio-MAE fine-tuning ({train_source.description})",
                ylabel="classification loss",
            )
        metric_name = "mAP" if multi_label else "accuracy"
        summary = {
            "world_size": accelerator.num_processes,
            "completed_steps": state.completed_steps,
            "max_train_steps": max_train_steps,
            **budget.summary(),
            f"best_eval_{metric_name}": state.best_metric,
            "best_step": state.extra.get("best_step"),
            f"test_{metric_name}": test_result["metric"] if test_result else None,
            "eval_history": eval_history,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "nonfinite_loss_steps_skipped": nonfinite.skipped,
            "nonfinite_loss_steps": nonfinite.skipped_steps,
        }
        with open(os.path.join(args.output_dir, "train_summary.json"), "w") as handle:
            json.dump(summary, handle, indent=1)
        write_model_card(
            args.output_dir,
            args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
            task="audio-classification",
            summary=(
                f"An Audio-MAE ({config.num_hidden_layers} layers, width {config.hidden_size}) fine-tuned for "
                f"{'multi' if multi_label else 'single'}-label audio classification ({labels.num_labels} classes) "
                "with hf_maskedav."
            ),
            base_model=args.model_name_or_path,
            datasets=[train_source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={
                k: v
                for k, v in {
                    f"eval {metric_name} (best, {getattr(eval_source, 'description', '')})": state.best_metric,
                    f"test {metric_name} (split {args.test_split})": test_result["metric"] if test_result else None,
                }.items()
                if v is not None
            }
            or None,
            hyperparameters={
                "optimizer steps": state.completed_steps,
                "peak learning rate": args.learning_rate,
                "layer decay": args.layer_decay,
                "weight decay": args.weight_decay,
                "mixup": args.mixup_prob,
                "SpecAugment (freq, time)": (args.freq_mask, args.time_mask),
                "token dropping (time, freq)": (args.mask_time_prob, args.mask_freq_prob),
                "drop path": args.drop_path_rate,
                "processes": accelerator.num_processes,
            },
            tags=["audio", "audio-classification", "audio-mae"],
        )
        log(
            f"{best_eval_text(metric_name, state.best_metric, state.extra.get('best_step'))}; "
            f"wall time {format_duration(train_time)}; saved to {args.output_dir}"
        )
        log(BadSampleTracker.report(bad))
        if args.push_to_hub:
            url = push_to_hub(
                args.output_dir,
                args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                token=args.hub_token,
            )
            log(f"pushed to {url}")
    accelerator.wait_for_everyone()
    stopper.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()  # closes the trackers and the process group


if __name__ == "__main__":
    sys.exit(main())
