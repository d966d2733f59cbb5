"""Small real video files written with PyAV, for the video decoding, processor and pipeline tests.

Frame ``i`` of :func:`write_video` is uniform grey level ``10 * i``, so :func:`frame_ids` recovers which source
frames a decoder returned, even through a lossy codec.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch

STEP = 10


def write_video(path: Path, num_frames: int = 24, height: int = 40, width: int = 48, fps: int = 12, grey: bool = False):
    """An .mp4 (mpeg4, yuv420p) or, with ``grey``, an .mkv with a grey-scale (ffv1, gray) stream."""
    codec, pix_fmt, fmt = ("ffv1", "gray", "gray") if grey else ("mpeg4", "yuv420p", "rgb24")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(num_frames):
            shape = (height, width) if grey else (height, width, 3)
            frame = av.VideoFrame.from_ndarray(np.full(shape, STEP * i, np.uint8), format=fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 0.5, rate: int = 16000):
    """An .m4a (AAC) with one audio stream and no video."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for _ in range(int(seconds * rate) // 1024 + 1):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_ids(frames: torch.Tensor) -> list[int]:
    """Source frame index of each decoded ``[T, H, W, C]`` frame of :func:`write_video`."""
    return [int(round(float(f.float().mean()) / STEP)) for f in frames]
