"""MAViL video processor: the frame sampling and transforms of the MAViL authors' AV-SUPERB expert."""

from __future__ import annotations

import math

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.utils import logging
from transformers.video_utils import VideoMetadata

from ...video import MaskedAVVideoProcessor

logger = logging.get_logger(__name__)


def mavil_frame_indices(total_frames: int, source_fps: float | None, num_frames: int = 8, target_fps: float = 2.0):
    """Frames the MAViL expert keeps (roger-tseng/av-superb ``upstream_models/mavil/expert.py``, ``preprocess_video``).

    The first ``num_frames / target_fps`` seconds (4 s) at ``target_fps`` (2 fps): a clip shorter than that is first
    repeated whole (``ceil(seconds * fps) // T + 1`` times), then every ``fps / target_fps``-th frame is taken (indices
    ``floor(k * step)`` when the step is fractional) and the first ``num_frames`` are kept. With an unknown source
    rate the frames are taken as already at ``target_fps``. Returns ``[num_frames]`` indices into the original clip.
    """
    if total_frames < 1:
        raise ValueError(f"the video has no frames (total_frames={total_frames})")
    if source_fps is None or source_fps <= 0:
        step = 1.0
        needed = num_frames
    else:
        step = float(source_fps) / float(target_fps)
        needed = math.ceil(num_frames / target_fps * float(source_fps))
    length = total_frames
    if total_frames < needed:
        length = total_frames * (needed // total_frames + 1)  # tile the whole clip
    if float(step).is_integer():
        indices = torch.arange(0, length, int(step))
    else:
        count = max(int(length / step), 1)
        indices = torch.floor(torch.arange(count, dtype=torch.float64) * step).long()
    indices = indices[:num_frames] % total_frames
    if indices.numel() < num_frames:  # only for tiny clips at a low source rate: repeat the last frame
        indices = torch.cat([indices, indices[-1:].expand(num_frames - indices.numel())])
    return indices


class MAViLVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for MAViL, following the authors' AV-SUPERB expert.

    * Frames: the first 4 s of the clip at 2 fps (``num_frames=8`` frames at ``fps=2``), a shorter clip being repeated
      (:func:`mavil_frame_indices`). Files give their own frame rate; for arrays pass ``video_metadata={"fps": ...}``
      (without it the frames are taken as already at 2 fps).
    * Each frame squashed to 224x224 (bilinear, aspect ratio not kept, no crop), scaled to [0, 1], normalised with the
      ImageNet mean/std.

    Returns ``pixel_values`` of shape ``(batch, num_frames, 3, 224, 224)``.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 224, "width": 224}
    default_to_square = True
    do_center_crop = False
    crop_size = None
    num_frames = 8
    fps = 2.0
    temporal_sampling = "start"

    def sample_frames(self, metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None, **kwargs):
        """Indices of the frames to keep (see :func:`mavil_frame_indices`)."""
        num_frames = num_frames if num_frames is not None else self.num_frames
        target = fps if fps is not None else self.fps
        if metadata.fps is None:
            logger.warning_once(
                "the source frame rate of a video is unknown (pass video_metadata={'fps': ...} with arrays); its frames "
                f"are taken as already sampled at {target} fps"
            )
        return mavil_frame_indices(int(metadata.total_num_frames), metadata.fps, num_frames, target)


__all__ = ["MAViLVideoProcessor", "mavil_frame_indices"]
