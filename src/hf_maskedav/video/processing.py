"""A transformers ``BaseVideoProcessor`` that decodes files, samples frames as the official video code, and takes
every common in-memory layout (grey-scale included). Each model family subclasses it with its own statistics.

What it adds to transformers' base class:

* file paths are decoded with :mod:`hf_maskedav.video.decoding` (torchcodec, PyAV fallback), reading only the sampled
  frames, with clear errors for corrupt and audio-only files;
* frame sampling honours ``num_frames`` **and** ``frame_sampling_rate`` (dense clips as the official loaders, centred
  by default), or ``fps``, or ``temporal_sampling="uniform"``; arrays and lists of frames are sampled the same way;
* grey-scale and RGBA frames become RGB, ambiguous shapes get an error instead of a silent misreading;
* the output is ``pixel_values`` ``(batch, frames, channels, height, width)``, the layout the models take.
"""

from __future__ import annotations

from typing import Literal

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.utils import logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

from .decoding import read_video
from .frames import is_video_path, to_rgb_video
from .sampling import clip_frame_indices, clip_span, uniform_frame_indices

logger = logging.get_logger(__name__)

__all__ = ["MaskedAVVideoProcessor", "MaskedAVVideosKwargs", "check_pixel_values"]


def check_pixel_values(video: torch.Tensor, name: str) -> None:
    """Pixels a processor can use: numbers (not bool), a non-empty frame size, finite values.

    Float pixels are expected in ``[0, 255]`` when ``do_rescale`` is on (the default), as decoded frames are; a float
    video whose values all lie in ``[0, 1]`` is probably already rescaled, which is logged once.
    """
    if video.dtype == torch.bool or video.is_complex():
        raise TypeError(f"{name} has dtype {video.dtype}; pass uint8 frames (0-255) or float frames")
    if video.shape[-1] == 0 or video.shape[-2] == 0:
        raise ValueError(f"{name} has frames of size {video.shape[-2]}x{video.shape[-1]}; frames must not be empty")
    if video.is_floating_point():
        if not bool(torch.isfinite(video).all()):
            raise ValueError(
                f"{name} contains NaN or Inf pixel values; the frames are corrupt (decode them again, or replace the "
                "values, e.g. numpy.nan_to_num)"
            )
        if video.numel() and float(video.max()) <= 1.0 and float(video.min()) >= 0.0:
            logger.warning_once(
                f"{name} holds float pixels in [0, 1]; they are divided by 255 again when do_rescale is on (the "
                "default). Pass uint8 frames or frames in [0, 255], or call the processor with do_rescale=False."
            )


class MaskedAVVideosKwargs(VideosKwargs, total=False):
    """transformers' ``VideosKwargs`` plus the dense-sampling settings of the official video loaders.

    Attributes:
        frame_sampling_rate: distance between sampled frames, in source frames (official ``--sampling_rate``).
        temporal_sampling: where the clip is taken: ``"center"``, ``"start"``, ``"end"``, ``"random"``, or
            ``"uniform"`` (``num_frames`` frames spread over the whole video; ``frame_sampling_rate`` unused).
    """

    frame_sampling_rate: int | float | None
    temporal_sampling: Literal["center", "start", "end", "random", "uniform"] | None


def _split_batch(videos) -> list:
    """A single video or a batch -> list of single videos (paths, 4-D arrays/tensors or lists of frames)."""
    if is_video_path(videos):
        return [videos]
    if hasattr(videos, "ndim") and not isinstance(videos, (list, tuple)):
        return list(videos) if videos.ndim == 5 else [videos]
    if isinstance(videos, (list, tuple)):
        if len(videos) == 0:
            raise ValueError("got an empty list of videos")
        first = videos[0]
        if is_video_path(first) or isinstance(first, (list, tuple)) or getattr(first, "ndim", 0) == 4:
            return list(videos)
        return [videos]  # a list of frames is one video
    return [[videos]]  # a single PIL image: a one-frame video


class MaskedAVVideoProcessor(BaseVideoProcessor):
    r"""Video processor shared by the hf_maskedav video models (subclassed per family for its statistics).

    Defaults follow the official evaluation pipeline of VideoMAE and MAE-ST on Kinetics: 16 frames taken every 4
    frames from the centre of the video, short side resized to 224 (bilinear), 224x224 centre crop, pixels scaled to
    [0, 1] and normalised with the family's mean/std.

    Args:
        num_frames (`int`, defaults to 16): frames per clip.
        frame_sampling_rate (`int` or `float`, defaults to 4): distance between sampled frames in source frames.
        temporal_sampling (`str`, defaults to `"center"`): `"center"`, `"start"`, `"end"`, `"random"` (training) or
            `"uniform"` (spread over the whole video, as transformers' default sampling).
        do_sample_frames (`bool`, defaults to `True`): sample frames; otherwise every given/decoded frame is used.
        fps (`float`, *optional*): sample the clip at this frame rate instead of every `frame_sampling_rate` frames
            (needs the source frame rate: known for files, `video_metadata` for arrays).
        other arguments: as transformers' ``BaseVideoProcessor`` (``size``, ``crop_size``, ``resample``,
            ``image_mean``, ``image_std``, ``do_resize``...).

    Inputs: a file path, a 4-D array/tensor ``(T, H, W, C)`` or ``(T, C, H, W)``, a list of frames (PIL images, 2-D
    grey-scale arrays, 3-D arrays), or a list/5-D batch of those. Videos shorter than a clip repeat their last frame.

    Returns:
        ``BatchFeature`` with ``pixel_values`` of shape ``(batch, num_frames, 3, crop_height, crop_width)``.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 224}
    default_to_square = False
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 16
    frame_sampling_rate = 4
    temporal_sampling = "center"
    model_input_names = ["pixel_values"]
    valid_kwargs = MaskedAVVideosKwargs

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: float | None = None,
        frame_sampling_rate: float | None = None,
        temporal_sampling: str | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Frame indices to keep from a video described by ``metadata`` (``total_num_frames``, ``fps``).

        Dense clip of ``num_frames`` frames every ``frame_sampling_rate`` frames (or at ``fps`` frames per second),
        placed by ``temporal_sampling``; ``"uniform"`` spreads the frames over the whole video instead.
        """
        num_frames = num_frames if num_frames is not None else self.num_frames
        position = temporal_sampling if temporal_sampling is not None else self.temporal_sampling
        total = int(metadata.total_num_frames)
        if position == "uniform":
            return uniform_frame_indices(total, num_frames)
        if fps is not None:
            if not metadata.fps:
                raise ValueError(
                    f"fps={fps} sampling needs the source frame rate, which is unknown for this video; pass "
                    "video_metadata={'fps': ...} with arrays, or use frame_sampling_rate"
                )
            rate = float(metadata.fps) / float(fps)
        else:
            rate = frame_sampling_rate if frame_sampling_rate is not None else self.frame_sampling_rate
        if total < clip_span(num_frames, rate):
            logger.warning_once(
                f"a video has {total} frames, fewer than the {clip_span(num_frames, rate)} spanned by {num_frames} "
                f"frames taken every {rate:g} frames; its last frame is repeated (as the official loaders do)"
            )
        return clip_frame_indices(total, num_frames, rate, position)

    def _decode_and_sample_videos(self, videos, video_metadata=None, do_sample_frames=None, sample_indices_fn=None):
        """Decode paths (reading only the sampled frames) and sample in-memory videos along their time axis."""
        items = _split_batch(videos)
        if video_metadata is not None and not isinstance(video_metadata, (list, tuple)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(items):
            raise ValueError(f"got {len(items)} videos but {len(video_metadata)} video_metadata entries")
        out_videos, out_metadata = [], []
        for i, item in enumerate(items):
            given = dict(video_metadata[i]) if video_metadata is not None else {}
            if is_video_path(item):
                found = {}

                def choose(info, found=found):
                    found["metadata"] = VideoMetadata(
                        total_num_frames=info.num_frames,
                        fps=info.fps,
                        width=info.width,
                        height=info.height,
                        duration=info.duration,
                        video_backend=info.backend,
                    )
                    if not do_sample_frames:
                        return torch.arange(info.num_frames)
                    return sample_indices_fn(metadata=found["metadata"])

                decoded = read_video(item, frame_indices=choose)  # opens the file once, reads only those frames
                metadata, indices = found["metadata"], decoded.indices
                video = decoded.frames.permute(0, 3, 1, 2)  # [T, 3, H, W]
            else:
                video = item if not isinstance(item, (list, tuple)) else to_rgb_video(item, convert_rgb=False)
                if not isinstance(video, torch.Tensor):
                    video = torch.as_tensor(video)
                if video.dim() != 4:
                    to_rgb_video(video)  # raises the explanatory error for 3-D and other shapes
                metadata = VideoMetadata(total_num_frames=int(video.shape[0]), fps=given.get("fps"))
                indices = sample_indices_fn(metadata=metadata) if do_sample_frames else torch.arange(video.shape[0])
                video = video[torch.as_tensor(indices, dtype=torch.long)]
            metadata.frames_indices = torch.as_tensor(indices).tolist()
            out_videos.append(video)
            out_metadata.append(metadata)
        return out_videos, out_metadata

    def _prepare_input_videos(self, videos, do_convert_rgb=None, input_data_format=None, device=None):
        """Each video -> ``[T, 3, H, W]`` (channel axis inferred or given; grey-scale/RGBA converted to RGB)."""
        prepared = []
        for index, video in enumerate(videos):
            video = to_rgb_video(video, input_data_format=input_data_format, convert_rgb=bool(do_convert_rgb))
            check_pixel_values(video, f"video {index}")
            prepared.append(video.to(device) if device is not None else video)
        return prepared

    def preprocess(self, videos, **kwargs):
        batch = super().preprocess(videos, **kwargs)
        batch["pixel_values"] = batch.pop("pixel_values_videos")
        return batch
