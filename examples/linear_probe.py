#!/usr/bin/env python
"""Linear probe: how much does a frozen encoder's clip embedding say about the labels?

The encoder is frozen; its features (one vector per clip, from the model family's registered feature function) are
computed once for the training and evaluation splits (every process takes part, results gathered), then a linear
classifier is fitted on the main process: standardised features, L2-regularised logistic regression by full-batch
L-BFGS, the L2 strength chosen on 20% of the training split, refitted on all of it. The score is accuracy
(single-label) or mAP (multi-label) on the evaluation split.

Pretrained vs random initialisation, on the built-in demo data:

    accelerate launch examples/pretrain_audio.py                                   # -> outputs/pretrain_audio
    accelerate launch examples/linear_probe.py --model_name_or_path outputs/pretrain_audio
    accelerate launch examples/linear_probe.py --model_name_or_path outputs/pretrain_audio --random_init

``--readout attentive`` replaces the mean and the logistic regression by an attentive probe: one learned query
attends over the final tokens (the family's registered token function), then a linear layer, trained with AdamW
(weight decay chosen the same way); the encoder stays frozen. It reads evidence that sits in a few tokens.

Other model families plug in through ``hf_maskedav.training.probe.register_feature_function`` (keyed by the config's
``model_type``; ``register_token_function`` for the attentive probe) or ``--feature_fn package.module:function``; the
function receives the model and its keyword inputs (and returns ``[N, L, D]`` tokens with ``--readout attentive``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav import AudioMAEFeatureExtractor
from hf_maskedav.data import (
    AudioClipDataset,
    AudioCollator,
    BadSampleTracker,
    clip_samples_for,
    featurize,
    load_audio_source,
)
from hf_maskedav.training.arguments import add_encoder_arguments, check_encoder_arguments, make_eval_accelerator
from hf_maskedav.training.probe import (
    add_readout_arguments,
    extract_features,
    load_frozen_encoder,
    resolve_feature_function,
    run_linear_probe,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_encoder_arguments(  # --model_name_or_path, --config_name, --random_init, --seed, --output_dir...
        parser, "audiomae-tiny", batch_size=64,
        model_help="the encoder (a pretraining or fine-tuning output, or a Hub id)",
    )
    parser.add_argument(
        "--feature_fn", default=None, help="'package.module:function' overriding the registered feature function"
    )
    # its own data options: a probe reads labelled train and eval splits only (no streaming, no validation carving,
    # no on-device features), so the training scripts' add_audio_data_arguments would offer options it ignores
    parser.add_argument("--dataset_name", default="demo")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--eval_split", default="test")
    parser.add_argument("--audio_column", default="audio")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--label_names", nargs="+", default=None)
    parser.add_argument("--demo_multi_label", action="store_true")
    parser.add_argument("--demo_num_clips", type=int, default=None, help="size of the built-in data's train split")
    parser.add_argument("--dataloader_num_workers", type=int, default=0)
    add_readout_arguments(parser, linear_weight_decays=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0))
    args = parser.parse_args(argv)
    check_encoder_arguments(parser, args)
    return args


def load_encoder(args, log=print):
    """The frozen encoder and its feature extractor (the model folder's, else one matching the config)."""
    model = load_frozen_encoder(args, log=log)
    config = model.config
    fe_file = args.model_name_or_path and os.path.join(args.model_name_or_path, "preprocessor_config.json")
    if args.model_name_or_path and (not os.path.isdir(args.model_name_or_path) or os.path.isfile(fe_file)):
        feature_extractor = AudioMAEFeatureExtractor.from_pretrained(args.model_name_or_path)
    else:
        feature_extractor = AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    return model, feature_extractor


def extract(accelerator, model, feature_fn, source, feature_extractor, args, tracker, desc):
    """Features and targets of a whole split, gathered on every process."""
    collator = AudioCollator(feature_extractor, source.labels)
    loader = accelerator.prepare(
        torch.utils.data.DataLoader(
            AudioClipDataset(source, clip_samples_for(feature_extractor), train=False),
            batch_size=args.per_device_batch_size,
            collate_fn=collator,
            num_workers=args.dataloader_num_workers,
        )
    )
    inputs_of = lambda batch: {"input_values": featurize(feature_extractor, batch, accelerator.device)}  # noqa: E731
    return extract_features(accelerator, model, feature_fn, loader, tracker, inputs_of, desc)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    accelerator = make_eval_accelerator(args)  # CPU threads, world-size check
    log = accelerator.print
    model, feature_extractor = load_encoder(args, log)
    feature_fn = resolve_feature_function(model.config.model_type, args.feature_fn, args.readout)
    model = accelerator.prepare_model(model, evaluation_mode=True)
    name = None if args.dataset_name == "demo" and args.data_dir else args.dataset_name
    open_split = lambda split: load_audio_source(  # noqa: E731
        name,
        args.dataset_config_name,
        args.data_dir,
        None,
        split,
        args.audio_column,
        args.label_column,
        args.label_names,
        demo_multi_label=args.demo_multi_label,
        demo_num_clips=args.demo_num_clips if split == args.train_split else None,
    )
    train_source, eval_source = open_split(args.train_split), open_split(args.eval_split)
    eval_source.labels = train_source.labels
    labels = train_source.labels
    tracker = BadSampleTracker()
    what = "random-init " if args.random_init else ""
    log(
        f"linear probe of a frozen {what}{model.config.model_type} encoder "
        f"({args.model_name_or_path or args.config_name}) on {train_source.description} -> {eval_source.description}"
    )
    train_x, train_y = extract(
        accelerator, model, feature_fn, train_source, feature_extractor, args, tracker, "train features"
    )
    eval_x, eval_y = extract(
        accelerator, model, feature_fn, eval_source, feature_extractor, args, tracker, "eval features"
    )
    bad = tracker.totals(accelerator)

    if accelerator.is_main_process:
        # standardised features, L2 strength chosen on 20% of the training split; probe_results.json in --output_dir
        run_linear_probe(train_x, train_y, eval_x, eval_y, labels, args, start, bad, unit="clips", log=log)
        log(BadSampleTracker.report(bad))
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
