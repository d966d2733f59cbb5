"""Which frames of a video to read: frame-index helpers shared by the video processors and the training datasets.

All helpers return a 1-D ``torch.long`` tensor of frame indices into a video of ``total_frames`` frames (or a 2-D
``[num_clips, num_frames]`` tensor for :func:`multi_clip_frame_indices`). They never read a file.

* :func:`clip_frame_indices` -- dense sampling, as the official VideoMAE / MAE-ST / SlowFast loaders do: ``num_frames``
  frames ``sample_rate`` frames apart (16 x 4 for Kinetics), starting at the centre, the start, a fraction of the video,
  or at random. Videos shorter than the clip repeat their last frame, like the official loaders.
* :func:`uniform_frame_indices` -- ``num_frames`` frames spread over the whole video (transformers' default sampling).
* :func:`multi_clip_frame_indices` -- ``num_clips`` evenly spaced clips for multi-view testing (official 5 or 10
  temporal views).
"""

from __future__ import annotations

import math

import torch

__all__ = ["clip_frame_indices", "clip_span", "multi_clip_frame_indices", "uniform_frame_indices"]


def _check_counts(total_frames: int, num_frames: int) -> None:
    if total_frames < 1:
        raise ValueError(f"the video has no frames (total_frames={total_frames})")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")


def clip_span(num_frames: int, sample_rate: float) -> int:
    """Number of source frames a clip of ``num_frames`` frames taken every ``sample_rate`` frames covers."""
    return int(math.floor((num_frames - 1) * sample_rate)) + 1


def clip_frame_indices(
    total_frames: int,
    num_frames: int,
    sample_rate: float = 1,
    position: str | float = "center",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices of one dense clip: ``start + floor(i * sample_rate)`` for ``i < num_frames``.

    Args:
        total_frames: frames in the video.
        num_frames: frames in the clip (the model's ``num_frames``).
        sample_rate: distance between two sampled frames in source frames (the official ``--sampling_rate``; 4 for
            Kinetics, 2 for Something-Something). May be fractional (e.g. ``source_fps / target_fps``).
        position: where the clip starts: ``"center"`` (evaluation), ``"start"``, ``"end"``, ``"random"`` (training,
            uses ``generator``) or a float in ``[0, 1]`` (fraction of the free range before the clip).
        generator: random generator for ``position="random"``.

    Returns:
        ``[num_frames]`` long tensor. When the video is shorter than the clip, the clip starts at frame 0 and indices
        past the end repeat the last frame (official ``VideoClsDataset``/SlowFast behaviour).
    """
    _check_counts(total_frames, num_frames)
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    span = clip_span(num_frames, sample_rate)
    free = max(total_frames - span, 0)
    if position == "center":
        start = free // 2
    elif position == "start":
        start = 0
    elif position == "end":
        start = free
    elif position == "random":
        start = int(torch.randint(0, free + 1, (1,), generator=generator))
    elif isinstance(position, (int, float)) and not isinstance(position, bool) and 0.0 <= float(position) <= 1.0:
        start = int(round(float(position) * free))
    else:
        raise ValueError(f"position must be 'center', 'start', 'end', 'random' or a float in [0, 1], got {position!r}")
    offsets = torch.floor(torch.arange(num_frames, dtype=torch.float64) * float(sample_rate)).long()
    return (start + offsets).clamp(max=total_frames - 1)


def uniform_frame_indices(total_frames: int, num_frames: int) -> torch.Tensor:
    """``num_frames`` indices spread evenly over the whole video: ``floor(i * total_frames / num_frames)``.

    This is transformers' default sampling (``default_sample_indices_fn``); frames repeat when the video is shorter
    than ``num_frames``.
    """
    _check_counts(total_frames, num_frames)
    return torch.div(torch.arange(num_frames) * total_frames, num_frames, rounding_mode="floor")


def multi_clip_frame_indices(total_frames: int, num_frames: int, sample_rate: float, num_clips: int) -> torch.Tensor:
    """``[num_clips, num_frames]`` indices of ``num_clips`` dense clips whose starts are spread evenly over the video.

    Used for multi-view testing (the official test scripts average the logits of several temporal clips).
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    positions = [0.5] if num_clips == 1 else [i / (num_clips - 1) for i in range(num_clips)]
    return torch.stack([clip_frame_indices(total_frames, num_frames, sample_rate, p) for p in positions])
