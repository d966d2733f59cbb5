"""CAV-MAE video processor: the frame the official code extracts and its evaluation transform."""

from __future__ import annotations

import math

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.video_utils import VideoMetadata

from ...video import MaskedAVVideoProcessor, MaskedAVVideosKwargs


class CAVMAEVideosKwargs(MaskedAVVideosKwargs, total=False):
    """Video kwargs plus the official frame choice: ``frame_positions`` among ``num_candidate_frames``."""

    frame_positions: list[int] | None
    num_candidate_frames: int | None


def cavmae_frame_indices(
    total_frames: int, source_fps: float | None, frame_positions=(5,), num_candidate_frames: int = 10,
    max_seconds: float = 10.0,
) -> torch.Tensor:
    """Frames the official ``src/preprocess/extract_video_frame.py`` extracts, at the given positions.

    It extracts ``num_candidate_frames`` (10) frames from the first ``max_seconds`` (10 s) of a video: frame ``i`` is
    source frame ``int(i * total / 10) - 1`` (it seeks to ``frame_idx - 1`` before reading; -1 reads the first frame)
    with ``total = min(frame count, fps * 10)``. Evaluation uses frame 5 (the middle one); the 10-frame ensemble
    uses all of them. Returns ``[len(frame_positions)]`` indices.
    """
    if total_frames < 1:
        raise ValueError(f"the video has no frames (total_frames={total_frames})")
    total = total_frames if not source_fps else min(total_frames, int(source_fps * max_seconds))
    indices = []
    for position in frame_positions:
        if not 0 <= position < num_candidate_frames:
            raise ValueError(f"frame position {position} is outside 0..{num_candidate_frames - 1}")
        indices.append(max(int(position * (total / num_candidate_frames)) - 1, 0))
    return torch.tensor(indices, dtype=torch.long).clamp(max=total_frames - 1)


class CAVMAEVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for CAV-MAE (one frame per clip).

    * Frame: the middle one of the 10 frames the official code extracts from the first 10 s
      (:func:`cavmae_frame_indices`, ``frame_positions=[5]``); pass ``frame_positions=list(range(10))`` for the
      official 10-frame prediction ensemble (the model then takes one frame at a time).
    * Transform: short side resized to 224 (bilinear, as the extraction's ``T.Resize(224)``), 224x224 centre crop,
      [0, 1], ImageNet mean/std (the loader's second, bicubic resize of a 224x224 frame is the identity). The
      official frames are stored as JPEG in between, which is not reproduced.

    Returns ``pixel_values`` of shape ``(batch, frames, 3, 224, 224)`` (``frames`` = 1 by default).
    """

    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    num_frames = 1
    frame_positions = [5]
    num_candidate_frames = 10
    valid_kwargs = CAVMAEVideosKwargs

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.frame_positions = list(self.frame_positions)
        self.num_frames = len(self.frame_positions)

    def sample_frames(
        self,
        metadata: VideoMetadata,
        frame_positions: list[int] | None = None,
        num_candidate_frames: int | None = None,
        **kwargs,
    ):
        """Indices of the frames to keep (see :func:`cavmae_frame_indices`)."""
        source_fps = metadata.fps if metadata.fps and not math.isnan(float(metadata.fps)) else None
        return cavmae_frame_indices(
            int(metadata.total_num_frames),
            source_fps,
            frame_positions if frame_positions is not None else self.frame_positions,
            num_candidate_frames if num_candidate_frames is not None else self.num_candidate_frames,
        )


__all__ = ["CAVMAEVideoProcessor", "cavmae_frame_indices"]
