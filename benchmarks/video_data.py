#!/usr/bin/env python
"""Video data-loading throughput: clips/s decoding the built-in demo .mp4s into training clips.

Measures the training input pipeline of the video scripts (``VideoClipDataset`` + ``VideoCollator`` in a
``torch.utils.data.DataLoader``: open the file, decode the sampled frames, random crop/resize/flip, normalise, batch)
for several worker counts, with and without repeated sampling (several clips cut from each decoded video):

    python -m benchmarks.video_data                                   # every backend x 0, 1, 2 workers x 1, 4 clips
    python -m benchmarks.video_data --workers 0 2 4 8 --repeats 1 2 4 --backend pyav --json results.json

The clip recipe is a family's (``--family``, tiny preset by default: 8 frames every 2 source frames, 32x32) on the
demo clips (32 frames of 64x48 at 12 fps, H.264 + AAC). Each configuration first runs ``--warmup_batches`` batches
(worker start-up, file cache), then times ``--batches`` batches. Prints a Markdown table (ratios against the first
row: the first backend, no repeated sampling, the first worker count) and returns it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from hf_maskedav.data.video import VideoClipDataset, VideoCollator, load_video_source
from hf_maskedav.data.video_transforms import video_recipe
from hf_maskedav.training import build_config
from hf_maskedav.training.presets import video_processor_for
from hf_maskedav.video import available_backends


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--family", default="videomae", choices=["videomae", "mae_st", "maskfeat"])
    parser.add_argument("--config_name", default=None, help="a video preset (default <family>-tiny)")
    parser.add_argument("--num_videos", type=int, default=96, help="demo videos to read from (train split)")
    parser.add_argument("--batch_size", type=int, default=8, help="videos per batch")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4], help="clips cut from each decoded video")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--warmup_batches", type=int, default=2)
    parser.add_argument("--backend", nargs="+", default=None, choices=["torchcodec", "pyav"],
                        help="decoders to compare (default: every one installed)")
    parser.add_argument("--demo_cache_dir", default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


def measure(dataset, workers: int, batch_size: int, batches: int, warmup: int) -> dict:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=VideoCollator(), generator=torch.Generator().manual_seed(0),
                                         persistent_workers=False)
    iterator = iter(loader)
    for _ in range(warmup):
        next(iterator)
    clips = videos = 0
    start = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        clips += batch["pixel_values"].shape[0]
        videos += batch["num_videos"]
    elapsed = time.perf_counter() - start
    del iterator
    return {"clips_per_second": clips / elapsed, "videos_per_second": videos / elapsed, "seconds": elapsed,
            "clips": clips}


def main(argv=None) -> str:
    args = parse_args(argv)
    config_name = args.config_name or f"{args.family}-tiny"
    config = build_config(config_name)
    recipe = video_recipe(video_processor_for(config, config_name), config.model_type, "pretrain")
    source = load_video_source(split="train", demo_num_clips=args.num_videos, demo_cache_dir=args.demo_cache_dir)
    backends = args.backend or available_backends()
    header = {
        "family": args.family, "config": config_name, "backends": backends, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "clip": f"{recipe.num_frames} frames every {recipe.sampling_rate:g}, {recipe.crop_size[0]}x{recipe.crop_size[1]}, "
                f"{recipe.train_crop} crop", "source": source.description, "batch_videos": args.batch_size,
    }
    print(json.dumps(header), flush=True)
    rows = []
    for backend in backends:
        for repeats in args.repeats:
            dataset = VideoClipDataset(source, recipe, train=True, repeats=repeats, backend=backend)
            for workers in args.workers:
                result = measure(dataset, workers, args.batch_size, args.batches, args.warmup_batches)
                rows.append({"backend": backend, "workers": workers, "repeats": repeats, **result})
                print(f"{backend} workers={workers} clips/video={repeats}: {result['clips_per_second']:.1f} clips/s",
                      flush=True)
    reference = rows[0]["clips_per_second"]
    lines = [
        f"Video data loading: {header['source']}; {header['clip']}; {args.batch_size} videos per batch; "
        f"{header['cpu_count']} CPUs, {header['torch_threads']} torch thread(s) in the main process",
        "",
        "| backend | workers | clips / video | clips/s | videos/s | vs first row |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['backend']} | {row['workers']} | {row['repeats']} | {row['clips_per_second']:.1f} | "
                     f"{row['videos_per_second']:.1f} | {row['clips_per_second'] / reference:.2f}x |")
    report = "\n".join(lines)
    print(report)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({**header, "results": rows}, handle, indent=1)
    return report


if __name__ == "__main__":
    main()
