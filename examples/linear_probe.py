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

Other model families plug in through ``hf_maskedav.training.probe.register_feature_function`` (keyed by the config's
``model_type``) or ``--feature_fn package.module:function``; the function receives the model and its keyword inputs.
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

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav.training.threads import add_num_threads_argument, configure_cpu_threads
from hf_maskedav import AudioMAEFeatureExtractor
from hf_maskedav.data import (
    AudioClipDataset,
    AudioCollator,
    BadSampleTracker,
    clip_samples_for,
    featurize,
    load_audio_source,
)
from hf_maskedav.training.loading import load_pretrained_quietly
from hf_maskedav.training.config_overrides import add_config_overrides_argument, config_for_script
from hf_maskedav.training import (
    apply_linear_probe,
    build_config,
    check_world_size,
    fit_linear_probe,
    format_duration,
    resolve_feature_function,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--model_name_or_path", default=None, help="the encoder (a pretraining or fine-tuning output, or a Hub id)"
    )
    parser.add_argument("--config_name", default="audiomae-tiny", help="architecture for --random_init without a model")
    add_config_overrides_argument(parser)
    parser.add_argument(
        "--random_init",
        action="store_true",
        help="same architecture (and feature extractor) with randomly initialised weights: the baseline",
    )
    parser.add_argument(
        "--feature_fn", default=None, help="'package.module:function' overriding the registered feature function"
    )
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
    parser.add_argument("--per_device_batch_size", type=int, default=64)
    parser.add_argument("--dataloader_num_workers", type=int, default=0)
    parser.add_argument(
        "--weight_decays",
        type=float,
        nargs="+",
        default=[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        help="L2 strengths tried for the linear classifier (chosen on 20%% of the training split)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random initialisation and of the validation split"
    )
    parser.add_argument("--output_dir", default=None, help="where to write probe_results.json (optional)")
    add_num_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.model_name_or_path is None and not args.random_init:
        parser.error("give --model_name_or_path (or --random_init for a random encoder of --config_name)")
    return args


def load_encoder(args, log=print):
    """The frozen encoder and its feature extractor."""
    if args.model_name_or_path:
        config = AutoConfig.from_pretrained(args.model_name_or_path)
    else:
        config = build_config(args.config_name)
    config = config_for_script(config, args.config_overrides)
    if args.random_init:
        set_seed(args.seed)
        model = AutoModel.from_config(config)
    else:
        model = load_pretrained_quietly(AutoModel, args.model_name_or_path, config=config, log=log)
    fe_file = args.model_name_or_path and os.path.join(args.model_name_or_path, "preprocessor_config.json")
    if args.model_name_or_path and (not os.path.isdir(args.model_name_or_path) or os.path.isfile(fe_file)):
        feature_extractor = AudioMAEFeatureExtractor.from_pretrained(args.model_name_or_path)
    else:
        feature_extractor = AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    return model.eval().requires_grad_(False), feature_extractor


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
    features, targets = [], []
    for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process):
        tracker.update(batch)
        with torch.no_grad():
            feats = feature_fn(model, {"input_values": featurize(feature_extractor, batch, accelerator.device)})
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
    check_world_size(accelerator)
    model, feature_extractor = load_encoder(args, log)
    feature_fn = resolve_feature_function(model.config.model_type, args.feature_fn)
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
        probe = fit_linear_probe(
            train_x, train_y, labels.multi_label, labels.num_labels, tuple(args.weight_decays), seed=args.seed
        )
        metric_name = "mAP" if labels.multi_label else "accuracy"
        train_score = apply_linear_probe(probe, train_x, train_y, labels.multi_label)
        eval_score = apply_linear_probe(probe, eval_x, eval_y, labels.multi_label)
        results = {
            "model": args.model_name_or_path or args.config_name,
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
        log(
            f"linear probe {metric_name}: eval {eval_score:.4f} (train {train_score:.4f}; L2 {probe['weight_decay']}; "
            f"{train_x.shape[0]} train / {eval_x.shape[0]} eval clips, {train_x.shape[1]}-d features) "
            f"in {format_duration(time.time() - start)}"
        )
        log(BadSampleTracker.report(bad))
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            with open(os.path.join(args.output_dir, "probe_results.json"), "w") as handle:
                json.dump(results, handle, indent=1)
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
