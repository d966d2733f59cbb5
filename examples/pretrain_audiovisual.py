#!/usr/bin/env python
"""Pretrain MAViL (or Georgescu et al.'s AV-MAE) on videos with sound, with Accelerate.

With no arguments it runs MAViL stage 1 (masked reconstruction of spectrogram and frames from the fused encoders,
plus inter- and intra-modal contrastive terms) with a tiny model on the built-in audio-visual dataset (moving shapes
whose sound follows the motion, real .mp4 files with an AAC track):

    accelerate launch examples/pretrain_audiovisual.py                                  # -> outputs/pretrain_audiovisual

Stage 2 distils a frozen teacher's fused features (the stage-1 model, then each previous student):

    accelerate launch examples/pretrain_audiovisual.py --stage 2 --teacher outputs/pretrain_audiovisual \
        --output_dir outputs/mavil_stage2 --iterations 2      # iteration-1 (teacher: stage 1), iteration-2 (teacher: 1)

Georgescu et al.'s audiovisual MAE is its own family (``AVMAEConfig``, docs/cavmae_avmae.md "Variants"):
``--config_name avmae-tiny`` (separate encoders and one joint layer, one decoder over both modalities' tokens, raw
targets), and its variants through ``--decoder_type {separate,shared,joint}`` (Scenic's ``decoder_strategy``
separate_decoders / same_decoder / concat_and_decode), ``--share_modality_encoders`` (``encoder_strategy``
same_encoder), ``--fusion_layers`` (``num_fusion_layers``) and ``--use_inpainting`` (each modality reconstructed from
the other's tokens); other fields through ``--config_overrides``. Stage 2 and the contrastive weights are MAViL's.
Every loss term is logged per step (train_log.jsonl, TensorBoard with --with_tracking) and drawn in loss_curve.png.

Checkpointing, resume (exact, mid-epoch), tracking, pictures and the Hub follow pretrain_audio.py. With
``--iterations N`` each iteration trains in ``<output_dir>/iteration-<k>`` (a resumed chain skips finished iterations
and resumes the one in progress); the last one is also copied to ``<output_dir>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import torch
from accelerate.utils import set_seed
from transformers import AutoConfig, AutoModelForPreTraining

import hf_maskedav  # noqa: F401
from hf_maskedav import MAViLForPreTraining
from hf_maskedav.data import clip_samples_for
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
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
    parse_config_overrides,
    per_process_states,
    push_output,
    repo_name,
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
from hf_maskedav.training.clip_length import add_audiovisual_clip_arguments
from hf_maskedav.training.plotting import mavil_video_reconstruction_frames, save_frame_grid, save_loss_terms
from hf_maskedav.training.presets import audiovisual_processor_for, presets_of, processor_source
from hf_maskedav.training.recipes import add_feature_normalization_argument, warn_if_band_limited
from hf_maskedav.training.probe import recall_at_k
from hf_maskedav.training.data_options import (
    SPLIT_MISSING_ERRORS,
    add_decoded_cache_argument,
    add_video_data_arguments,
    open_video_split,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--config_name", default="mavil-tiny",
                       help=f"a preset ({', '.join(presets_of('MAViLConfig'))}), a config folder/JSON or a Hub id")
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
    model.add_argument("--decoder_type", default=None, choices=[None, "separate", "shared", "joint"],
                       help="AV-MAE decoder: separate_decoders, same_decoder or concat_and_decode")
    model.add_argument("--use_inpainting", action="store_true",
                       help="AV-MAE: reconstruct each modality from the other's kept tokens (Scenic's use_inpainting)")
    model.add_argument("--inpainting", default=None, choices=[None, "none", "audio_to_video", "video_to_audio"],
                       help="the former one-way switch: an error naming --use_inpainting (AV-MAE's is symmetric)")
    model.add_argument("--share_modality_encoders", action="store_true", help="AV-MAE: one encoder for both (same_encoder)")
    model.add_argument("--fusion_layers", type=int, default=None,
                       help="fusion (joint) encoder layers (MAViL fusion_num_hidden_layers, AV-MAE num_fusion_layers)")
    add_config_overrides_argument(model)
    add_audiovisual_clip_arguments(model)
    add_feature_normalization_argument(model)  # MAViL's fbank: 'dataset' (official) or 'per_clip'
    add_model_runtime_arguments(model)  # --attn_implementation, --gradient_checkpointing

    data = add_video_data_arguments(parser)
    add_decoded_cache_argument(data, "decoded audio tracks (the frames are decoded per clip)")
    parser.add_argument("--audio_column", default=None, help="a separate audio column (default: the videos' audio tracks)")
    parser.add_argument("--repeated_sampling", type=int, default=1, help="clips (with their audio) per decoded video")

    add_training_arguments(
        parser, output_dir="outputs/pretrain_audiovisual", learning_rate=1e-3, num_train_epochs=16, train_batch_size=16,
        eval_batch_size=32, finetune=False,
        help={"per_device_train_batch_size": "videos per process per step",
              "num_train_epochs": "per stage-2 iteration too"},
    )
    args = parser.parse_args(argv)
    if args.stage == 2 and not args.teacher:
        parser.error("--stage 2 needs --teacher (the stage-1 output folder, or a previous stage-2 student)")
    if args.stage == 1 and (args.teacher or args.iterations != 1):
        parser.error("--teacher and --iterations are stage-2 options (use --stage 2)")
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    if args.stage == 2 and (args.clip_seconds is not None or args.num_frames is not None):
        parser.error("--clip_seconds and --num_frames are stage-1 options (stage 2 keeps the teacher's input geometry)")
    if args.stage == 2 and (args.feature_normalization is not None or args.top_db is not None):
        parser.error("--feature_normalization and --top_db are stage-1 options (stage 2 keeps the teacher's processor)")
    check_training_arguments(parser, args)
    return args


AVMAE_DECODERS = {"separate": "separate_decoders", "shared": "same_decoder", "joint": "concat_and_decode"}


def config_overrides(args, model_type: str) -> dict:
    """The script's model options as config fields of the family (MAViL or AV-MAE), then --config_overrides; an option
    the family does not have is an error naming it."""
    avmae = model_type == "maskedav_avmae"
    overrides = {"audio_mask_ratio": args.audio_mask_ratio, "video_mask_ratio": args.video_mask_ratio}
    mavil_only = {"--inter_contrastive_weight": args.inter_contrastive_weight,
                  "--intra_contrastive_weight": args.intra_contrastive_weight}
    avmae_only = {"--decoder_type": args.decoder_type, "--use_inpainting": args.use_inpainting or None,
                  "--share_modality_encoders": args.share_modality_encoders or None}
    if args.inpainting not in (None, "none"):
        raise SystemExit(f"--inpainting {args.inpainting}: AV-MAE's inpainting (Scenic's use_inpainting) reconstructs "
                         "each modality from the other's kept tokens, both ways: pass --use_inpainting with an AV-MAE "
                         "config (--config_name avmae-tiny)")
    wrong = [flag for flag, value in (mavil_only if avmae else avmae_only).items() if value is not None]
    if wrong:
        why = "the contrastive terms are MAViL's" if avmae else "an AV-MAE variant needs an AV-MAE config, e.g. " \
            "--config_name avmae-tiny"
        raise SystemExit(f"{', '.join(wrong)}: not an option of {'AV-MAE' if avmae else 'MAViL'} ({why})")
    if avmae:
        overrides.update(decoder_strategy=AVMAE_DECODERS.get(args.decoder_type), num_fusion_layers=args.fusion_layers,
                         use_inpainting=True if args.use_inpainting else None,
                         encoder_strategy="same_encoder" if args.share_modality_encoders else None)
    else:
        overrides.update(inter_contrastive_weight=args.inter_contrastive_weight,
                         intra_contrastive_weight=args.intra_contrastive_weight,
                         fusion_num_hidden_layers=args.fusion_layers)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return {**overrides, **parse_config_overrides(args.config_overrides)}


def build_student(args, iteration: int, teacher_path: str | None, log=print):
    """Stage 1: a fresh (or loaded) MAViL or AV-MAE; stage 2 (MAViL): a student initialised from the teacher,
    predicting its features."""
    if args.stage == 1:
        base = AutoConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else \
            build_config(args.config_name)
        if base.model_type not in ("maskedav_mavil", "maskedav_avmae"):
            raise SystemExit(f"{args.model_name_or_path or args.config_name}: model type {base.model_type!r} is not an "
                             "audio-visual pretraining family (MAViL, AV-MAE)")
        # the script's options and --config_overrides, --num_frames, --clip_seconds; the processor follows the config
        config = config_for_script(base, None, args.clip_seconds, log, num_frames=args.num_frames,
                                   **config_overrides(args, base.model_type))
        if args.model_name_or_path:
            return AutoModelForPreTraining.from_pretrained(args.model_name_or_path, config=config,
                                                           attn_implementation=args.attn_implementation)
        return AutoModelForPreTraining.from_config(config, attn_implementation=args.attn_implementation)
    if AutoConfig.from_pretrained(teacher_path).model_type != "maskedav_mavil":
        raise SystemExit(f"--stage 2 is MAViL's (a frozen teacher's fused features); {teacher_path} is not a MAViL model")
    previous = MAViLForPreTraining.from_pretrained(teacher_path)
    # a MAViLForStage2PreTraining whose teacher is a frozen copy of previous
    return MAViLForPreTraining.from_previous_stage(previous, **config_overrides(args, "maskedav_mavil"))


def describe(config) -> tuple[str, str, dict]:
    """``(family name, architecture text, hyperparameters)`` of a MAViL or AV-MAE config, for the card and the log."""
    hyperparameters = {"mask ratios (audio, video)": (config.audio_mask_ratio, config.video_mask_ratio)}
    if config.model_type == "maskedav_avmae":
        hyperparameters.update({"encoder": f"{config.encoder_strategy}, {config.num_fusion_layers} fusion layer(s)",
                                "decoder": config.decoder_strategy, "inpainting": config.use_inpainting,
                                "modality tokens": config.use_modality_tokens})
        return "AV-MAE", f"{config.num_hidden_layers} layers ({config.encoder_strategy}), width {config.hidden_size}", \
            hyperparameters
    hyperparameters["contrastive weights (inter, intra)"] = (config.inter_contrastive_weight,
                                                             config.intra_contrastive_weight)
    return "MAViL", (f"{config.audio_num_hidden_layers}+{config.video_num_hidden_layers} modality layers, "
                     f"{config.fusion_num_hidden_layers} fusion layer(s), width {config.hidden_size}"), hyperparameters


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
                                     audio=window, backend=args.decoding_backend, decoded_cache_mb=args.decoded_cache_mb)
    if args.stage == 1 and accelerator.is_main_process:
        warn_if_band_limited(feature_extractor, train_dataset, log)  # MAViL's fbank, 8-kHz audio and no --top_db
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
    # optimizer steps once per update; the LR schedule stepped by hand once per update, saved in checkpoints
    steps_per_epoch, max_train_steps, num_train_epochs, warmup, budget, lr_scheduler = training_schedule(
        accelerator, args, optimizer, train_dataloader
    )
    terms = list(accelerator.unwrap_model(model).loss_terms)  # the output fields whose weighted sum is the loss
    log(f"{title}: {max_train_steps} optimizer steps ({num_train_epochs} epoch(s) of {steps_per_epoch}), "
        f"{args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps} videos per "
        f"step, loss terms {', '.join(terms)}")

    # ---- resume: model, optimizer, schedule, RNGs, data position and fault counters ------------------------------
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    run = TrainingRun(accelerator, args, max_train_steps, budget=budget, tracker=tracker, output_dir=output_dir,
                      pretrained=[accelerator.unwrap_model(model).config, processor])
    state = run.resume()
    term_history = state.extra.setdefault("terms", {t: [] for t in terms})
    step_log = StepLog(os.path.join(output_dir, "train_log.jsonl"), enabled=accelerator.is_main_process)

    progress = LoopProgress(
        budget, max_train_steps, state.completed_steps, desc=title, disable=not accelerator.is_local_main_process
    )
    micro = {t: [] for t in ["loss", *terms]}
    last_batch = None
    # The loop body is written out in each script on purpose (the *_no_trainer.py style: it reads top to bottom and
    # differs per task); what must be right in all of them (resume, checkpoints, stopping) is TrainingRun's.
    # Epochs left from a resumed position; SIGTERM/SIGUSR1 (pre-emption) end the loop at the next optimizer-step
    # boundary with a checkpoint; the time budget starts here.
    for epoch in run.epochs(num_train_epochs):
        model.train()
        for batch in run.batches(train_dataloader, epoch):
            tracker.update(batch)
            with accelerator.accumulate(model):
                inputs = audio_visual_batch(batch)
                last_batch = {k: v[:1].detach() for k, v in inputs.items()}
                out = model(**inputs)  # masks (and the second views) are drawn inside
                out.loss = run.test_aids(out.loss)  # inert unless a test sets HF_MASKEDAV_*
                accelerator.backward(out.loss)
                micro["loss"].append(out.loss.detach())
                for t in terms:
                    micro[t].append(getattr(out, t).detach())
                if accelerator.sync_gradients:  # the update's loss over micro-batches and processes: finite -> step
                    run.optimizer_step(model, optimizer, micro["loss"], args.max_grad_norm)
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
            if run.step_done():  # checkpoint every --checkpointing_steps; a stop signal, the step or time budget
                break
        if run.stopped:  # the checkpoint of this step, then exit 0
            progress.close()
            raise SystemExit(run.wind_down())
        run.epoch_done()  # --checkpointing_steps epoch
    progress.close()
    if budget.stopped:
        log(budget.describe(state.completed_steps, max_train_steps))
    run.close()
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
    # waits for every process; beside the checkpoints and logs, each file renamed into place whole (a crash mid-save
    # truncates nothing)
    save_model_and_processors(accelerator, model, output_dir, [processor], beside_other_files=True)
    summary = None
    if accelerator.is_main_process:
        if state.loss_history:
            save_loss_terms({"total": state.loss_history, **term_history}, os.path.join(output_dir, "loss_curve.png"),
                            title=f"{title} ({source.description})")
        # pictures of the pixel targets (not of a teacher's features, nor of an inpainting run's decoder-side masks)
        pixel_targets = getattr(config, "reconstruction_target", "pixels") == "pixels"
        norm_pix_loss = getattr(config, "norm_pix_loss", None)  # AV-MAE: one flag; MAViL: one per modality
        if picture is not None and pixel_targets and not getattr(config, "use_inpainting", False):
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                out = unwrapped(**picture)
            rows = mavil_video_reconstruction_frames(unwrapped, picture["pixel_values"][0].cpu(), out, recipe.mean, recipe.std,
                                                     norm_pix_loss=norm_pix_loss)
            save_frame_grid(rows, os.path.join(output_dir, "reconstruction.png"),
                            title=f"{title}: video, step {state.completed_steps}, mask ratio {config.video_mask_ratio}")
            images = spectrogram_reconstruction_images(picture["input_values"][0].cpu(), out.audio_logits[0].cpu(),
                                                       out.audio_mask[0].cpu(), config.audio_patch_size,
                                                       getattr(config, "audio_norm_pix_loss", norm_pix_loss))
            save_spectrogram_reconstruction(images, os.path.join(output_dir, "reconstruction_audio.png"),
                                            title=f"{title}: audio, step {state.completed_steps}, mask ratio {config.audio_mask_ratio}")
        first, last = run.first_and_last_loss()  # step 1, mean of the last 10 steps
        summary = {
            "stage": args.stage,
            "first_loss": first,
            "final_loss_mean_last_10": last,
            "final_terms_mean_last_10": {t: sum(v for _, v in h[-10:]) / max(1, len(h[-10:])) for t, h in term_history.items()},
            "eval_terms": eval_terms,
            "retrieval": retrieval,
            "wall_time_seconds": round(train_time, 1),
            "bad_samples": bad,
            "videos_per_process": videos_per_process,
        }
        run.write_summary(summary)  # + world size, steps, time budget, non-finite counts
        variant, architecture, variant_hyperparameters = describe(config)
        write_model_card(
            output_dir, repo_name(args, output_dir), task="feature-extraction",
            modality="audio-visual",
            summary=f"A {variant} ({architecture}) pretrained with hf_maskedav: {title}.",
            base_model=args.teacher if args.stage == 2 else args.model_name_or_path,
            datasets=[source.description if args.dataset_name == "demo" else args.dataset_name],
            metrics={**({f"held-out {k}": v for k, v in eval_terms.items()} if eval_terms else {}), **(retrieval or {})} or None,
            hyperparameters={"stage": args.stage, "optimizer steps": state.completed_steps,
                             "peak learning rate": args.learning_rate, "weight decay": args.weight_decay,
                             **variant_hyperparameters, "processes": accelerator.num_processes},
            tags=[variant.lower().replace("-", ""), "self-supervised", "masked-autoencoder"],
        )
        log(f"{title}: wall time {format_duration(train_time)}; loss {first:.4f} -> {last:.4f}; saved to {output_dir}"
            if state.loss_history else f"{title}: nothing to train")
        log(VideoBadSampleTracker.report(bad))
    accelerator.wait_for_everyone()
    # release the prepared objects so that the next iteration starts with its own (checkpoints hold one model)
    accelerator.free_memory()
    accelerator._custom_objects.clear()
    return state.completed_steps


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args, "iteration-1")  # a folder holding another run needs --resume_from_checkpoint or --overwrite_output_dir
    # seeded per-epoch shuffling (exact resume), world-size check, CPU threads, a fresh run's folder cleared
    accelerator = make_accelerator(args)  # every parameter gets a gradient in both families: plain DDP
    log = accelerator.print
    if args.with_tracking:
        accelerator.init_trackers("pretrain_audiovisual", tracker_config(args))

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
        title = "stage 1" if args.stage == 1 else f"MAViL stage 2, iteration {iteration} (teacher {teacher})"
        if iterations > 1 and os.path.isfile(os.path.join(folder, "train_summary.json")):
            log(f"{title}: already done in {folder}")
        else:
            set_seed(args.seed + iteration - 1, device_specific=True)  # masks differ per process, reproducible
            model = build_student(args, iteration, teacher, log)
            variant, architecture, variant_hyperparameters = describe(model.config)
            if args.stage == 1:
                title = "MAViL stage 1" if variant == "MAViL" else "AV-MAE pretraining"
            source_folder = processor_source(args.processor_name, teacher, args.model_name_or_path)
            processor = audiovisual_processor_for(model.config, args.config_name, source_folder, video_fps=args.video_fps,
                                                  feature_normalization=args.feature_normalization, top_db=args.top_db)
            if iteration == 1:
                log(f"model: {variant} ({architecture}), {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
                    f"trainable parameters; " + ", ".join(f"{k} {v}" for k, v in variant_hyperparameters.items()))
            os.makedirs(folder, exist_ok=True)
            offset += train_stage(args, accelerator, model, processor, source, eval_source, folder, title, offset)
        teacher = folder
    if iterations > 1 and accelerator.is_main_process:  # the last student is the run's model
        for name in os.listdir(teacher):
            if os.path.isfile(os.path.join(teacher, name)):
                shutil.copy2(os.path.join(teacher, name), os.path.join(args.output_dir, name))
    if accelerator.is_main_process:
        push_output(args, log)  # --push_to_hub
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
