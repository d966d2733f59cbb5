"""MaskFeat video processor: SlowFast's Kinetics evaluation pipeline with its mean/std (0.45 / 0.225)."""

from __future__ import annotations

from transformers.image_utils import PILImageResampling

from ...video import MaskedAVVideoProcessor


class MaskFeatVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for MaskFeat video models (MViTv2 and video ViT, SlowFast ``configs/masked_ssl/k400_*``).

    Defaults follow SlowFast's single-view Kinetics test pipeline: 16 frames taken every 4 frames from the centre of
    the video (``DATA.NUM_FRAMES``, ``DATA.SAMPLING_RATE``), short side resized to 256 (``TRAIN_JITTER_SCALES[0]``,
    bilinear), 224x224 centre crop (``TEST_CROP_SIZE``), pixels scaled to [0, 1] and normalised with SlowFast's
    Kinetics statistics ``DATA.MEAN = 0.45``, ``DATA.STD = 0.225`` per channel. The HOG targets of pre-training are
    computed on these normalised pixels, so keep the statistics the model was trained with.

    Inputs and other arguments: see :class:`hf_maskedav.video.MaskedAVVideoProcessor` (file paths, arrays, lists of
    frames; ``num_frames``, ``frame_sampling_rate``, ``temporal_sampling``, ``size``, ``crop_size``...).

    Returns:
        ``BatchFeature`` with ``pixel_values`` of shape ``(batch, num_frames, 3, crop_height, crop_width)``.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = [0.45, 0.45, 0.45]
    image_std = [0.225, 0.225, 0.225]
    size = {"shortest_edge": 256}
    crop_size = {"height": 224, "width": 224}
    num_frames = 16
    frame_sampling_rate = 4


__all__ = ["MaskFeatVideoProcessor"]
