#!/usr/bin/env python
"""Pretrain MAViL (or a joint audio-visual MAE) on videos with sound, with Accelerate.

With no arguments it runs MAViL stage 1 (masked reconstruction of spectrogram and frames from the fused encoders,
plus inter- and intra-modal contrastive terms) with a tiny model on the built-in audio-visual dataset (moving shapes
whose sound follows the motion, real .mp4 files with an AAC track):

    accelerate launch examples/pretrain_audiovisual.py                                  # -> outputs/pretrain_audiovisual

Stage 2 distils a frozen teacher's fused features (the stage-1 model, then each previous student):

    accelerate launch examples/pretrain_audiovisual.py --stage 2 --teacher outputs/pretrain_audiovisual \
        --output_dir outputs/mavil_stage2 --iterations 2      # iteration-1 (teacher: stage 1), iteration-2 (teacher: 1)

The joint AV-MAE variants of Georgescu et al. are MAViL configs: ``--config_name avmae-tiny`` (no cls tokens, no
contrastive terms, raw targets, one joint decoder), plus ``--decoder_type {separate,shared,joint}``,
``--inpainting {audio_to_video,video_to_audio}``, ``--share_modality_encoders`` and the layer counts
(``--fusion_layers``). Every loss term is logged per step (train_log.jsonl, TensorBoard with --with_tracking) and
drawn in loss_curve.png.

Checkpointing, resume (exact, mid-epoch), tracking, pictures and the Hub follow pretrain_audio.py. With
``--iterations N`` each iteration trains in ``<output_dir>/iteration-<k>`` (a resumed chain skips finished iterations
and resumes the one in progress); the last one is also copied to ``<output_dir>``.
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
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, ProjectConfiguration, set_seed

import hf_maskedav  # noqa: F401
from hf_maskedav import MAViLConfig, MAViLForPreTraining
from hf_maskedav.data import clip_samples_for
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
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
    save_spectrogram_reconstruction,
    spectrogram_reconstruction_images,
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
from hf_maskedav.training.video_cli import SPLIT_MISSING_ERRORS, add_video_data_arguments, open_video_split
from hf_maskedav.training.video_model_card import write_video_model_card
from hf_maskedav.training.video_plotting import mavil_video_reconstruction_frames, save_frame_grid, save_loss_terms
from hf_maskedav.training.video_probe import recall_at_k
from hf_maskedav.training.config_overrides import add_config_overrides_argument, config_for_script
from hf_maskedav.training.config_overrides import parse_config_overrides
from hf_maskedav.training.video_training import (
    add_audiovisual_clip_arguments,
    audiovisual_processor_for,
    build_audiovisual_config,
    has_saved_processor,
)

LOSS_TERMS = ("audio_reconstruction_loss", "video_reconstruction_loss", "inter_contrastive_loss",
              "audio_intra_contrastive_loss", "video_intra_contrastive_loss")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--config_name", default="mavil-tiny",
                       help="mavil-tiny, avmae-tiny, mavil-base, a config folder/JSON or a Hub id")
    model.add_argument("--model_name_or_path", default=None, help="stage 1: start from these weights")
    model.add_argument("--processor_name", default=None, help="MAViL processor to use (default: matches the config)")
    model.add_argument("--stage", type=int, default=1, choices=[1, 2],
                       help="1: reconstruct spectrogram/pixels; 2: predict a frozen teacher's fused features")
    model.add_argument("--teacher", default=None, help="stage 2: the teacher (a stage-1 or stage-2 output folder)")
    model.add_argument("--iterations", type=int, default=1,
                       help="stage 2: chain this many iterations, each student becoming the next teacher")
    model.add_argument("--audio_mask_ratio", type=float, default=None)
    model.add_argument("--video_mask_ratio", type=float, default=None)
    model.add_argument("--inter_contrastive_weight", type=float, default=None)
    model.add_argument("--intra_contrastive_weight", type=float, default=None)
    model.add_argument("--decoder_type", default=None, choices=[None, "separate", "shared", "joint"])
    model.add_argument("--inpainting", default=None, choices=[None, "none", "audio_to_video", "video_to_audio"],
                       help="AV-MAE cross-modal reconstruction (needs --decoder_type joint and no contrastive terms)")
    model.add_argument("--share_modality_encoders", action="store_true", help="AV-MAE shared encoder")
    model.add_argument("--fusion_layers", type=int, default=None, help="fusion (joint) encoder layers")
    add_config_overrides_argument(model)
    add_audiovisual_clip_arguments(model)
    model.add_argument("--attn_implementation", default=None, choices=[None, "eager", "sdpa", "flash_attention_2"])
    model.add_argument("--gradient_checkpointing", action="store_true")

    add_video_data_arguments(parser)
    parser.add_argument("--audio_column", default=None, help="a separate audio column (default: the videos' audio tracks)")
    parser.add_argument("--repeated_sampling", type=int, default=1, help="clips (with their audio) per decoded video")

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="outputs/pretrain_audiovisual")
    train.add_argument("--overwrite_output_dir", action="store_true")
    train.add_argument("--per_device_train_batch_size", type=int, default=16, help="videos per process per step")
    train.add_argument("--per_device_eval_batch_size", type=int, default=32)
    train.add_argument("--learning_rate", type=float, default=1e-3)
    train.add_argument("--min_learning_rate", type=float, default=0.0)
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.95)
    train.add_argument("--max_grad_norm", type=float, default=None)
    train.add_argument("--max_nonfinite_in_a_row", type=int, default=5,
                       help="a NaN/Inf loss skips its optimizer update (counted, logged); stop after this many in a row")
    train.add_argument("--num_train_epochs", type=int, default=16, help="per stage-2 iteration too")
    train.add_argument("--max_train_steps", type=int, default=None, help="optimizer steps (per iteration)")
    add_time_budget_argument(train)
    add_num_threads_argument(train)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--num_warmup_steps", type=int, default=None)
    train.add_argument("--warmup_ratio", type=float, default=0.1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--checkpointing_steps", default=None, help="an integer or 'epoch'")
    train.add_argument("--checkpoints_total_limit", type=int, default=2)
    train.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None,
                       help="a checkpoint folder, or no value / 'latest' (the newest one of the iteration in progress)")
    train.add_argument("--logging_steps", type=int, default=10)
    train.add_argument("--with_tracking", action="store_true")
    train.add_argument("--report_to", default="tensorboard")
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id", default=None)
    train.add_argument("--hub_token", default=None)
    args = parser.parse_args(argv)
    if args.stage == 2 and not args.teacher:
        parser.error("--stage 2 needs --teacher (the stage-1 output folder, or a previous stage-2 student)")
    if args.stage == 1 and (args.teacher or args.iterations != 1):
        parser.error("--teacher and --iterations are stage-2 options (use --stage 2)")
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    if args.stage == 2 and (args.clip_seconds is not None or args.num_frames is not None):
        parser.error("--clip_seconds and --num_frames are stage-1 options (stage 2 keeps the teacher's input geometry)")
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            parser.error(f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}")
        args.checkpointing_steps = int(args.checkpointing_steps)
    return args


def config_overrides(args) -> dict:
    overrides = {
        "audio_mask_ratio": args.audio_mask_ratio, "video_mask_ratio": args.video_mask_ratio,
        "inter_contrastive_weight": args.inter_contrastive_weight, "intra_contrastive_weight": args.intra_contrastive_weight,
        "decoder_type": args.decoder_type, "inpainting": args.inpainting, "fusion_num_hidden_layers": args.fusion_layers,
    }
    if args.share_modality_encoders:
        overrides["share_modality_encoders"] = True
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return {**overrides, **parse_config_overrides(args.config_overrides)}


def build_student(args, iteration: int, teacher_path: str | None, log=print):
    """Stage 1: a fresh (or loaded) MAViL; stage 2: a student initialised from the teacher, predicting its features."""
    if args.stage == 1:
        base = MAViLConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else \
            build_audiovisual_config(args.config_name)
        # the script's options and --config_overrides, --num_frames, --clip_seconds; the processor follows the config
        config = config_for_script(base, None, args.clip_seconds, log, num_frames=args.num_frames, **config_overrides(args))
        if args.model_name_or_path:
            return MAViLForPreTraining.from_pretrained(args.model_name_or_path, config=config,
                                                       attn_implementation=args.attn_implementation)
        return MAViLForPreTraining._from_config(config, attn_implementation=args.attn_implementation)
    previous = MAViLForPreTraining.from_pretrained(teacher_path)
    return MAViLForPreTraining.from_previous_stage(previous, **config_overrides(args))  # frozen copy = the teacher


def audio_visual_batch(batch: dict) -> dict:
    return {"input_values": batch["input_values"], "pixel_values": batch["pixel_values"]}


def train_stage(args, accelerator, model, processor, source, eval_source, output_dir: str, title: str, step_offset: int):
    """One training run (stage 1, or one stage-2 iteration) into ``output_dir``; returns its summary."""
    log = accelerator.print
    start_time = time.time()
    config = model.config
    feature_extractor = processor.feature_extractor
    recipe = video_recipe(processor.video_processor, config.model_type, "pretrain")
    window = AudioWindow(feature_extractor.sampling_rate, clip_samples_for(feature_extractor))
    collator = VideoCollator(None, feature_extractor)
    train_dataset = VideoClipDataset(source, recipe, train=True, seed=args.seed, repeats=args.repeated_sampling,
                                     audio=window, backend=args.decoding_backend)
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset, batch_size=args.per_device_train_batch_size, shuffle=True, drop_last=True, collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        worker_init_fn=ignore_stop_signals_in_worker, generator=torch.Generator().manual_seed(args.seed),
    )
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=args.learning_rate,
                                  betas=(args.adam_beta1, args.adam_beta2))
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if len(train_dataloader) == 0:
        raise SystemExit(f"the training data gives no full batch of {args.per_device_train_batch_size} videos per process")
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_train_epochs = math.ceil(max_train_steps / steps_per_epoch)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(args.warmup_ratio * max_train_steps)
    budget = TimeBudget(args.max_train_minutes)  # the schedule follows max(step / max_steps, elapsed / budget)
    lr_scheduler = cosine_schedule_with_warmup(optimizer, warmup, max_train_steps, args.min_learning_rate / args.learning_rate,
                                               progress=budget.progress)
    accelerator.register_for_checkpointing(lr_scheduler)
    terms = [t for t in LOSS_TERMS if _term_active(config, t)]
    log(f"{title}: {max_train_steps} optimizer steps ({num_train_epochs} epoch(s) of {steps_per_epoch}), "
        f"{args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps} videos per "
        f"step, loss terms {', '.join(terms)}")

    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    nonfinite = NonFiniteLossGuard(args.max_nonfinite_in_a_row, log=log)
    state = TrainingState()
    resume_path = resolve_resume_path(args.resume_from_checkpoint, output_dir)
    if resume_path:
        state = load_checkpoint(accelerator, resume_path)
        nonfinite.load_state_dict(state.extra.get("nonfinite", {}))
        budget.load_state_dict(state.extra.get("time_budget"))
        tracker.load_state_dict(state.bad_samples.get(str(accelerator.process_index), tracker.state_dict()))
        log(f"resumed from {resume_path}: step {state.completed_steps}, epoch {state.epoch}, "
            f"{state.batches_in_epoch} batches into it")
    term_history = state.extra.setdefault("terms", {t: [] for t in terms})
    step_log = StepLog(os.path.join(output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)

    saved_steps = []

    def checkpoint(epoch: int, batches_in_epoch: int):
        if batches_in_epoch >= len(train_dataloader):
            epoch, batches_in_epoch = epoch + 1, 0
        state.epoch, state.batches_in_epoch = epoch, batches_in_epoch
        state.bad_samples = per_process_states(accelerator, tracker.state_dict())
        state.extra["nonfinite"] = nonfinite.state_dict()
        state.extra["time_budget"] = budget.state_dict()
        log(f"saved checkpoint {save_checkpoint(accelerator, output_dir, state, args.checkpoints_total_limit)}")
        saved_steps.append(state.completed_steps)

    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc=title, disable=not accelerator.is_local_main_process
    )
    micro = {t: [] for t in ["loss", *terms]}
    last_batch = None
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
                inputs = audio_visual_batch(batch)
                last_batch = {k: v[:1].detach() for k, v in inputs.items()}
                out = model(**inputs)  # masks (and the second views) are drawn inside
                out.loss = maybe_poison_loss(out.loss, state.completed_steps + 1)  # test aid (a NaN loss), inert by default
                accelerator.backward(out.loss)
                if accelerator.sync_gradients:  # the update's loss over micro-batches and processes: finite -> step
                    try:
                        step_if_finite(accelerator, model, optimizer, [*micro["loss"], out.loss.detach()], nonfinite,
                                       state.completed_steps + 1, args.max_grad_norm)
                    except NonFiniteLossError as error:
                        raise SystemExit(f"stopped: {error}") from error
            micro["loss"].append(out.loss.detach())
            for t in terms:
                micro[t].append(getattr(out, t).detach())
            if not accelerator.sync_gradients:
                continue

            budget.tick(accelerator)  # the loop time the schedule and the budget check see

            lr_scheduler.step()
            state.completed_steps += 1
            values = accelerator.reduce(torch.stack([torch.stack(micro[k]).mean() for k in micro]), reduction="mean").tolist()
            record = dict(zip(micro, values))
            micro = {k: [] for k in micro}
            lr = lr_scheduler.get_last_lr()[0]
            state.loss_history.append([state.completed_steps, record["loss"]])
            for t in terms:
                term_history[t].append([state.completed_steps, record[t]])
            step_log.write(step=state.completed_steps, epoch=epoch, lr=lr, **record)
            if args.with_tracking:
                accelerator.log({f"train/{k}": v for k, v in record.items()} | {"train/lr": lr},
                                step=step_offset + state.completed_steps)
            progress.update(1)
            if state.completed_steps % args.logging_steps == 0 or state.completed_steps == 1:
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
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
        if args.checkpointing_steps == "epoch":
            checkpoint(epoch, batches_in_epoch)
    progress.close()
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    stopper.close()
    train_time = time.time() - start_time

    # ---- held-out loss terms (fixed masks), audio->video retrieval, pictures -------------------------------------
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    eval_terms, retrieval, picture = None, None, last_batch
    if eval_source is not None:
        eval_loader = accelerator.prepare(torch.utils.data.DataLoader(
            VideoClipDataset(eval_source, recipe, train=False, audio=window, backend=args.decoding_backend),
            batch_size=args.per_device_eval_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
        ))
        sums, count, audio_embeds, video_embeds = None, 0, [], []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(1234 + accelerator.process_index)
            for batch in eval_loader:
                tracker.update(batch)
                inputs = audio_visual_batch(batch)
                with torch.no_grad():
                    out = model(**inputs)
                    audio, video = unwrapped.get_retrieval_embeddings(**inputs)
                values = torch.stack([out.loss.detach()] + [getattr(out, t).detach() for t in terms]).float()
                size = inputs["pixel_values"].shape[0]
                gathered = accelerator.gather_for_metrics(values[None].expand(size, -1).contiguous())
                sums = gathered.sum(0) if sums is None else sums + gathered.sum(0)
                count += gathered.shape[0]
                audio, video = accelerator.gather_for_metrics((audio.float(), video.float()))
                audio_embeds.append(audio.cpu())
                video_embeds.append(video.cpu())
                if picture is last_batch:
                    picture = {k: v[:1].detach() for k, v in inputs.items()}
        eval_terms = dict(zip(["loss", *terms], (sums / count).tolist()))
        similarity = torch.cat(audio_embeds) @ torch.cat(video_embeds).T
        retrieval = {f"audio_to_video_R@{k}": v for k, v in recall_at_k(similarity).items()}
        retrieval["chance_R@1"] = 1.0 / similarity.shape[0]
        log(f"held-out ({args.eval_split}): " + ", ".join(f"{k} {v:.4f}" for k, v in eval_terms.items()))
        log(f"held-out audio->video retrieval over {similarity.shape[0]} clips: R@1 {retrieval['audio_to_video_R@1']:.3f}, "
            f"R@5 {retrieval['audio_to_video_R@5']:.3f}, R@10 {retrieval['audio_to_video_R@10']:.3f} "
            f"(chance R@1 {retrieval['chance_R@1']:.4f})")

    bad = tracker.totals(accelerator)
    videos_per_process = {k: v["good"] for k, v in per_process_states(accelerator, tracker.state_dict()).items()}
    accelerator.wait_for_everyone()
    unwrapped.save_pretrained(output_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save,
                              state_dict=accelerator.get_state_dict(model))
    summary = None
    if accelerator.is_main_process:
        processor.save_pretrained(output_dir)
        if state.loss_history:
            save_loss_terms({"total": state.loss_history, **term_history}, os.path.join(output_dir, "loss_curve.png"),
                            title=f"{title} ({source.description})")
        if picture is not None and config.reconstruction_target == "pixels":
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                out = unwrapped(**picture)
            rows = mavil_video_reconstruction_frames(unwrapped, picture["pixel_values"][0].cpu(), out, recipe.mean, recipe.std)
            save_frame_grid(rows, os.path.join(output_dir, "reconstruction.png"),
                            title=f"{title}: video, step {state.completed_steps}, mask ratio {config.video_mask_ratio}")
            images = spectrogram_reconstruction_images(picture["input_values"][0].cpu(), out.audio_logits[0].cpu(),
                                                       out.audio_mask[0].cpu(), config.audio_patch_size,
                                                       config.audio_norm_pix_loss)
            save_spectrogram_reconstruction(images, os.path.join(output_dir, "reconstruction_audio.png"),
                                            title=f"{title}: audio, step {state.completed_steps}, mask ratio {config.audio_mask_ratio}")
        first = state.loss_history[0][1] if state.loss_history else None
        last = sum(v for _, v in state.loss_history[-10:]) / max(1, len(state.loss_history[-10:])) if state.loss_history else None
        summary = {
            "stage": args.stage,
            "world_size": accelerator.num_processes,
            "completed_steps": state.completed_steps,
            "max_train_steps": max_train_steps,
            **budget.summary(),
            "first_loss": first,
            "final_loss_mean_last_10": last,
            "final_terms_mean_last_10": {t: sum(v for _, v in h[-10:]) / max(1, len(h[-10:])) for t, h in term_history.items()},
            "eval_terms": eval_terms,
            "retrieval": retrieval,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "nonfinite_loss_steps_skipped": nonfinite.skipped,
            "nonfinite_loss_steps": nonfinite.skipped_steps,
            "videos_per_process": videos_per_process,
        }
        with open(os.path.join(output_dir, "train_summary.json"), "w") as handle:
            json.dump(summary, handle, indent=1)
        variant = "AV-MAE" if not config.use_cls_token or config.decoder_type != "separate" else "MAViL"
        write_video_model_card(
            output_dir, args.hub_model_id or os.path.basename(os.path.abspath(output_dir)), task="feature-extraction",
            audio_visual=True,
            summary=(f"A {variant} ({config.audio_num_hidden_layers}+{config.video_num_hidden_layers} modality layers, "
                     f"{config.fusion_num_hidden_layers} fusion layer(s), width {config.hidden_size}) pretrained with "
                     f"hf_maskedav: {title}."),
            base_model=args.teacher if args.stage == 2 else args.model_name_or_path,
            datasets=[source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={**({f"held-out {k}": v for k, v in eval_terms.items()} if eval_terms else {}), **(retrieval or {})} or None,
            hyperparameters={"stage": args.stage, "optimizer steps": state.completed_steps,
                             "peak learning rate": args.learning_rate, "weight decay": args.weight_decay,
                             "mask ratios (audio, video)": (config.audio_mask_ratio, config.video_mask_ratio),
                             "contrastive weights (inter, intra)": (config.inter_contrastive_weight,
                                                                    config.intra_contrastive_weight),
                             "decoder": config.decoder_type, "inpainting": config.inpainting,
                             "processes": accelerator.num_processes},
            tags=["mavil", "self-supervised", "masked-autoencoder"],
        )
        log(f"{title}: wall time {format_duration(train_time)}; loss {first:.4f} -> {last:.4f}; saved to {output_dir}"
            if state.loss_history else f"{title}: nothing to train")
        log(VideoBadSampleTracker.report(bad))
    accelerator.wait_for_everyone()
    # release the prepared objects so that the next iteration starts with its own (checkpoints hold one model)
    accelerator.free_memory()
    accelerator._custom_objects.clear()
    return state.completed_steps


def _term_active(config, term: str) -> bool:
    if term.endswith("reconstruction_loss"):
        return True
    if term == "inter_contrastive_loss":
        return config.inter_contrastive_weight > 0
    return config.intra_contrastive_weight > 0


def main(argv=None):
    args = parse_args(argv)
    if not (args.resume_from_checkpoint or args.overwrite_output_dir) and os.path.isdir(args.output_dir) and (
        list_checkpoints(args.output_dir) or os.path.isfile(os.path.join(args.output_dir, "config.json"))
        or os.path.isdir(os.path.join(args.output_dir, "iteration-1"))
    ):
        raise SystemExit(f"{args.output_dir} already holds a run; pass --resume_from_checkpoint, --overwrite_output_dir "
                         "or another --output_dir")
    # Cross-modal inpainting never encodes one modality: those parameters get no gradient, which DDP must be told.
    probe_config = build_audiovisual_config(args.config_name, **config_overrides(args)) if not args.model_name_or_path \
        and args.stage == 1 else None
    unused = (args.inpainting not in (None, "none")) or (probe_config is not None and probe_config.inpainting != "none")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "runs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)] if unused else None,
    )
    log = accelerator.print
    check_world_size(accelerator)  # several launched processes but one in each: stop, say why
    configure_cpu_threads(accelerator, args.num_threads, log)  # on CPU: use the machine
    log(f"world size: {accelerator.num_processes} process(es), device {accelerator.device}, "
        f"mixed precision {accelerator.mixed_precision}, distributed type {accelerator.distributed_type.value}")
    print(f"process {accelerator.process_index} of {accelerator.num_processes} started on {accelerator.device}", flush=True)
    if args.with_tracking:
        accelerator.init_trackers("pretrain_audiovisual", {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))})

    source = open_video_split(args, args.train_split, accelerator, audio_column=args.audio_column)
    eval_source = None
    if args.eval_split != "none" and not args.video_files:
        try:
            eval_source = open_video_split(args, args.eval_split, accelerator, audio_column=args.audio_column, train=False)
        except SPLIT_MISSING_ERRORS as error:
            log(f"no held-out evaluation on split {args.eval_split!r}: {error}")
    log(f"training data: {source.description} (audio: {args.audio_column or 'the files’ audio tracks'})")

    iterations = args.iterations if args.stage == 2 else 1
    teacher, offset = args.teacher, 0
    for iteration in range(1, iterations + 1):
        folder = args.output_dir if iterations == 1 else os.path.join(args.output_dir, f"iteration-{iteration}")
        title = "MAViL stage 1" if args.stage == 1 else f"MAViL stage 2, iteration {iteration} (teacher {teacher})"
        if iterations > 1 and os.path.isfile(os.path.join(folder, "train_summary.json")):
            log(f"{title}: already done in {folder}")
        else:
            set_seed(args.seed + iteration - 1, device_specific=True)  # masks differ per process, reproducible
            model = build_student(args, iteration, teacher, log)
            processor_source = args.processor_name or next(
                (p for p in (teacher, args.model_name_or_path) if has_saved_processor(p)), None)
            processor = audiovisual_processor_for(model.config, args.config_name, processor_source, video_fps=args.video_fps)
            if iteration == 1:
                config = model.config
                log(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M trainable parameters, decoder "
                    f"{config.decoder_type}, inpainting {config.inpainting}, mask ratios {config.audio_mask_ratio}/"
                    f"{config.video_mask_ratio}, contrastive weights {config.inter_contrastive_weight}/"
                    f"{config.intra_contrastive_weight}, target {config.reconstruction_target}")
            os.makedirs(folder, exist_ok=True)
            offset += train_stage(args, accelerator, model, processor, source, eval_source, folder, title, offset)
        teacher = folder
    if iterations > 1 and accelerator.is_main_process:  # the last student is the run's model
        for name in os.listdir(teacher):
            if os.path.isfile(os.path.join(teacher, name)):
                shutil.copy2(os.path.join(teacher, name), os.path.join(args.output_dir, name))
    if accelerator.is_main_process and args.push_to_hub:
        url = push_to_hub(args.output_dir, args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                          token=args.hub_token)
        log(f"pushed to {url}")
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
