"""Video input throughput: decoding + clip sampling + processing, PyAV vs torchcodec, 0/1/2 DataLoader workers,
repeated sampling on/off.

Examples (from the repository root)::

    python -m benchmarks.video_decode                                  # synthetic 10-s 320x256 H.264 clips
    python -m benchmarks.video_decode --video-dir /data/k400/val --num-videos 32 --workers 0 2 4

Each dataset item opens one video with :func:`hf_maskedav.video.read_video` (only the frames needed are decoded),
takes random 16-frame clips every 4 frames and runs the VideoMAE video processor (short side 224, centre crop 224,
rescale and normalise) on them. Repeated sampling gives ``--clips-per-video`` training samples per decode:

* ``off``: one clip per video opened;
* ``views``: one clip decoded, processed ``R`` times (VideoMAE V2's ``num_sample``: the augmentations differ, the
  frames are the same);
* ``clips``: ``R`` clips at different random positions from one opened file (MAE-ST's ``repeat_aug``).

Throughput is clips per second of wall-clock time through a ``torch.utils.data.DataLoader`` (worker start-up
included), median over ``--repeats`` rounds in which the configurations take turns. FFmpeg's own decoding threads are
the libraries' defaults (PyAV: automatic, torchcodec: one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Table, add_common_args, median, print_report, setup


def write_synthetic_videos(folder: Path, count: int, seconds: float, fps: int, width: int, height: int) -> list[Path]:
    """H.264 mp4 files with moving content (so that the codec has real work), a keyframe every 2 s."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    frames = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    for index in range(count):
        path = folder / f"synthetic_{index}_{width}x{height}_{frames}f.mp4"
        paths.append(path)
        if path.is_file() and path.stat().st_size > 0:
            continue
        texture = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)
        tmp = path.with_suffix(".partial.mp4")
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.gop_size = 2 * fps
            stream.options = {"preset": "veryfast", "crf": "23"}
            for t in range(frames):
                phase = 2 * np.pi * t / fps
                r = (127 + 120 * np.sin(xx / 17.0 + phase + index)).astype(np.uint8)
                g = (127 + 120 * np.sin(yy / 13.0 - 0.7 * phase)).astype(np.uint8)
                b = ((xx + yy + 4 * t) % 256).astype(np.uint8)
                image = np.stack([r, g, b], axis=-1) + texture
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    return paths


class ClipDataset(torch.utils.data.Dataset):
    """One item per video: ``clips`` processed clips ``[clips, T, 3, 224, 224]``, from one decoded clip (``mode``
    "views") or from as many random clips decoded together (``mode`` "clips")."""

    def __init__(
        self, paths, backend: str, clips: int, mode: str = "clips", num_frames: int = 16, sample_rate: int = 4, seed: int = 0
    ):
        from hf_maskedav import MaskedAVVideoMAEVideoProcessor

        self.paths = list(paths)
        self.backend = backend
        self.clips = clips
        self.mode = mode
        self.num_frames = num_frames
        self.sample_rate = sample_rate
        self.seed = seed
        self.processor = MaskedAVVideoMAEVideoProcessor()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from hf_maskedav.video import clip_frame_indices, read_video

        generator = torch.Generator().manual_seed(self.seed * 100_003 + index)

        decoded_clips = 1 if self.mode == "views" else self.clips

        def choose(info):
            return torch.cat([
                clip_frame_indices(info.num_frames, self.num_frames, self.sample_rate, "random", generator)
                for _ in range(decoded_clips)
            ])

        decoded = read_video(self.paths[index], frame_indices=choose, backend=self.backend)
        frames = decoded.frames.permute(0, 3, 1, 2)  # [clips*T, 3, H, W] uint8
        videos = list(frames.view(decoded_clips, self.num_frames, *frames.shape[1:]))
        if self.mode == "views":
            videos = videos * self.clips  # the same frames, processed once per view
        return self.processor(videos, do_sample_frames=False, return_tensors="pt").pixel_values


def _collate(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(items)


def _worker_init(_):
    torch.set_num_threads(1)


def run_config(paths, backend: str, workers: int, mode: str, clips: int, batch_size: int, seed: int) -> tuple[float, int]:
    """Seconds to go through every video once, and the number of clips produced."""
    dataset = ClipDataset(paths, backend, 1 if mode == "off" else clips, mode=mode, seed=seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None, persistent_workers=False,
    )
    start = time.perf_counter()
    produced = 0
    for batch in loader:
        produced += batch.shape[0]
    return time.perf_counter() - start, produced


def run(args) -> str:
    device = setup(args)
    from hf_maskedav.video import available_backends

    if args.video_dir:
        paths = sorted(p for p in Path(args.video_dir).iterdir() if p.suffix.lower() in (".mp4", ".webm", ".mkv", ".avi"))
        paths = paths[: args.num_videos]
        source = f"{len(paths)} videos from {args.video_dir}"
    else:
        folder = Path(args.cache_dir or Path(tempfile.gettempdir()) / "hf_maskedav_benchmark_videos")
        paths = write_synthetic_videos(folder, args.num_videos, args.seconds, args.fps, args.width, args.height)
        source = (f"{len(paths)} synthetic H.264 videos, {args.seconds:g} s at {args.fps} fps, "
                  f"{args.width}x{args.height}, keyframe every 2 s")
    if not paths:
        raise SystemExit("no videos to read")
    backends = [b for b in args.backends if b in available_backends()]
    missing = sorted(set(args.backends) - set(backends))
    configs = [(b, w, m) for b in backends for w in args.workers for m in args.repeated]
    times: dict[tuple, list[float]] = {config: [] for config in configs}
    produced: dict[tuple, int] = {}
    for round_index in range(args.repeats):
        order = configs if round_index % 2 == 0 else configs[::-1]
        for config in order:
            seconds, count = run_config(paths, *config, args.clips_per_video, args.batch_size, args.seed)
            times[config].append(seconds)
            produced[config] = count

    table = Table(["backend", "workers", "repeated sampling", "clips / video", "clips", "median s", "clips/s",
                   "ms / clip", "vs PyAV, same row"])
    for backend, workers, mode in configs:
        t = median(times[(backend, workers, mode)])
        count = produced[(backend, workers, mode)]
        reference = times.get(("pyav", workers, mode))
        ratio = f"{median(reference) / t:.2f}x" if reference else None
        per_video = 1 if mode == "off" else args.clips_per_video
        table.add(backend, workers, mode, per_video, count, t, count / t, 1e3 * t / count, ratio)
    notes = [
        source,
        f"16 frames every 4, {args.batch_size} videos per batch, VideoMAE processor (224 crop), "
        f"{args.repeats} rounds (median); workers use 1 torch thread each",
    ]
    if missing:
        notes.append(f"backends not usable here: {', '.join(missing)}")
    return print_report("video_decode (decode + sample + process)", device, table, notes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video-dir", default=None, help="read these videos instead of synthetic ones")
    parser.add_argument("--cache-dir", default=None, help="where the synthetic videos are written (and reused)")
    parser.add_argument("--num-videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--backends", nargs="+", default=["pyav", "torchcodec"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--clips-per-video", type=int, default=2, help="R: clips per video with repeated sampling")
    parser.add_argument("--repeated", nargs="+", default=["off", "views", "clips"], choices=["off", "views", "clips"])
    parser.add_argument("--batch-size", type=int, default=2, help="videos per DataLoader batch")
    add_common_args(parser, repeats=3, warmup=0)
    return parser.parse_args(argv)


def main(argv=None) -> str:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
