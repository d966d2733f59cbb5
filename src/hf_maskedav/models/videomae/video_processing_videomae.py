"""VideoMAE video processor: the official evaluation pipeline with ImageNet statistics."""

from __future__ import annotations

from ...video import MaskedAVVideoProcessor
from .configuration_videomae import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD


class MaskedAVVideoMAEVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for VideoMAE.

    Defaults follow the official Kinetics-400 recipe (MCG-NJU/VideoMAE ``datasets.py``/``kinetics.py``): 16 frames
    every 4 frames (use ``frame_sampling_rate=2`` for Something-Something V2), short side resized to 224 (bilinear),
    224x224 centre crop, pixels scaled to [0, 1] and normalised with the ImageNet mean (0.485, 0.456, 0.406) and std
    (0.229, 0.224, 0.225). See :class:`~hf_maskedav.video.MaskedAVVideoProcessor` for every argument.
    """

    image_mean = list(IMAGENET_DEFAULT_MEAN)
    image_std = list(IMAGENET_DEFAULT_STD)
    num_frames = 16
    frame_sampling_rate = 4


__all__ = ["MaskedAVVideoMAEVideoProcessor"]
