"""Clip recipes for video training: which frames to read and how to crop, flip and normalise them, per model family.

A :class:`VideoClipRecipe` holds everything a training or evaluation clip needs: the frame sampling (``num_frames``
taken every ``sampling_rate`` source frames, or at ``fps`` frames per second), the spatial augmentation of training
(random resized crop, VideoMAE's multi-scale crop, or a plain resize; horizontal flip), the evaluation geometry
(short-side resize + centre crop, or a squash resize) and the normalisation. :func:`video_recipe` builds it from a
model family's video processor (so the frame count, sizes and statistics agree with inference) and the family's
official training augmentation:

=================  ==========================================================  =========================================
family             pretraining                                                 fine-tuning
=================  ==========================================================  =========================================
VideoMAE           multi-scale crop (scales 1, .875, .75, .66), no flip         random resized crop [0.08, 1], flip
MAE-ST             random resized crop [0.5, 1], aspect [3/4, 4/3], flip        random resized crop [0.08, 1], flip
MaskFeat (video)   random resized crop [0.5, 1], aspect [3/4, 4/3], flip        random resized crop [0.08, 1], flip
MAViL              resize to the square input, no flip (official inference;    same
                   the training augmentation was not published)
AV-MAE             random resized crop [0.5, 1], flip (Scenic reads a random   same
                   crop after the short-side resize and flips; the closest
                   recipe here)
=================  ==========================================================  =========================================

The video processor is the one source of a clip's geometry and statistics: :func:`video_recipe` reads them from it
(frames, sampling, sizes, mean/std, where the evaluation clip lies). The pixel work itself is not delegated to the
processor, on purpose: training needs crops the processor does not make (random resized, multi-scale, flips) and
multi-view testing needs several crops per clip; the evaluation path stays beside them so that one resize/crop/
normalise code serves all three, on uint8 frames in the data workers. Its evaluation clips agree with the
processor's output within 3 grey levels (both resize bilinearly with anti-aliasing; the rounding differs), which
``tests/test_data_video.py::test_eval_clip_matches_the_family_processor`` checks for the VideoMAE, MaskFeat, MAViL
and AV-MAE processors.

Training clips start at a random frame; evaluation clips are centred (MAViL: taken from the start, as its
processor). The functions work on ``uint8`` frames ``[T, H, W, 3]`` as the decoders return them and produce
normalised ``float32`` clips ``[T, 3, h, w]``, the layout the models take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..video.sampling import clip_frame_indices, clip_span, multi_clip_frame_indices

# Official augmentation per family and stage (see the table above and /docs/training_video.md).
FAMILY_AUGMENTATION: dict[str, dict[str, dict]] = {
    "maskedav_videomae": {
        "pretrain": dict(train_crop="multi_scale", flip=False),
        "finetune": dict(train_crop="random_resized", scale=(0.08, 1.0), flip=True),
    },
    "maskedav_mae_st": {
        "pretrain": dict(train_crop="random_resized", scale=(0.5, 1.0), flip=True),
        "finetune": dict(train_crop="random_resized", scale=(0.08, 1.0), flip=True),
    },
    "maskedav_maskfeat": {
        "pretrain": dict(train_crop="random_resized", scale=(0.5, 1.0), flip=True),
        "finetune": dict(train_crop="random_resized", scale=(0.08, 1.0), flip=True),
    },
    "maskedav_mavil": {
        "pretrain": dict(train_crop="resize", flip=False),
        "finetune": dict(train_crop="resize", flip=False),
    },
    "maskedav_avmae": {
        "pretrain": dict(train_crop="random_resized", scale=(0.5, 1.0), flip=True),
        "finetune": dict(train_crop="random_resized", scale=(0.5, 1.0), flip=True),
    },
}


@dataclass
class VideoClipRecipe:
    """How to turn a decoded video into model input clips.

    Args:
        num_frames: frames per clip.
        sampling_rate: distance between sampled frames in source frames (official ``--sampling_rate``).
        fps: sample at this frame rate instead (``sampling_rate = source_fps / fps``; MAViL: 2 fps).
        crop_size: ``(height, width)`` of the model input.
        mean, std: per-channel normalisation of the [0, 1] pixels.
        train_crop: ``"random_resized"`` (scale/ratio of the frame area), ``"multi_scale"`` (VideoMAE's
            ``GroupMultiScaleCrop``: crop sides from ``multi_scales`` times the short side, at 13 fixed positions) or
            ``"resize"`` (the whole frame resized to ``crop_size``).
        scale, ratio: random resized crop area fraction and aspect-ratio ranges.
        multi_scales: crop scales of the multi-scale crop.
        flip: random horizontal flip in training.
        eval_resize: ``"short_side"`` (resize the short side to ``eval_short_side``, centre crop ``crop_size``) or
            ``"squash"`` (resize to ``crop_size``, aspect ratio not kept; MAViL).
        eval_short_side: short side before the centre crop (the processor's ``size["shortest_edge"]``).
        eval_position: where the evaluation clip lies in time: ``"center"`` or ``"start"``.
    """

    num_frames: int = 16
    sampling_rate: float = 4
    fps: float | None = None
    crop_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    train_crop: str = "random_resized"
    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    multi_scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: bool = True
    eval_resize: str = "short_side"
    eval_short_side: int | None = None
    eval_position: str = "center"
    _stats: tuple = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.train_crop not in ("random_resized", "multi_scale", "resize"):
            raise ValueError(f"train_crop must be 'random_resized', 'multi_scale' or 'resize', got {self.train_crop!r}")
        if self.eval_resize not in ("short_side", "squash"):
            raise ValueError(f"eval_resize must be 'short_side' or 'squash', got {self.eval_resize!r}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        self.crop_size = (int(self.crop_size[0]), int(self.crop_size[1]))
        if self.eval_short_side is None:
            self.eval_short_side = max(self.crop_size)
        self._stats = (torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1),
                       torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1))

    def rate_for(self, source_fps: float | None) -> float:
        """Source frames between two sampled frames for a video of ``source_fps``."""
        if self.fps is None:
            return float(self.sampling_rate)
        if not source_fps:
            return 1.0  # unknown source rate: frames taken as already at the target rate (as the MAViL processor)
        return float(source_fps) / float(self.fps)

    # -- temporal ----------------------------------------------------------------------------------------------------

    def train_indices(self, total_frames: int, source_fps: float | None, rng: np.random.Generator) -> torch.Tensor:
        """One training clip: ``num_frames`` frames every ``rate`` frames from a uniformly random start."""
        rate = self.rate_for(source_fps)
        free = max(total_frames - clip_span(self.num_frames, rate), 0)
        start = int(rng.integers(0, free + 1))
        return clip_frame_indices(total_frames, self.num_frames, rate, start / free if free else 0.0)

    def eval_indices(self, total_frames: int, source_fps: float | None, num_clips: int = 1) -> torch.Tensor:
        """``[num_clips, num_frames]``: the evaluation clip (centred or from the start), or ``num_clips`` clips
        spread evenly over the video (multi-view testing)."""
        rate = self.rate_for(source_fps)
        if num_clips == 1:
            return clip_frame_indices(total_frames, self.num_frames, rate, self.eval_position)[None]
        return multi_clip_frame_indices(total_frames, self.num_frames, rate, num_clips)

    # -- spatial -----------------------------------------------------------------------------------------------------

    def normalize(self, video: torch.Tensor) -> torch.Tensor:
        """``uint8``/float ``[T, 3, h, w]`` in 0..255 -> normalised float32."""
        mean, std = self._stats
        return (video.float() / 255.0 - mean) / std

    def train_clip(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Augment one clip: ``uint8 [T, H, W, 3]`` -> normalised ``[T, 3, h, w]`` (crop, resize, flip)."""
        video = frames.permute(0, 3, 1, 2)  # [T, 3, H, W]
        height, width = video.shape[-2:]
        if self.train_crop == "random_resized":
            top, left, h, w = random_resized_crop_box(height, width, self.scale, self.ratio, rng)
            video = video[..., top : top + h, left : left + w]
        elif self.train_crop == "multi_scale":
            top, left, h, w = multi_scale_crop_box(height, width, self.crop_size, self.multi_scales, rng)
            video = video[..., top : top + h, left : left + w]
        video = resize(video, self.crop_size)
        if self.flip and rng.random() < 0.5:
            video = video.flip(-1)
        return self.normalize(video)

    def eval_clip(self, frames: torch.Tensor, num_crops: int = 1) -> torch.Tensor:
        """``uint8 [T, H, W, 3]`` -> ``[num_crops, T, 3, h, w]``: resize, then the centre crop (or ``num_crops``
        crops spread along the long side, official 3-crop testing)."""
        video = frames.permute(0, 3, 1, 2)
        if self.eval_resize == "squash":
            video = resize(video, self.crop_size)
            return self.normalize(video)[None].expand(num_crops, -1, -1, -1, -1).contiguous()
        video = resize(video, short_side_size(*video.shape[-2:], self.eval_short_side))
        return torch.stack([self.normalize(crop) for crop in spatial_crops(video, self.crop_size, num_crops)])


# ---------------------------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------------------------


def resize(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[T, C, H, W]`` (any dtype) -> float ``[T, C, h, w]`` in the input's value range: bilinear with
    anti-aliasing when shrinking (as torchvision's ``resize`` used by the transformers video processors)."""
    if tuple(video.shape[-2:]) == tuple(size):
        return video.float()
    return torch.nn.functional.interpolate(video.float(), size=tuple(size), mode="bilinear", align_corners=False,
                                           antialias=True)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Output size with the short side at ``short_side`` and the aspect ratio kept (transformers' rounding)."""
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def spatial_crops(video: torch.Tensor, size: tuple[int, int], num_crops: int = 1) -> list[torch.Tensor]:
    """Centre crop, or ``num_crops`` crops spread from one end of the long side to the other (3-crop testing)."""
    height, width = video.shape[-2:]
    ch, cw = size
    if ch > height or cw > width:
        raise ValueError(f"cannot crop {ch}x{cw} from frames of {height}x{width}; resize them first")
    crops = []
    positions = [0.5] if num_crops == 1 else [i / (num_crops - 1) for i in range(num_crops)]
    for p in positions:
        if width - cw >= height - ch:  # landscape: crops move along the width
            top, left = (height - ch) // 2, int(round((width - cw) * p))
        else:
            top, left = int(round((height - ch) * p)), (width - cw) // 2
        crops.append(video[..., top : top + ch, left : left + cw])
    return crops


def random_resized_crop_box(height: int, width: int, scale, ratio, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of torchvision's ``RandomResizedCrop`` (10 tries, then a centre crop in range)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def multi_scale_crop_box(height: int, width: int, output_size: tuple[int, int], scales, rng: np.random.Generator,
                         max_distort: int = 1) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of VideoMAE's ``GroupMultiScaleCrop`` (``fix_crop`` and ``more_fix_crop`` on).

    Crop sides are ``int(short_side * s)`` for ``s`` in ``scales`` (snapped to the output side when within 3 pixels);
    a random (width, height) pair whose scale indices differ by at most ``max_distort``; the crop sits at one of 13
    fixed positions (corners, centre, edge middles, quarter points).
    """
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    out_h, out_w = output_size
    crop_h = [out_h if abs(s - out_h) < 3 else s for s in sizes]
    crop_w = [out_w if abs(s - out_w) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(crop_h) for j, w in enumerate(crop_w) if abs(i - j) <= max_distort]
    w, h = pairs[int(rng.integers(len(pairs)))]
    w, h = min(w, width), min(h, height)
    ws, hs = (width - w) // 4, (height - h) // 4
    offsets = [
        (0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs),  # corners and centre
        (0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),  # edge middles
        (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs),  # quarter points
    ]
    left, top = offsets[int(rng.integers(len(offsets)))]
    return top, left, h, w


# ---------------------------------------------------------------------------------------------------------------------
# Recipes from a video processor
# ---------------------------------------------------------------------------------------------------------------------


def _pair(size) -> tuple[int, int] | None:
    if size is None:
        return None
    get = size.get if isinstance(size, dict) else (lambda key, default=None: getattr(size, key, default))
    if get("height") is not None and get("width") is not None:
        return int(get("height")), int(get("width"))
    if get("shortest_edge") is not None:
        return int(get("shortest_edge")), int(get("shortest_edge"))
    return None


def video_recipe(processor, model_type: str | None = None, stage: str = "pretrain", **overrides) -> VideoClipRecipe:
    """The clip recipe of a model family: geometry and statistics from its video ``processor``, training
    augmentation from :data:`FAMILY_AUGMENTATION` (``model_type`` and ``stage`` = ``"pretrain"``/``"finetune"``),
    then ``overrides`` (any :class:`VideoClipRecipe` field)."""
    if stage not in ("pretrain", "finetune"):
        raise ValueError(f"stage must be 'pretrain' or 'finetune', got {stage!r}")
    size = getattr(processor, "size", None)
    crop = _pair(getattr(processor, "crop_size", None)) if getattr(processor, "do_center_crop", True) else None
    squash = crop is None
    if squash:
        crop = _pair(size)
    if crop is None:
        raise ValueError(f"cannot tell the input size of {type(processor).__name__} (size={size!r})")
    short = None
    if not squash:
        short = size.get("shortest_edge") if isinstance(size, dict) else getattr(size, "shortest_edge", None)
    fields = dict(
        num_frames=int(processor.num_frames),
        sampling_rate=float(getattr(processor, "frame_sampling_rate", None) or 1),
        fps=getattr(processor, "fps", None),
        crop_size=crop,
        mean=tuple(float(v) for v in processor.image_mean),
        std=tuple(float(v) for v in processor.image_std),
        eval_resize="squash" if squash else "short_side",
        eval_short_side=int(short) if short else None,
        eval_position="start" if getattr(processor, "temporal_sampling", "center") == "start" else "center",
    )
    fields.update(FAMILY_AUGMENTATION.get(model_type, {}).get(stage, {}))
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return VideoClipRecipe(**fields)


def with_overrides(recipe: VideoClipRecipe, **overrides) -> VideoClipRecipe:
    """A copy with some fields changed (``None`` values ignored)."""
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


__all__ = [
    "FAMILY_AUGMENTATION",
    "VideoClipRecipe",
    "multi_scale_crop_box",
    "random_resized_crop_box",
    "resize",
    "short_side_size",
    "spatial_crops",
    "video_recipe",
    "with_overrides",
]
