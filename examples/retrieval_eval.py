#!/usr/bin/env python
"""Audio->video (and video->audio) retrieval with a MAViL / AV-MAE encoder: Recall@1/5/10.

Every clip of the evaluation split is encoded once per modality (the evaluation clip of the video recipe and the
audio under it), each modality on its own encoder (no fusion, which would mix the candidates); embeddings are
mean-pooled patch tokens, through the contrastive projections when the model has them, l2-normalised. Each audio
clip ranks all videos by cosine similarity; R@k is the fraction whose own video is among the first k. Chance R@k is
k / N.

    accelerate launch examples/pretrain_audiovisual.py                    # MAViL stage 1 -> outputs/pretrain_audiovisual
    accelerate launch examples/retrieval_eval.py --model_name_or_path outputs/pretrain_audiovisual
    accelerate launch examples/retrieval_eval.py --model_name_or_path outputs/pretrain_audiovisual --random_init
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from tqdm.auto import tqdm

import hf_maskedav  # noqa: F401
from hf_maskedav import MAViLForPreTraining, MAViLModel
from hf_maskedav.data import clip_samples_for
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.training import build_config, format_duration
from hf_maskedav.training.arguments import add_encoder_arguments, check_encoder_arguments, make_eval_accelerator
from hf_maskedav.training.presets import audiovisual_processor_for, processor_source
from hf_maskedav.training.probe import load_frozen_encoder, recall_at_k
from hf_maskedav.training.data_options import add_video_data_arguments, open_video_split


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_encoder_arguments(  # --model_name_or_path, --config_name, --random_init, --seed, --output_dir...
        parser, "mavil-tiny", batch_size=32, model_help="a MAViL model (pretraining, fine-tuning or encoder)",
    )
    add_video_data_arguments(parser, eval_split="test")
    parser.add_argument("--audio_column", default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10])
    args = parser.parse_args(argv)
    check_encoder_arguments(parser, args)
    return args


def load_model(args):
    """A model with ``get_retrieval_embeddings``: the pretraining model (keeps its contrastive projections) when the
    folder holds one, else the bare encoders."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else \
        build_config(args.config_name)
    if config.model_type != "maskedav_mavil":
        raise SystemExit(f"retrieval needs an audio-visual (MAViL) model, got model type {config.model_type!r}")
    # a pretraining folder (stage 1 or 2) keeps its contrastive projections; MAViLForPreTraining loads both stages
    pretraining = any(name.endswith("PreTraining") for name in (config.architectures or []))
    model = load_frozen_encoder(args, MAViLForPreTraining if pretraining else MAViLModel)
    saved = processor_source(None, args.model_name_or_path)
    return model, audiovisual_processor_for(model.config, args.config_name, saved)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    accelerator = make_eval_accelerator(args)  # CPU threads, world-size check
    log = accelerator.print
    model, processor = load_model(args)
    model = accelerator.prepare_model(model, evaluation_mode=True)
    unwrapped = accelerator.unwrap_model(model)
    feature_extractor = processor.feature_extractor
    recipe = video_recipe(processor.video_processor, "maskedav_mavil", "finetune")
    source = open_video_split(args, args.eval_split, accelerator, audio_column=args.audio_column,
                              train=args.eval_split == args.train_split)
    loader = accelerator.prepare(torch.utils.data.DataLoader(
        VideoClipDataset(source, recipe, train=False, backend=args.decoding_backend,
                         audio=AudioWindow(feature_extractor.sampling_rate, clip_samples_for(feature_extractor))),
        batch_size=args.per_device_batch_size, collate_fn=VideoCollator(None, feature_extractor),
        num_workers=args.dataloader_num_workers,
    ))
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    audio_embeds, video_embeds = [], []
    for batch in tqdm(loader, desc="embeddings", disable=not accelerator.is_local_main_process):
        tracker.update(batch)
        with torch.no_grad():
            audio, video = unwrapped.get_retrieval_embeddings(batch["input_values"], batch["pixel_values"])
        audio, video = accelerator.gather_for_metrics((audio.float(), video.float()))
        audio_embeds.append(audio.cpu())
        video_embeds.append(video.cpu())
    bad = tracker.totals(accelerator)
    if accelerator.is_main_process:
        audio, video = torch.cat(audio_embeds), torch.cat(video_embeds)
        similarity = audio @ video.T
        count = similarity.shape[0]
        a2v, v2a = recall_at_k(similarity, args.ks), recall_at_k(similarity.T, args.ks)
        results = {
            "model": args.model_name_or_path or args.config_name,
            "random_init": args.random_init,
            "data": source.description,
            "num_clips": count,
            **{f"audio_to_video_R@{k}": v for k, v in a2v.items()},
            **{f"video_to_audio_R@{k}": v for k, v in v2a.items()},
            **{f"chance_R@{k}": min(1.0, k / count) for k in args.ks},
            "wall_time_seconds": round(time.time() - start, 1),
            "bad_samples": bad,
        }
        log(f"audio->video retrieval over {count} clips: " + ", ".join(f"R@{k} {v:.3f}" for k, v in a2v.items())
            + f" (chance R@1 {1 / count:.4f}); video->audio: " + ", ".join(f"R@{k} {v:.3f}" for k, v in v2a.items())
            + f"; {format_duration(time.time() - start)}")
        log(VideoBadSampleTracker.report(bad))
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, "retrieval_results.json"), "w") as handle:
                json.dump(results, handle, indent=1)
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
