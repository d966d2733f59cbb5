#!/usr/bin/env python
"""Linear probe of a frozen video or audio-visual encoder (VideoMAE, MAE-ST, MaskFeat, MAViL / AV-MAE).

The video counterpart of linear_probe.py, with the same probe (standardised features, L2-regularised logistic
regression by full-batch L-BFGS, the L2 strength chosen on 20% of the training split): the encoder is frozen, each
video gives one clip (the evaluation clip of the family's recipe) and one feature vector (the family's registered
feature function, hf_maskedav.training.video_probe), computed on every process and gathered.

Pretrained vs random initialisation, on the built-in moving-shapes data:

    accelerate launch examples/pretrain_video.py                                   # -> outputs/pretrain_videomae
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_videomae
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_videomae --random_init

MAViL encoders are probed on ``--modality audio_visual`` (default), ``audio`` or ``video``:

    accelerate launch examples/pretrain_audiovisual.py                             # -> outputs/pretrain_audiovisual
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_audiovisual
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel

import hf_maskedav  # noqa: F401
import hf_maskedav.training.video_probe  # noqa: F401  (registers the video feature functions)
from hf_maskedav.training.threads import add_num_threads_argument, configure_cpu_threads
from hf_maskedav.data import clip_samples_for
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.training import check_world_size, apply_linear_probe, fit_linear_probe, format_duration, resolve_feature_function
from hf_maskedav.training.video_cli import add_video_data_arguments, open_video_split
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.config_overrides import add_config_overrides_argument, config_for_script
from hf_maskedav.training.video_training import (
    audiovisual_processor_for,
    build_audiovisual_config,
    build_video_config,
    has_saved_processor,
    video_processor_for,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_name_or_path", default=None, help="the encoder (a pretraining or fine-tuning output, or a Hub id)")
    parser.add_argument("--config_name", default="videomae-tiny",
                        help="architecture for --random_init without a model (a video or audio-visual preset, or a config)")
    parser.add_argument("--random_init", action="store_true",
                        help="same architecture (and processor) with randomly initialised weights: the baseline")
    parser.add_argument("--modality", default="audio_visual", choices=["audio_visual", "audio", "video"],
                        help="MAViL only: which inputs the features come from")
    parser.add_argument("--feature_fn", default=None, help="'package.module:function' overriding the registered one")
    add_config_overrides_argument(parser)
    add_video_data_arguments(parser, labels=True, eval_split="test")
    parser.add_argument("--per_device_batch_size", type=int, default=32)
    parser.add_argument("--weight_decays", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation and of the validation split")
    parser.add_argument("--output_dir", default=None, help="where to write probe_results.json (optional)")
    add_num_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.model_name_or_path is None and not args.random_init:
        parser.error("give --model_name_or_path (or --random_init for a random encoder of --config_name)")
    return args


def load_encoder(args, log=print):
    """The frozen encoder and its processor (a video processor, or a MAViLProcessor)."""
    if args.model_name_or_path:
        config = AutoConfig.from_pretrained(args.model_name_or_path)
    elif args.config_name.startswith(("mavil", "avmae")):
        config = build_audiovisual_config(args.config_name)
    else:
        config = build_video_config(args.config_name)
    config = config_for_script(config, args.config_overrides)
    if args.random_init:
        set_seed(args.seed)
        model = AutoModel.from_config(config)
    else:
        model = load_pretrained_quietly(AutoModel, args.model_name_or_path, config=config, log=log)
    saved = args.model_name_or_path if has_saved_processor(args.model_name_or_path) else None
    if config.model_type == "maskedav_mavil":
        processor = audiovisual_processor_for(config, args.config_name, saved)
    else:
        processor = video_processor_for(config, args.config_name, saved)
    return model.eval().requires_grad_(False), processor


def extract(accelerator, model, feature_fn, dataset, collator, args, tracker, desc, modality):
    """Features and targets of a whole split, gathered on every process."""
    loader = accelerator.prepare(torch.utils.data.DataLoader(
        dataset, batch_size=args.per_device_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
    ))
    features, targets = [], []
    for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process):
        tracker.update(batch)
        inputs = {}
        if modality in ("video", "audio_visual"):
            inputs["pixel_values"] = batch["pixel_values"]
        if modality in ("audio", "audio_visual"):
            inputs["input_values"] = batch["input_values"]
        with torch.no_grad():
            feats = feature_fn(model, inputs)
        feats, labels = accelerator.gather_for_metrics((feats.float(), batch["labels"]))
        features.append(feats.cpu())
        targets.append(labels.cpu())
    return torch.cat(features), torch.cat(targets)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    accelerator = Accelerator()
    log = accelerator.print
    configure_cpu_threads(accelerator, args.num_threads, log)  # on CPU: use the machine
    check_world_size(accelerator)  # several launched processes but one in each: stop, say why
    model, processor = load_encoder(args, log)
    model_type = model.config.model_type
    feature_fn = resolve_feature_function(model_type, args.feature_fn)
    model = accelerator.prepare_model(model, evaluation_mode=True)
    audio_visual = model_type == "maskedav_mavil"
    modality = args.modality if audio_visual else "video"

    video_processor = processor.video_processor if audio_visual else processor
    recipe = video_recipe(video_processor, model_type, "finetune")
    window, feature_extractor = None, None
    if modality in ("audio", "audio_visual"):
        feature_extractor = processor.feature_extractor
        window = AudioWindow(feature_extractor.sampling_rate, clip_samples_for(feature_extractor))
    train_source = open_video_split(args, args.train_split, accelerator, args.label_column)
    eval_source = open_video_split(args, args.eval_split, accelerator, args.label_column, train=False)
    eval_source.labels = labels = train_source.labels
    if labels is None:
        raise SystemExit("the linear probe needs labels: pass --label_column")
    collator = VideoCollator(labels, feature_extractor)
    tracker = VideoBadSampleTracker(max_bad_fraction=args.max_bad_fraction)
    what = "random-init " if args.random_init else ""
    log(f"linear probe of a frozen {what}{model_type} encoder ({args.model_name_or_path or args.config_name}, "
        f"{modality} features) on {train_source.description} -> {eval_source.description}")
    datasets_ = [VideoClipDataset(s, recipe, train=False, audio=window, backend=args.decoding_backend)
                 for s in (train_source, eval_source)]
    train_x, train_y = extract(accelerator, model, feature_fn, datasets_[0], collator, args, tracker, "train features", modality)
    eval_x, eval_y = extract(accelerator, model, feature_fn, datasets_[1], collator, args, tracker, "eval features", modality)
    bad = tracker.totals(accelerator)

    if accelerator.is_main_process:
        probe = fit_linear_probe(train_x, train_y, labels.multi_label, labels.num_labels, tuple(args.weight_decays),
                                 seed=args.seed)
        metric_name = "mAP" if labels.multi_label else "accuracy"
        train_score = apply_linear_probe(probe, train_x, train_y, labels.multi_label)
        eval_score = apply_linear_probe(probe, eval_x, eval_y, labels.multi_label)
        results = {
            "model": args.model_name_or_path or args.config_name,
            "model_type": model_type,
            "modality": modality,
            "random_init": args.random_init,
            "metric": metric_name,
            f"train_{metric_name}": train_score,
            f"eval_{metric_name}": eval_score,
            "feature_dim": int(train_x.shape[1]),
            "num_train": int(train_x.shape[0]),
            "num_eval": int(eval_x.shape[0]),
            "weight_decay": probe["weight_decay"],
            "validation_scores": {str(k): v for k, v in probe["validation_scores"].items()},
            "wall_time_seconds": round(time.time() - start, 1),
            "bad_samples": bad,
        }
        log(f"linear probe {metric_name}: eval {eval_score:.4f} (train {train_score:.4f}; L2 {probe['weight_decay']}; "
            f"{train_x.shape[0]} train / {eval_x.shape[0]} eval videos, {train_x.shape[1]}-d features) "
            f"in {format_duration(time.time() - start)}")
        log(VideoBadSampleTracker.report(bad))
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, "probe_results.json"), "w") as handle:
                json.dump(results, handle, indent=1)
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
