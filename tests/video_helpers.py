"""Small real video files written with PyAV, for the video decoding, processor and pipeline tests.

Frame ``i`` of :func:`write_video` is uniform grey level ``10 * i``, so :func:`frame_ids` recovers which source
frames a decoder returned, even through a lossy codec.
"""

from __future__ import annotations

import fractions
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


def write_clip(path, *, seconds: float, fps: int, size: tuple[int, int], rate: int, frame=None, tone=None) -> str:
    """An .mp4 with an mpeg4 video track (``frame(i)`` -> ``[H, W, 3]`` uint8 for each of ``seconds * fps`` frames)
    and/or an AAC audio track (``tone``: float32 ``[channels, samples]`` at ``rate``, 1 = mono, 2 = stereo); leave
    one out (None) for a file without that track."""
    with av.open(str(path), "w") as container:
        if frame is not None:
            vstream = container.add_stream("mpeg4", rate=fps)
            vstream.height, vstream.width = size
            vstream.pix_fmt = "yuv420p"
        if tone is not None:
            layout = {1: "mono", 2: "stereo"}[tone.shape[0]]
            astream = container.add_stream("aac", rate=rate)
            astream.layout = layout
        if frame is not None:
            for i in range(int(seconds * fps)):
                for packet in vstream.encode(av.VideoFrame.from_ndarray(frame(i), format="rgb24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if tone is not None:
            for start in range(0, tone.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp",
                                                   layout=layout)
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, fractions.Fraction(1, rate)
                for packet in astream.encode(chunk):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return str(path)


def frame_ids(frames: torch.Tensor) -> list[int]:
    """Source frame index of each decoded ``[T, H, W, C]`` frame of :func:`write_video`."""
    return [int(round(float(f.float().mean()) / STEP)) for f in frames]
