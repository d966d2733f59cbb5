#!/usr/bin/env python
"""Audio data-loading time per batch, decoding every epoch vs the decoded-clip and feature caches, next to a training
step.

Measures the training input pipeline of ``pretrain_audio.py`` / ``finetune_audio.py`` (``AudioClipDataset`` +
``AudioCollator`` in a ``torch.utils.data.DataLoader`` with the scripts' default of no workers: decode, resample, crop,
log-mel fbank, batch) with ``--decoded_cache_mb 0``, with the decoded-clip cache alone, and with the collator's feature
cache as well (what the scripts run: the fbank of clips that are the same every epoch kept), and the tiny Audio-MAE's
training step (forward, backward, AdamW) on the same batches, so that the table says what share of a step the data
takes:

    python -m benchmarks.audio_data                                     # the built-in demo clips
    python -m benchmarks.audio_data --data_dir ../shared/datasets/fsdd --split speaker=george,jackson --clip_seconds 0.64

The contenders take turns, one epoch each per round (the order alternating every round); the cache is filled by the
first epoch, whose time is reported apart. The table gives median milliseconds per batch over the later epochs and the
ratio against decoding every time.
"""

from __future__ import annotations

import argparse
from itertools import count, cycle

import torch

from benchmarks.common import interleaved, machine_description, median
from hf_maskedav import AudioMAEFeatureExtractor, AudioMAEForPreTraining
from hf_maskedav.data import AudioClipDataset, AudioCollator, clip_samples_for, load_audio_source
from hf_maskedav.training import build_config, config_for_script


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", default=None, help="a local audiofolder (default: the built-in demo clips)")
    parser.add_argument("--split", default="train", help="split or row filter (COLUMN=VALUE,...) of --data_dir")
    parser.add_argument("--demo_num_clips", type=int, default=256, help="size of the built-in demo split")
    parser.add_argument("--clip_seconds", type=float, default=None, help="clip length (default: the tiny preset's)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--decoded_cache_mb", type=float, default=1024, help="the cached contender's budget")
    parser.add_argument("--max_batches", type=int, default=None, help="batches per epoch (default: the whole split)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per contender after the first")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps before the timed ones")
    return parser.parse_args(argv)


def epoch_runner(dataset, batch_size: int, collator, max_batches: int | None, kept: list):
    """One epoch of the data path per call (epochs 0, 1, 2... in turn: every contender sees the same sequence); the
    batches of the latest epoch are left in ``kept``."""
    epochs = count()

    def run():
        epoch = next(epochs)
        dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                             collate_fn=collator, generator=torch.Generator().manual_seed(epoch))
        kept.clear()
        for batch in loader:
            kept.append(batch["input_values"])
            if max_batches is not None and len(kept) == max_batches:
                break

    return run


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = config_for_script(build_config("audiomae-tiny"), None, args.clip_seconds, lambda *_: None)
    extractor = AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length,
                                         normalization="per_clip")
    if args.data_dir:
        source = load_audio_source(None, None, args.data_dir, None, args.split, "audio")
    else:
        source = load_audio_source("demo", None, None, None, "train", "audio", demo_num_clips=args.demo_num_clips)
    def dataset(cache_mb):
        return AudioClipDataset(source, clip_samples_for(extractor), train=True, seed=0, decoded_cache_mb=cache_mb)

    contenders = {  # name: (dataset, collator)
        "decode every epoch": (dataset(0), AudioCollator(extractor)),
        "decoded-clip cache": (dataset(args.decoded_cache_mb), AudioCollator(extractor)),
        "decoded clips + features": (dataset(args.decoded_cache_mb),
                                     AudioCollator(extractor, features_cache_mb=args.decoded_cache_mb)),
    }
    cpu, kept = torch.device("cpu"), []
    runners = {name: epoch_runner(data, args.batch_size, collator, args.max_batches, kept)
               for name, (data, collator) in contenders.items()}
    first = interleaved(runners, cpu, repeats=1, warmup=0)  # the cache fills here
    later = interleaved(runners, cpu, repeats=args.repeats, warmup=0)
    ms_per_batch = 1000 / len(kept)

    model = AudioMAEForPreTraining._from_config(config, attn_implementation="sdpa")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = cycle(kept)

    def training_step():
        model(input_values=next(batches)).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_ms = [1000 * t for t in interleaved({"step": training_step}, cpu, args.repeats * 3, args.warmup)["step"].wall]
    step = median(step_ms)

    reference = median(later["decode every epoch"].wall)
    lines = [
        f"Audio data loading: {source.description}; {len(contenders['decoded-clip cache'][0])} clips, "
        f"{config.max_length} frames x {config.num_mel_bins} mel bins, batch {args.batch_size}, no workers; "
        f"{args.repeats} interleaved epochs after the first",
        machine_description(torch.device("cpu")),
        "",
        "| data path | first epoch ms/batch | later epochs ms/batch (median) | vs decoding every epoch | "
        "data + tiny Audio-MAE step (ms) |",
        "|---|---|---|---|---|",
    ]
    for name in contenders:
        data = median(later[name].wall) * ms_per_batch
        lines.append(f"| {name} | {first[name].wall[0] * ms_per_batch:.1f} | {data:.1f} | "
                     f"{reference * ms_per_batch / data:.2f}x | {data:.0f} + {step:.0f} = {data + step:.0f} |")
    data, collator = contenders["decoded clips + features"]
    lines += ["", f"Caches after the run: clips {data.cache!r}, features {collator.features_cache!r}; the training "
              f"step alone: {step:.1f} ms (median of {len(step_ms)})."]
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
