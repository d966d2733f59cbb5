#!/usr/bin/env python
"""Pretrain a masked video model (VideoMAE, MAE-ST or MaskFeat) with Accelerate.

With no arguments it pretrains a tiny VideoMAE on the built-in moving-shapes dataset (real .mp4 files, written once
into a cache folder), on whatever Accelerate finds (one CPU is enough, a few minutes):

    accelerate launch examples/pretrain_video.py
    accelerate launch examples/pretrain_video.py --model mae_st        # or maskfeat
    accelerate launch examples/pretrain_video.py --model videomae_v2   # dual masking (running-cell decoder mask 0.5)

On Kinetics-style CSV lists and several GPUs (see docs/training_video.md for every option):

    accelerate launch --multi_gpu examples/pretrain_video.py --model mae_st --config_name mae_st-large \
        --train_csv k400/train.csv --eval_csv k400/val.csv --data_root k400/videos --repeated_sampling 4 \
        --per_device_train_batch_size 8 --learning_rate 4e-4 --max_train_steps 200000 --checkpointing_steps 2000 \
        --dataloader_num_workers 12      # lr: MAE-ST's 1.6e-3 x 64 videos per step (8 GPUs x 8) / 256

The family is the config's: ``--model`` picks the default tiny preset of a family, ``--config_name`` any preset,
config folder or Hub id. Clips follow the family's official recipe (frame count and sampling rate from its video
processor, random start, the family's crop/flip, its normalisation; docs/training_video.md). Each decoded video gives
``--repeated_sampling`` clips (MAE-ST's ``repeat_aug``, default 4 for MAE-ST, 1 otherwise): the batch holds
``videos x repeats`` clips.

The loop is the one of pretrain_audio.py: optimizer steps counted once per update, the schedule stepped once per
update, exact resume mid-epoch (data position, shuffling, RNG), atomic checkpoints, bad videos skipped and reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from accelerate.utils import set_seed
from transformers import AutoConfig, AutoModelForPreTraining

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav.data.video import VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
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
    per_process_states,
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
from hf_maskedav.training.plotting import (
    mae_st_reconstruction_frames,
    maskfeat_hog_rows,
    save_frame_grid,
    videomae_reconstruction_frames,
)
from hf_maskedav.registration import FAMILIES
from hf_maskedav.training.presets import PRETRAINING_FAMILIES, presets_of, processor_source, video_processor_for
from hf_maskedav.training.data_options import SPLIT_MISSING_ERRORS, add_video_data_arguments, open_video_split

# model type -> display name ("VideoMAE", "MAE-ST", "MaskFeat") of the families this script pretrains
FAMILY_NAMES = {PRETRAINING_FAMILIES[f]: FAMILIES[f]["name"] for f in ("videomae", "mae_st", "maskfeat")}
DEFAULT_REPEATS = {"maskedav_mae_st": 4}  # MAE-ST PRETRAIN.md: --repeat_aug 4
# Defaults for the tiny runs on one CPU (docs/training_video.md has the measurements behind them): peak learning rate
# and epochs per family. At 1.5e-3 the tiny models still lower the loss but their features end up no better than
# random weights under a linear probe; the papers scale a base LR by batch / 256 (VideoMAE 1.5e-4, MAE-ST 1.6e-3,
# MaskFeat 1e-4 on K400). MAE-ST sees 4 clips per video, so 6 epochs already give it 4x the clips of VideoMAE's 12.
DEFAULT_LEARNING_RATE = {"maskedav_videomae": 3e-4, "maskedav_mae_st": 1e-4, "maskedav_maskfeat": 3e-4}
DEFAULT_EPOCHS = {"maskedav_videomae": 12, "maskedav_mae_st": 6, "maskedav_maskfeat": 6}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="videomae", choices=sorted(PRETRAINING_FAMILIES),
                       help="the family, when --config_name is not given (its tiny preset)")
    video_presets = [n for c in ("MaskedAVVideoMAEConfig", "MAESTConfig", "MaskFeatConfig") for n in presets_of(c)]
    model.add_argument("--config_name", default=None,
                       help=f"a preset ({', '.join(video_presets)}), a config folder/JSON or a Hub id; default "
                            "<model>-tiny")
    model.add_argument("--model_name_or_path", default=None, help="continue pretraining from these weights")
    model.add_argument("--processor_name", default=None,
                       help="video processor to use (defaults to --model_name_or_path's, else one matching the config)")
    model.add_argument("--mask_ratio", type=float, default=None, help="fraction of tokens masked (config default)")
    model.add_argument("--decoder_mask_ratio", type=float, default=None,
                       help="VideoMAE V2 dual masking: fraction of tokens the decoder does not reconstruct (config "
                            "default: 0.5 for the videomae_v2 presets, as the official V2 scripts; 0 = VideoMAE V1)")
    model.add_argument("--decoder_mask_type", default=None, choices=[None, "run_cell"],
                       help="VideoMAE V2 decoder mask (config default run_cell, the official scripts' choice)")
    add_config_overrides_argument(model)
    add_model_runtime_arguments(model)  # --attn_implementation, --gradient_checkpointing

    add_video_data_arguments(parser)
    clips = parser.add_argument_group("clips")
    clips.add_argument("--repeated_sampling", type=int, default=None,
                       help="clips cut from each decoded video (MAE-ST repeat_aug; default 4 for MAE-ST, else 1)")
    clips.add_argument("--sampling_rate", type=float, default=None, help="frames between sampled frames (processor's)")
    clips.add_argument("--train_crop", default=None, choices=[None, "random_resized", "multi_scale", "resize"],
                       help="spatial augmentation (the family's official one by default)")
    clips.add_argument("--min_crop_scale", type=float, default=None, help="random resized crop: smallest area fraction")
    clips.add_argument("--no_flip", action="store_true", help="no random horizontal flip")

    add_training_arguments(
        parser, output_dir=None, learning_rate=None, num_train_epochs=None, train_batch_size=8, eval_batch_size=32,
        finetune=False,
        help={"output_dir": "default outputs/pretrain_<model>", "per_device_train_batch_size": "videos per process per step",
              "learning_rate": "peak learning rate (after warm-up); default per family: VideoMAE/MaskFeat 3e-4, MAE-ST 1e-4",
              "max_grad_norm": "clip gradients to this norm (MAE-ST: 0.02)",
              "num_train_epochs": "default per family: VideoMAE 12, MAE-ST and MaskFeat 6"},
    )
    args = parser.parse_args(argv)

    args.config_name = args.config_name or f"{args.model}-tiny"
    args.output_dir = args.output_dir or f"outputs/pretrain_{args.model}"
    check_training_arguments(parser, args)
    if args.repeated_sampling is not None and args.repeated_sampling < 1:
        parser.error("--repeated_sampling must be at least 1")
    return args


def reconstruction_rows(model, clip: torch.Tensor, output, mean, std) -> dict:
    """The picture's rows for one clip: masked / reconstruction / original frames, or MaskFeat's HOG views."""
    model_type = model.config.model_type
    if model_type == "maskedav_videomae":
        return videomae_reconstruction_frames(model, clip, output)
    if model_type == "maskedav_mae_st":
        return mae_st_reconstruction_frames(model, clip, output, mean, std)
    return maskfeat_hog_rows(model, clip, output, mean, std)


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args)  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    start_time = time.time()
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)
    log = accelerator.print
    set_seed(args.seed, device_specific=True)  # different masks on every process, reproducible from the seed

    # ---- model and video processor -------------------------------------------------------------------------------
    # --mask_ratio, then --config_overrides, on the preset or the loaded config
    base = AutoConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else build_config(args.config_name)
    config = config_for_script(base, args.config_overrides, log=log, mask_ratio=args.mask_ratio,
                               decoder_mask_ratio=args.decoder_mask_ratio, decoder_mask_type=args.decoder_mask_type)
    if args.model_name_or_path:
        model = AutoModelForPreTraining.from_pretrained(args.model_name_or_path, config=config,
                                                        attn_implementation=args.attn_implementation)
    else:
        model = AutoModelForPreTraining.from_config(config, attn_implementation=args.attn_implementation)
    if config.model_type not in FAMILY_NAMES:
        raise SystemExit(f"{args.config_name}: model type {config.model_type!r} is not a video pretraining family "
                         f"({', '.join(FAMILY_NAMES.values())}); use pretrain_audiovisual.py for MAViL")
    family = FAMILY_NAMES[config.model_type]
    dual_masking = (f", VideoMAE V2 dual masking ({config.decoder_mask_type} decoder mask {config.decoder_mask_ratio})"
                    if getattr(config, "decoder_mask_ratio", 0) else "")
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    processor = video_processor_for(config, args.config_name, processor_source(args.processor_name, args.model_name_or_path))
    repeats = args.repeated_sampling or DEFAULT_REPEATS.get(config.model_type, 1)
    if args.learning_rate is None:
        args.learning_rate = DEFAULT_LEARNING_RATE[config.model_type]
    if args.num_train_epochs is None:
        args.num_train_epochs = DEFAULT_EPOCHS[config.model_type]
    recipe = video_recipe(
        processor, config.model_type, "pretrain", sampling_rate=args.sampling_rate, train_crop=args.train_crop,
        scale=(args.min_crop_scale, 1.0) if args.min_crop_scale else None, flip=False if args.no_flip else None,
    )
    log(f"model: {family}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, mask ratio "
        f"{config.mask_ratio}{dual_masking}; clips of {recipe.num_frames} frames every {recipe.sampling_rate:g}, "
        f"{recipe.crop_size[0]}x{recipe.crop_size[1]}, {recipe.train_crop} crop, flip {recipe.flip}, {repeats} clip(s) "
        f"per decoded video")

    # ---- data ----------------------------------------------------------------------------------------------------
    source = open_video_split(args, args.train_split, accelerator)
    log(f"training data: {source.description}")
    train_dataset = VideoClipDataset(source, recipe, train=True, seed=args.seed, repeats=repeats,
                                     backend=args.decoding_backend)
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset, batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True,
        collate_fn=VideoCollator(), num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker,
        generator=torch.Generator().manual_seed(args.seed),  # its own: iterators never draw from the global RNG
    )

    # ---- optimizer and schedule ----------------------------------------------------------------------------------
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2)
    )
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader
    )
    total_videos = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    log(f"optimizer steps: {max_train_steps} ({num_train_epochs} epoch(s) of {steps_per_epoch} steps), "
        f"{total_videos} videos = {total_videos * repeats} clips per step, warm-up {warmup}, peak lr {args.learning_rate}")
    if args.with_tracking:
        accelerator.init_trackers("pretrain_video", tracker_config(args))

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters ------------------------------
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker,
                      pretrained=[accelerator.unwrap_model(model).config, processor])
    state = run.resume()
    step_log = StepLog(os.path.join(args.output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)

    # ---- training loop -------------------------------------------------------------------------------------------
    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc=f"pretraining {family}", disable=not accelerator.is_local_main_process
    )
    micro_losses, last_clip = [], None
    # The loop body is written out in each script on purpose (the *_no_trainer.py style: it reads top to bottom and
    # differs per task); what must be right in all of them (resume, checkpoints, stopping) is TrainingRun's.
    # Epochs left from a resumed position; SIGTERM/SIGUSR1 (pre-emption) end the loop at the next optimizer-step
    # boundary with a checkpoint; the time budget starts here.
    for epoch in run.epochs(num_train_epochs):
        model.train()
        for batch in run.batches(train_dataloader, epoch):  # the epoch's order and random clips, also after a resume
            tracker.update(batch)
            with accelerator.accumulate(model):
                pixel_values = batch["pixel_values"]
                last_clip = pixel_values[:1].detach()
                loss = model(pixel_values=pixel_values).loss  # the mask is drawn inside the model
                loss = run.test_aids(loss)  # inert unless a test sets HF_MASKEDAV_*
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                if accelerator.sync_gradients:  # the update's loss over micro-batches and processes: finite -> step
                    step_loss = run.optimizer_step(model, optimizer, micro_losses, args.max_grad_norm)
                    micro_losses = []
            if not accelerator.sync_gradients:
                continue

            budget.tick(accelerator)  # the loop time the schedule and the budget check see
            lr_scheduler.step()
            state.completed_steps += 1
            lr = lr_scheduler.get_last_lr()[0]
            state.loss_history.append([state.completed_steps, step_loss])
            step_log.write(step=state.completed_steps, epoch=epoch, loss=step_loss, lr=lr)
            if args.with_tracking:
                accelerator.log({"train/loss": step_loss, "train/lr": lr, "train/epoch": epoch}, step=state.completed_steps)
            progress.update(1)
            if state.completed_steps % args.logging_steps == 0 or state.completed_steps == 1:
                progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            if run.step_done():  # checkpoint every --checkpointing_steps; a stop signal, the step or time budget
                break
        if run.stopped:  # the checkpoint of this step, then exit 0
            progress.close()
            raise SystemExit(run.wind_down())
        run.epoch_done()  # --checkpointing_steps epoch
    progress.close()
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    train_time = time.time() - start_time

    # ---- held-out loss (fixed masks) and the picture -------------------------------------------------------------
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    eval_loss, picture_clip, eval_source = None, None, None
    if args.eval_split != "none" and not args.video_files:
        try:
            eval_source = open_video_split(args, args.eval_split, accelerator, train=False)
        except SPLIT_MISSING_ERRORS as error:
            log(f"no held-out evaluation on split {args.eval_split!r}: {error}")
    if eval_source is not None:
        eval_loader = accelerator.prepare(torch.utils.data.DataLoader(
            VideoClipDataset(eval_source, recipe, train=False, backend=args.decoding_backend),
            batch_size=args.per_device_eval_batch_size, collate_fn=VideoCollator(),
            num_workers=args.dataloader_num_workers,
        ))
        losses = []
        with torch.random.fork_rng(devices=devices):  # the same masks in every evaluation, training RNG untouched
            torch.manual_seed(1234 + accelerator.process_index)
            for batch in eval_loader:
                tracker.update(batch)
                with torch.no_grad():
                    out = model(pixel_values=batch["pixel_values"])
                size = batch["pixel_values"].shape[0]
                losses.append(accelerator.gather_for_metrics(out.loss.detach().float().repeat(size)))
                if picture_clip is None:
                    picture_clip = batch["pixel_values"][:1].detach()
        eval_loss = torch.cat(losses).mean().item()
        log(f"held-out {'HOG' if family == 'MaskFeat' else 'reconstruction'} loss ({args.eval_split}): {eval_loss:.4f}")
    if picture_clip is None:
        picture_clip = last_clip

    # ---- save ----------------------------------------------------------------------------------------------------
    bad = tracker.totals(accelerator)
    videos_per_process = {k: v["good"] for k, v in per_process_states(accelerator, tracker.state_dict()).items()}
    # waits for every process; beside the checkpoints and logs, each file renamed into place whole (a crash mid-save
    # truncates nothing)
    save_model_and_processors(accelerator, model, args.output_dir, [processor], beside_other_files=True)
    if accelerator.is_main_process:
        target_name = "HOG prediction loss" if family == "MaskFeat" else "masked reconstruction loss"
        if state.loss_history:
            save_loss_curve(state.loss_history, os.path.join(args.output_dir, "loss_curve.png"),
                            title=f"{family} pretraining ({source.description})", ylabel=target_name)
        if picture_clip is not None:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                # V2: the picture shows every masked token (training reconstructs only the running cell's share)
                every_masked = {"decoder_mask_ratio": 0.0} if getattr(config, "decoder_mask_ratio", 0) else {}
                out = unwrapped(pixel_values=picture_clip, **every_masked)
            rows = reconstruction_rows(unwrapped, picture_clip[0].cpu(), out, recipe.mean, recipe.std)
            save_frame_grid(rows, os.path.join(args.output_dir, "reconstruction.png"),
                            title=f"{family}, step {state.completed_steps}, mask ratio {config.mask_ratio}")
        first, last = run.first_and_last_loss()  # step 1, mean of the last 10 steps
        summary = {
            "model_type": config.model_type,
            "clips_per_video": repeats,
            "first_loss": first,
            "final_loss_mean_last_10": last,
            "eval_loss": eval_loss,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "videos_per_process": videos_per_process,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        write_model_card(
            args.output_dir, repo_name(args),
            task="feature-extraction", modality="video",
            summary=(f"A {family} ({getattr(config, 'num_hidden_layers', '?')} layers, width {config.hidden_size}) "
                     f"pretrained with masked {'HOG feature' if family == 'MaskFeat' else 'video'} modelling "
                     f"(mask ratio {config.mask_ratio}) using hf_maskedav."),
            datasets=[source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={f"held-out {target_name}": eval_loss} if eval_loss is not None else None,
            hyperparameters={"optimizer steps": state.completed_steps, "videos per step": total_videos,
                             "clips per video (repeated sampling)": repeats, "peak learning rate": args.learning_rate,
                             "weight decay": args.weight_decay, "warm-up steps": warmup,
                             "frames x sampling rate": f"{recipe.num_frames} x {recipe.sampling_rate:g}",
                             "crop": f"{recipe.train_crop} {recipe.crop_size[0]}x{recipe.crop_size[1]}",
                             "processes": accelerator.num_processes, "mixed precision": accelerator.mixed_precision},
            tags=[family.lower(), "self-supervised", "masked-autoencoder"],
        )
        log(f"saved the model, video processor, loss_curve.png and reconstruction.png to {args.output_dir}")
        log(f"training wall time {format_duration(train_time)}; loss {first:.4f} (step 1) -> {last:.4f} (mean of the "
            "last 10 steps)" if state.loss_history else f"training wall time {format_duration(train_time)}")
        log(VideoBadSampleTracker.report(bad))
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    run.close()  # everything is saved: a signal may end the process again
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
