#!/usr/bin/env python
"""Linear probe of a frozen video or audio-visual encoder (VideoMAE, MAE-ST, MaskFeat, MAViL / AV-MAE).

The video counterpart of linear_probe.py, with the same probe (standardised features, L2-regularised logistic
regression by full-batch L-BFGS, the L2 strength chosen on 20% of the training split): the encoder is frozen, each
video gives one clip (the evaluation clip of the family's recipe) and one feature vector (the family's registered
feature function, hf_maskedav.training.probe), computed on every process and gathered.

Pretrained vs random initialisation, on the built-in moving-shapes data:

    accelerate launch examples/pretrain_video.py                                   # -> outputs/pretrain_videomae
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_videomae
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_videomae --random_init

``--readout attentive`` probes the tokens instead of their mean (a learned query attending over them, then a linear
layer; see linear_probe.py). MAViL encoders are probed on ``--modality audio_visual`` (default), ``audio`` or
``video``:

    accelerate launch examples/pretrain_audiovisual.py                             # -> outputs/pretrain_audiovisual
    accelerate launch examples/linear_probe_video.py --model_name_or_path outputs/pretrain_audiovisual
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import hf_maskedav  # noqa: F401
from hf_maskedav.data import clip_samples_for
from hf_maskedav.data.video import AudioWindow, VideoBadSampleTracker, VideoClipDataset, VideoCollator
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.training.arguments import add_encoder_arguments, check_encoder_arguments, make_eval_accelerator
from hf_maskedav.training.presets import audiovisual_processor_for, processor_source, video_processor_for
from hf_maskedav.training.probe import (
    add_readout_arguments,
    extract_features,
    load_frozen_encoder,
    resolve_feature_function,
    run_linear_probe,
)
from hf_maskedav.training.data_options import add_video_data_arguments, open_video_split

AUDIO_VISUAL = ("maskedav_mavil", "maskedav_avmae")  # an audio-visual processor; features per --modality


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_encoder_arguments(  # --model_name_or_path, --config_name, --random_init, --seed, --output_dir...
        parser, "videomae-tiny", batch_size=32,
        model_help="the encoder (a pretraining or fine-tuning output, or a Hub id)",
        config_help="architecture for --random_init without a model (a video or audio-visual preset, or a config)",
    )
    parser.add_argument("--modality", default="audio_visual", choices=["audio_visual", "audio", "video"],
                        help="MAViL / AV-MAE only: which inputs the features come from")
    parser.add_argument("--feature_fn", default=None, help="'package.module:function' overriding the registered one")
    add_video_data_arguments(parser, labels=True, eval_split="test")
    add_readout_arguments(parser, linear_weight_decays=(1e-4, 1e-3, 1e-2, 1e-1, 1.0))
    args = parser.parse_args(argv)
    check_encoder_arguments(parser, args)
    return args


def load_encoder(args, log=print):
    """The frozen encoder and its processor (a video processor, or a MAViLProcessor)."""
    model = load_frozen_encoder(args, log=log)
    config = model.config
    saved = processor_source(None, args.model_name_or_path)
    if config.model_type in AUDIO_VISUAL:
        processor = audiovisual_processor_for(config, args.config_name, saved)
    else:
        processor = video_processor_for(config, args.config_name, saved)
    return model, processor


def extract(accelerator, model, feature_fn, dataset, collator, args, tracker, desc, modality):
    """Features and targets of a whole split, gathered on every process."""
    loader = accelerator.prepare(torch.utils.data.DataLoader(
        dataset, batch_size=args.per_device_batch_size, collate_fn=collator, num_workers=args.dataloader_num_workers,
    ))
    keys = {"video": ["pixel_values"], "audio": ["input_values"], "audio_visual": ["pixel_values", "input_values"]}
    inputs_of = lambda batch: {key: batch[key] for key in keys[modality]}  # noqa: E731
    return extract_features(accelerator, model, feature_fn, loader, tracker, inputs_of, desc)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    accelerator = make_eval_accelerator(args)  # CPU threads, world-size check
    log = accelerator.print
    model, processor = load_encoder(args, log)
    model_type = model.config.model_type
    feature_fn = resolve_feature_function(model_type, args.feature_fn, args.readout)
    model = accelerator.prepare_model(model, evaluation_mode=True)
    audio_visual = model_type in AUDIO_VISUAL
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
        # standardised features, L2 strength chosen on 20% of the training split; probe_results.json in --output_dir
        run_linear_probe(train_x, train_y, eval_x, eval_y, labels, args, start, bad, unit="videos", log=log,
                         model_type=model_type, modality=modality)
        log(VideoBadSampleTracker.report(bad))
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
