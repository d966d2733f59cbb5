#!/usr/bin/env python
"""Pretrain an Audio-MAE (masked spectrogram autoencoder) with Accelerate.

With no arguments it pretrains a tiny Audio-MAE on the built-in synthetic dataset, on whatever Accelerate finds
(one CPU is enough, a few minutes):

    accelerate launch examples/pretrain_audio.py

On real data and several GPUs (see docs/training.md for every option and the configs in accelerate_configs/):

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/pretrain_audio.py \
        --config_name audiomae-base --dataset_name agkphysics/AudioSet --streaming --max_train_steps 100000 \
        --per_device_train_batch_size 64 --learning_rate 4e-4 --weight_decay 1e-4 --checkpointing_steps 2000

The loop is written out on purpose (in the style of transformers' ``*_no_trainer.py`` examples) so it can be read
top to bottom and changed. What it takes care of: optimizer steps counted once per update whatever the gradient
accumulation; the LR schedule stepped once per update (not once per process); resume mid-epoch restores the data
position, the epoch's shuffling and every RNG, so a resumed run repeats the loss sequence of an uninterrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from accelerate.utils import send_to_device, set_seed
from transformers import AutoConfig

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav import AudioMAEFeatureExtractor, AudioMAEForPreTraining
from hf_maskedav.data import (
    AudioClipDataset,
    AudioCollator,
    BadSampleTracker,
    StreamingAudioClipDataset,
    clip_samples_for,
    featurize,
    load_audio_source,
    spectrogram_jitter,
)
from hf_maskedav.training import (
    LoopProgress,
    StepLog,
    TrainingRun,
    add_clip_seconds_argument,
    add_config_overrides_argument,
    build_config,
    check_output_dir,
    config_for_script,
    format_duration,
    ignore_stop_signals_in_worker,
    parameter_groups,
    per_process_states,
    push_output,
    repo_name,
    save_loss_curve,
    save_model_and_processors,
    save_spectrogram_reconstruction,
    spectrogram_reconstruction_images,
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
from hf_maskedav.training.data_options import add_audio_data_arguments
from hf_maskedav.training.presets import presets_of
from hf_maskedav.training.recipes import (
    add_recipe_argument,
    add_spectrogram_arguments,
    apply_fbank_options,
    warn_if_band_limited,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--config_name",
        default="audiomae-tiny",
        help=f"a preset ({', '.join(presets_of('AudioMAEConfig'))}), a config folder/JSON file or a Hub id",
    )
    model.add_argument(
        "--model_name_or_path", default=None, help="continue pretraining from these weights (folder or Hub id)"
    )
    model.add_argument(
        "--feature_extractor_name",
        default=None,
        help="feature extractor to use (defaults to --model_name_or_path's, else one matching the config)",
    )
    model.add_argument(
        "--mask_ratio",
        type=float,
        default=None,
        help="fraction of patches masked (default: the config's, 0.6 for audiomae-tiny, 0.8 otherwise)",
    )
    add_config_overrides_argument(model)
    add_clip_seconds_argument(model)
    add_model_runtime_arguments(model)  # --attn_implementation, --gradient_checkpointing

    data = add_audio_data_arguments(  # --dataset_name, --data_dir, --audio_files, --streaming, --demo_num_clips...
        parser, eval_help="split for the final held-out reconstruction loss and picture ('none' to skip)"
    )

    add_spectrogram_arguments(data)  # --time_shift, --mel_shift, --time_stretch, --feature_normalization

    add_training_arguments(
        parser, output_dir="outputs/pretrain_audio", learning_rate=2e-3, num_train_epochs=20, train_batch_size=32,
        eval_batch_size=64, finetune=False,
        help={"learning_rate": "peak learning rate after warm-up (2e-3 suits the default tiny model; official ViT-B "
                               "recipe: 4e-4)"},
    )
    add_recipe_argument(parser, "pretrain_audio", argv)  # --recipe small-data: a measured set of defaults
    args = parser.parse_args(argv)

    if args.streaming and args.max_train_steps is None:
        parser.error("--streaming needs --max_train_steps (a stream has no length to count epochs)")
    check_training_arguments(parser, args)
    return args


def open_source(args, split: str):
    """The training/eval split: built-in demo by default, else the Hub id / local folder / audio files given."""
    name = args.dataset_name
    if name == "demo" and (args.data_dir or args.audio_files):
        name = None  # --data_dir or --audio_files alone
    return load_audio_source(
        name,
        args.dataset_config_name,
        args.data_dir,
        args.audio_files,
        split,
        args.audio_column,
        streaming=args.streaming and split == args.train_split,
        demo_num_clips=args.demo_num_clips if split == args.train_split else None,
    )


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args)  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    start_time = time.time()
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)
    log = accelerator.print
    # Different masks on every process, reproducible from the seed.
    set_seed(args.seed, device_specific=True)

    # ---- model and feature extractor ---------------------------------------------------------------------------
    # --mask_ratio, then --config_overrides, then --clip_seconds (max_length), on the preset or the loaded config
    base = AutoConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else build_config(args.config_name)
    config = config_for_script(base, args.config_overrides, args.clip_seconds, log, mask_ratio=args.mask_ratio)
    if args.model_name_or_path:
        model = AudioMAEForPreTraining.from_pretrained(
            args.model_name_or_path, config=config, attn_implementation=args.attn_implementation
        )
    else:
        model = AudioMAEForPreTraining._from_config(config, attn_implementation=args.attn_implementation)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    fe_source = args.feature_extractor_name or args.model_name_or_path
    if fe_source:
        feature_extractor = AudioMAEFeatureExtractor.from_pretrained(fe_source)
        if args.clip_seconds is not None:
            feature_extractor.max_length = config.max_length  # the clip length asked for
    else:
        feature_extractor = AudioMAEFeatureExtractor(
            num_mel_bins=config.num_mel_bins,
            max_length=config.max_length,
        )
    apply_fbank_options(feature_extractor, args.feature_normalization, args.top_db)
    if (feature_extractor.num_mel_bins, feature_extractor.max_length) != (config.num_mel_bins, config.max_length):
        raise SystemExit(
            f"the feature extractor makes {feature_extractor.max_length}x{feature_extractor.num_mel_bins} spectrograms "
            f"but the model expects {config.max_length}x{config.num_mel_bins}"
        )
    log(
        f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, input "
        f"{config.max_length} frames x {config.num_mel_bins} mel bins, {config.num_patches} patches, "
        f"mask ratio {config.mask_ratio}"
    )

    # ---- data --------------------------------------------------------------------------------------------------
    clip_samples = clip_samples_for(feature_extractor)
    source = open_source(args, args.train_split)
    log(f"training data: {source.description}")
    collator = AudioCollator(None if args.features_on_device else feature_extractor,
                             features_cache_mb=args.decoded_cache_mb)
    if args.streaming:
        train_dataset = StreamingAudioClipDataset(
            source,
            clip_samples,
            train=True,
            seed=args.seed,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
            shuffle_buffer_size=args.shuffle_buffer_size,
        )
        if accelerator.is_main_process:
            # the stream's first clips, unshuffled: no shuffle buffer to fill (and download) twice
            first_clips = StreamingAudioClipDataset(source, clip_samples, train=False, repeat=False)
            warn_if_band_limited(feature_extractor, first_clips, log)
        train_dataloader = torch.utils.data.DataLoader(
            train_dataset,
            batch_size=args.per_device_train_batch_size,
            collate_fn=collator,
            num_workers=args.dataloader_num_workers,
            worker_init_fn=ignore_stop_signals_in_worker,  # a SIGTERM to the process group is handled by the loop
        )
    else:
        train_dataset = AudioClipDataset(
            source, clip_samples, train=True, seed=args.seed, decoded_cache_mb=args.decoded_cache_mb
        )
        if accelerator.is_main_process:
            warn_if_band_limited(feature_extractor, train_dataset, log)  # 8-kHz audio and no --top_db
        train_dataloader = torch.utils.data.DataLoader(
            train_dataset,
            batch_size=args.per_device_train_batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=collator,
            num_workers=args.dataloader_num_workers,
            worker_init_fn=ignore_stop_signals_in_worker,
            # its own generator, so creating a data-loader iterator never draws from the global RNG
            generator=torch.Generator().manual_seed(args.seed),
        )

    # ---- optimizer and schedule ----------------------------------------------------------------------------------
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2)
    )
    if args.streaming:
        model, optimizer = accelerator.prepare(model, optimizer)  # each process reads its own shard of the stream
    else:
        model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader, streaming=args.streaming
    )

    total_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    log(
        f"optimizer steps: {max_train_steps} ({num_train_epochs} epoch(s) of "
        f"{steps_per_epoch or 'streamed'} "
        f"steps), total batch {total_batch}, warm-up {warmup}, peak lr {args.learning_rate}"
    )

    if args.with_tracking:
        accelerator.init_trackers("pretrain_audio", tracker_config(args))

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters --------------------------------
    tracker = BadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, feature_extractor])
    state = run.resume()
    step_log = StepLog(os.path.join(args.output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)

    # ---- training loop -----------------------------------------------------------------------------------------
    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc="pretraining", disable=not accelerator.is_local_main_process
    )
    micro_losses, last_input = [], None
    # The loop body is written out in each script on purpose (the *_no_trainer.py style: it reads top to bottom and
    # differs per task); what must be right in all of them (resume, checkpoints, stopping) is TrainingRun's.
    # Epochs left from a resumed position; SIGTERM/SIGUSR1 (pre-emption) end the loop at the next optimizer-step
    # boundary with a checkpoint; the time budget starts here.
    for epoch in run.epochs(num_train_epochs):
        model.train()
        for batch in run.batches(train_dataloader, epoch, streaming=args.streaming):
            if args.streaming:
                batch = send_to_device(batch, accelerator.device)
            tracker.update(batch)
            with accelerator.accumulate(model):
                input_values = featurize(feature_extractor, batch, accelerator.device)
                input_values = spectrogram_jitter(input_values, args.time_shift, args.mel_shift, args.time_stretch)
                last_input = input_values[:1].detach()  # for the reconstruction picture when there is no eval split
                loss = run.test_aids(model(input_values=input_values).loss)  # inert unless a test sets HF_MASKEDAV_*
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:
                    # the update's loss, averaged over processes: finite -> clip and step; NaN/Inf -> skip (counted)
                    step_loss = run.optimizer_step(model, optimizer, micro_losses, args.max_grad_norm)
                    micro_losses = []
            if not accelerator.sync_gradients:
                continue

            # one optimizer update is complete
            budget.tick(accelerator)  # the loop time the schedule and the budget check see
            lr_scheduler.step()
            state.completed_steps += 1
            lr = lr_scheduler.get_last_lr()[0]
            state.loss_history.append([state.completed_steps, step_loss])
            step_log.write(step=state.completed_steps, epoch=epoch, loss=step_loss, lr=lr)
            if args.with_tracking:
                accelerator.log(
                    {"train/loss": step_loss, "train/lr": lr, "train/epoch": epoch}, step=state.completed_steps
                )
            progress.update(1)
            if state.completed_steps % args.logging_steps == 0 or state.completed_steps == 1:
                progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            if run.step_done():  # checkpoint every --checkpointing_steps; a stop signal, the step or time budget
                break
        if run.stopped:  # the checkpoint of this step, then exit 0
            progress.close()
            return run.wind_down()
        run.epoch_done()  # --checkpointing_steps epoch
    progress.close()
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    train_time = time.time() - start_time
    # clips each process trained on (the bad-sample tracker also counts the evaluation below)
    samples_per_process = {k: v["good"] for k, v in per_process_states(accelerator, tracker.state_dict()).items()}

    # ---- held-out loss and reconstruction picture ----------------------------------------------------------------
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    eval_loss, picture_input = None, None
    eval_source = None
    if args.eval_split != "none" and not args.streaming and args.audio_files is None:
        try:
            eval_source = open_source(args, args.eval_split)
        except (ValueError, KeyError) as error:  # the dataset has no such split
            log(f"no held-out evaluation on split {args.eval_split!r}: {error}")
    if eval_source is not None:
        eval_loader = accelerator.prepare(
            torch.utils.data.DataLoader(
                AudioClipDataset(eval_source, clip_samples, train=False),
                batch_size=args.per_device_eval_batch_size,
                collate_fn=AudioCollator(None if args.features_on_device else feature_extractor),
            )
        )
        losses, noise_gen = [], torch.Generator().manual_seed(1234)
        for batch in eval_loader:
            tracker.update(batch)
            input_values = featurize(feature_extractor, batch, accelerator.device)
            noise = torch.rand(input_values.shape[0], config.num_patches, generator=noise_gen).to(accelerator.device)
            with torch.no_grad():
                out = model(input_values=input_values, noise=noise)
            losses.append(accelerator.gather_for_metrics(out.loss.detach().repeat(input_values.shape[0])))
            if picture_input is None:
                picture_input = input_values[:1].detach()
        eval_loss = torch.cat(losses).mean().item()
        log(f"held-out reconstruction loss ({args.eval_split}): {eval_loss:.4f}")
    if picture_input is None:
        picture_input = last_input  # no held-out split: a clip of the last training batch

    # ---- save --------------------------------------------------------------------------------------------------
    bad = tracker.totals(accelerator)
    # waits for every process; beside the checkpoints and logs, each file renamed into place whole (a crash mid-save
    # truncates nothing)
    save_model_and_processors(accelerator, model, args.output_dir, [feature_extractor], beside_other_files=True)
    if accelerator.is_main_process:
        if state.loss_history:
            save_loss_curve(
                state.loss_history,
                os.path.join(args.output_dir, "loss_curve.png"),
                title=f"Audio-MAE pretraining ({source.description})",
                ylabel="masked reconstruction loss",
            )
        if picture_input is not None:
            with torch.no_grad():
                noise = torch.rand(1, config.num_patches, generator=torch.Generator().manual_seed(0)).to(
                    accelerator.device
                )
                out = unwrapped(input_values=picture_input, noise=noise)
            images = spectrogram_reconstruction_images(
                picture_input[0], out.logits[0], out.mask[0], config.patch_size, config.norm_pix_loss
            )
            save_spectrogram_reconstruction(
                images,
                os.path.join(args.output_dir, "reconstruction.png"),
                title=f"step {state.completed_steps}, mask ratio {config.mask_ratio}",
            )
        first, last = run.first_and_last_loss()  # step 1, mean of the last 10 steps
        summary = {
            "first_loss": first,
            "final_loss_mean_last_10": last,
            "eval_loss": eval_loss,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "train_samples_per_process": samples_per_process,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        write_model_card(
            args.output_dir,
            repo_name(args),
            task="feature-extraction",
            summary=(
                f"An Audio-MAE ({config.num_hidden_layers} layers, width {config.hidden_size}) pretrained with "
                f"masked spectrogram modelling (mask ratio {config.mask_ratio}) using hf_maskedav."
            ),
            datasets=[source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={"held-out reconstruction loss": eval_loss} if eval_loss is not None else None,
            hyperparameters={
                "optimizer steps": state.completed_steps,
                "total batch size": total_batch,
                "peak learning rate": args.learning_rate,
                "weight decay": args.weight_decay,
                "warm-up steps": warmup,
                "processes": accelerator.num_processes,
                "mixed precision": accelerator.mixed_precision,
            },
            tags=["audio", "audio-mae", "self-supervised", "masked-autoencoder"],
        )
        log(f"saved the model, feature extractor, loss_curve.png and reconstruction.png to {args.output_dir}")
        log(
            f"training wall time {format_duration(train_time)}; loss {first:.4f} (step 1) -> {last:.4f} "
            "(mean of the last 10 steps)"
            if state.loss_history
            else f"training wall time {format_duration(train_time)}"
        )
        log(BadSampleTracker.report(bad))
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    run.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()  # closes the trackers and the process group


if __name__ == "__main__":
    sys.exit(main())
