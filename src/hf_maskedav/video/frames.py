"""Turning in-memory videos (arrays, tensors, lists of frames) into one layout: ``[T, 3, H, W]`` RGB tensors.

Models and video processors accept many layouts; this module decides the channel axis once, converts grey-scale
and RGBA frames to RGB, and raises a clear error when a shape is ambiguous.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["is_video_path", "stack_frames", "to_rgb_video"]

_CHANNEL_COUNTS = (1, 3, 4)


def is_video_path(item) -> bool:
    """True for a string or ``os.PathLike`` (a file path or URL) rather than decoded pixels."""
    import os

    return isinstance(item, (str, os.PathLike))


def _frame_to_tensor(frame) -> torch.Tensor:
    """One frame (PIL image, 2-D grey array, or 3-D array/tensor) -> tensor ``[H, W]`` or 3-D as given."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with transformers' vision extras
        Image = None
    if Image is not None and isinstance(frame, Image.Image):
        # A PIL mode is explicit: convert any mode (L, P, RGBA, I;16, CMYK...) to 8-bit RGB.
        return torch.from_numpy(np.asarray(frame.convert("RGB")).copy())
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(np.ascontiguousarray(frame))
    if not isinstance(frame, torch.Tensor):
        raise TypeError(f"a video frame must be a PIL image, numpy array or torch tensor, got {type(frame).__name__}")
    if frame.dim() not in (2, 3):
        raise ValueError(f"a video frame must have 2 (grey-scale) or 3 dimensions, got shape {tuple(frame.shape)}")
    return frame


def stack_frames(frames) -> torch.Tensor:
    """Stack a list of frames into one tensor with time first; 2-D grey-scale frames become ``[T, H, W, 1]``."""
    if len(frames) == 0:
        raise ValueError("a video given as a list of frames must have at least one frame")
    tensors = [_frame_to_tensor(f) for f in frames]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(
            f"all frames of a video must have the same shape, got {sorted(shapes)}; resize them to one size first "
            "(e.g. PIL.Image.resize), or pass clips of different sizes as separate videos of a batch"
        )
    video = torch.stack(tensors)
    if video.dim() == 3:  # list of 2-D grey-scale frames
        video = video.unsqueeze(-1)
    return video


def _channels_last(video: torch.Tensor, data_format) -> bool:
    fmt = getattr(data_format, "value", data_format)
    if fmt in ("channels_last", "last"):
        return True
    if fmt in ("channels_first", "first"):
        return False
    if fmt is not None:
        raise ValueError(f"input_data_format must be 'channels_first' or 'channels_last', got {data_format!r}")
    first, last = video.shape[1], video.shape[-1]
    if last in _CHANNEL_COUNTS and first not in _CHANNEL_COUNTS:
        return True
    if first in _CHANNEL_COUNTS and last not in _CHANNEL_COUNTS:
        return False
    if first in _CHANNEL_COUNTS and last in _CHANNEL_COUNTS:
        return last != 1 or first == 1  # e.g. [T, 3, 4, 3]: assume (T, H, W, C) as decoders produce
    raise ValueError(
        f"cannot tell the channel axis of a video of shape {tuple(video.shape)}: expected (frames, height, width, "
        f"channels) or (frames, channels, height, width) with 1 (grey-scale), 3 (RGB) or 4 (RGBA) channels"
    )


def to_rgb_video(video, input_data_format=None, convert_rgb: bool = True) -> torch.Tensor:
    """One video -> ``[T, C, H, W]`` tensor (dtype kept), RGB when ``convert_rgb``.

    Args:
        video: a 4-D array/tensor ``(T, H, W, C)`` or ``(T, C, H, W)``, or a list of frames (PIL images, ``(H, W)``
            grey-scale arrays, or ``(H, W, C)``/``(C, H, W)`` arrays).
        input_data_format: ``"channels_last"``/``"channels_first"`` when the layout cannot be inferred.
        convert_rgb: expand grey-scale (1 channel) to 3 equal channels and drop an alpha channel.

    Raises:
        ValueError: a bare 3-D array (ambiguous: one RGB frame or a grey-scale video?), a shape whose channel axis
            cannot be found, or channel counts other than 1, 3 or 4.
    """
    if isinstance(video, (list, tuple)):
        video = stack_frames(video)
    elif isinstance(video, np.ndarray):
        video = torch.from_numpy(np.ascontiguousarray(video))
    elif not isinstance(video, torch.Tensor):
        raise TypeError(
            f"a video must be a file path, a 4-D array/tensor or a list of frames, got {type(video).__name__}"
        )
    if video.dim() == 3:
        raise ValueError(
            f"got a 3-D array of shape {tuple(video.shape)}, which is ambiguous (one RGB frame or a grey-scale "
            "video?). Pass a grey-scale video as (frames, height, width, 1), a single frame as (1, height, width, 3), "
            "or a list of frames (2-D grey-scale frames are fine)."
        )
    if video.dim() != 4:
        raise ValueError(f"a video must have 4 dimensions (frames, height, width, channels), got {tuple(video.shape)}")
    if _channels_last(video, input_data_format):
        video = video.permute(0, 3, 1, 2)
    channels = video.shape[1]
    if channels not in _CHANNEL_COUNTS:
        raise ValueError(f"a video must have 1, 3 or 4 channels, got {channels} (shape {tuple(video.shape)})")
    if convert_rgb:
        if channels == 1:
            video = video.expand(-1, 3, -1, -1)
        elif channels == 4:
            video = video[:, :3]
    return video.contiguous()
