"""AV-MAE video processor: Scenic's evaluation clip (32 frames every 2, short side 256, 224 centre crop, [-1, 1])."""

from __future__ import annotations

from transformers.image_utils import PILImageResampling

from ...video import MaskedAVVideoProcessor


class AVMAEVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for AV-MAE (scenic ``av_mae/configs/*/finetune.py`` evaluation settings).

    * Clip: ``num_frames=32`` frames every ``frame_sampling_rate=2`` frames, centred (the pretraining configs use 16
      frames every 4; Scenic's multi-crop test averages 4 clips, which is left to the caller).
    * Transform: short side resized to 256 (``min_resize_test``), 224x224 centre crop, then ``zero_centering``:
      pixels scaled to [-1, 1] (mean 0.5, std 0.5).

    Returns ``pixel_values`` of shape ``(batch, frames, 3, 224, 224)``.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    size = {"shortest_edge": 256}
    crop_size = {"height": 224, "width": 224}
    num_frames = 32
    frame_sampling_rate = 2
    temporal_sampling = "center"


__all__ = ["AVMAEVideoProcessor"]
