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
import os
import shutil
import sys
import time

import torch
from accelerate.utils import set_seed
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
from hf_maskedav.training import (
    LoopProgress,
    StepLog,
    TrainingRun,
    add_clip_seconds_argument,
    add_config_overrides_argument,
    build_config,
    check_output_dir,
    config_for_script,
    fit_head_by_linear_probe,
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
from hf_maskedav.training.classification import classification_loss
from hf_maskedav.training.data_options import add_audio_data_arguments
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.recipes import (
    add_recipe_argument,
    add_spectrogram_arguments,
    apply_fbank_options,
    warn_if_band_limited,
)
from hf_maskedav.training.utils import best_eval_text
from hf_maskedav.training.validation_split import add_validation_split_argument, resolve_evaluation


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
    model.add_argument(
        "--head_init",
        default="random",
        choices=["random", "linear_probe"],
        help="the classifier's start: random, or the linear probe of the encoder's features on the training split "
        "(LP-FT's first stage; its time counts in --max_train_minutes)",
    )
    add_config_overrides_argument(model)
    add_clip_seconds_argument(model)
    add_model_runtime_arguments(model)  # --attn_implementation, --gradient_checkpointing

    data = add_audio_data_arguments(  # --dataset_name, --data_dir, --label_column, --multi_label, --demo_num_clips...
        parser, labels=True, eval_help="'none' to train without evaluation"
    )
    add_validation_split_argument(data)
    data.add_argument(
        "--test_split",
        default="test",
        help="split on which the best model is finally scored (skipped when the dataset has no such split or 'none')",
    )

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

    add_training_arguments(
        parser, output_dir="outputs/finetune_audio", learning_rate=3e-3, num_train_epochs=30, train_batch_size=32,
        eval_batch_size=64, finetune=True, help={"learning_rate": "peak learning rate (of the head)"},
    )
    add_recipe_argument(parser, "finetune_audio", argv)  # --recipe small-data: a measured set of defaults
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
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


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args)  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    start_time = time.time()
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)
    log = accelerator.print
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
        if args.clip_seconds is not None:
            feature_extractor.max_length = config.max_length  # the clip length asked for
    else:
        feature_extractor = AudioMAEFeatureExtractor(
            num_mel_bins=config.num_mel_bins,
            max_length=config.max_length,
        )
    apply_fbank_options(feature_extractor, args.feature_normalization, args.top_db)
    clip_samples = clip_samples_for(feature_extractor)

    def whole_clips(source, decoded_cache_mb: float = 0.0, features_cache_mb: float = 0.0, share_decoded_with=None):
        """A split read in order, each clip whole, no augmentation: evaluation, the head's probe, the test split."""
        return torch.utils.data.DataLoader(
            AudioClipDataset(source, clip_samples, train=False, decoded_cache_mb=decoded_cache_mb,
                             share_decoded_with=share_decoded_with),
            batch_size=args.per_device_eval_batch_size,
            collate_fn=AudioCollator(None if args.features_on_device else feature_extractor, labels,
                                     features_cache_mb=features_cache_mb),
            num_workers=args.dataloader_num_workers,
        )

    train_dataset = AudioClipDataset(
        train_source, clip_samples, train=True, seed=args.seed, decoded_cache_mb=args.decoded_cache_mb
    )
    if accelerator.is_main_process:
        warn_if_band_limited(feature_extractor, train_dataset, log)  # 8-kHz audio and no --top_db
    collator = AudioCollator(
        None if args.features_on_device else feature_extractor,
        labels,
        mixup_prob=args.mixup_prob,
        mixup_alpha=args.mixup_alpha,
        seed=args.seed,
        features_cache_mb=args.decoded_cache_mb,
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
        # evaluated again every epoch: clips and features kept
        eval_dataloader = whole_clips(eval_source, args.decoded_cache_mb, args.decoded_cache_mb)
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
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader
    )
    log(
        f"optimizer steps: {max_train_steps} ({num_train_epochs} epochs of {steps_per_epoch}), warm-up {warmup}, "
        f"peak lr {args.learning_rate}, layer decay {args.layer_decay}"
    )
    if args.with_tracking:
        accelerator.init_trackers("finetune_audio", tracker_config(args))

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters --------------------------------
    tracker = BadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, feature_extractor])
    state = run.resume()
    if args.head_init == "linear_probe" and state.completed_steps == 0:  # a resumed run has its head already
        probe_start = time.monotonic()
        # whole training clips, decoded once for the probe and for training (one decoded-clip cache)
        probe_loader = accelerator.prepare(whole_clips(train_source, share_decoded_with=train_dataset))
        state.extra["head_probe"] = fit_head_by_linear_probe(
            accelerator, model, probe_loader, tracker,
            lambda batch: {"input_values": featurize(feature_extractor, batch, accelerator.device)},
            multi_label, seed=args.seed, log=log,
        )
        budget.charge(time.monotonic() - probe_start)
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
            save_model_and_processors(accelerator, model, best_dir, [feature_extractor])

    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc="fine-tuning", disable=not accelerator.is_local_main_process
    )
    micro_losses = []
    # The loop body is written out in each script on purpose (the *_no_trainer.py style: it reads top to bottom and
    # differs per task); what must be right in all of them (resume, checkpoints, stopping) is TrainingRun's.
    # Epochs left from a resumed position; SIGTERM/SIGUSR1 (pre-emption) end the loop at the next optimizer-step
    # boundary with a checkpoint; the time budget starts here.
    for epoch in run.epochs(num_train_epochs):
        model.train()
        for batch in run.batches(train_dataloader, epoch):
            tracker.update(batch)
            with accelerator.accumulate(model):
                input_values = featurize(feature_extractor, batch, accelerator.device)
                input_values = spectrogram_jitter(input_values, args.time_shift, args.mel_shift, args.time_stretch)
                if args.freq_mask or args.time_mask:
                    input_values = spec_augment(input_values, args.freq_mask, args.time_mask)
                logits = model(input_values=input_values).logits
                loss = classification_loss(logits, batch["labels"], multi_label)
                loss = run.test_aids(loss)  # inert unless a test sets HF_MASKEDAV_*
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:
                    # the update's loss, averaged over processes: finite -> clip and step; NaN/Inf -> skip (counted)
                    step_loss = run.optimizer_step(model, optimizer, micro_losses, args.max_grad_norm)
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
            if run.step_done():  # checkpoint every --checkpointing_steps; a stop signal, the step or time budget
                break
        if run.stopped:  # the checkpoint of this step, then exit 0
            progress.close()
            return run.wind_down()
        if not args.eval_every_steps:
            run_evaluation(epoch)
        run.epoch_done()  # --checkpointing_steps epoch
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    if eval_dataloader is not None and (not eval_history or eval_history[-1][0] != state.completed_steps):
        run_evaluation(num_train_epochs - 1)  # the final model is always evaluated
    progress.close()
    train_time = time.time() - start_time

    # ---- save: the best model (by the evaluation metric) becomes the output; the last one without evaluation ------
    accelerator.wait_for_everyone()
    if eval_dataloader is None or not os.path.isdir(best_dir):
        save_model_and_processors(accelerator, model, best_dir, [feature_extractor])

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
            test_dataloader = accelerator.prepare(whole_clips(test_source))  # read once
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
            f"best_eval_{metric_name}": state.best_metric,
            "best_step": state.extra.get("best_step"),
            f"test_{metric_name}": test_result["metric"] if test_result else None,
            "eval_history": eval_history,
            "head_init": args.head_init,
            "head_probe": state.extra.get("head_probe"),
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        write_model_card(
            args.output_dir,
            repo_name(args),
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
                "head start": args.head_init,
                "processes": accelerator.num_processes,
            },
            tags=["audio", "audio-classification", "audio-mae"],
        )
        log(
            f"{best_eval_text(metric_name, state.best_metric, state.extra.get('best_step'))}; "
            f"wall time {format_duration(train_time)}; saved to {args.output_dir}"
        )
        log(BadSampleTracker.report(bad))
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    run.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()  # closes the trackers and the process group


if __name__ == "__main__":
    sys.exit(main())
