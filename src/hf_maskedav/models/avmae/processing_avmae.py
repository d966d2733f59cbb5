"""AV-MAE processor: MAViL's media-file processor with AV-MAE's log-mel extractor and video processor."""

from __future__ import annotations

from ..mavil.processing_mavil import MAViLProcessor


class AVMAEProcessor(MAViLProcessor):
    r"""Processor of AV-MAE: :class:`AVMAEFeatureExtractor` (log-mel, 1000 x 128, ``(x - 1.102) / 2.762``; an
    unverified approximation of the official front-end) and :class:`AVMAEVideoProcessor` (32 frames every 2, 224x224,
    [-1, 1]). Call it as :class:`~hf_maskedav.models.mavil.MAViLProcessor` (media paths or ``audio=``/``videos=``).
    """

    def __init__(self, feature_extractor, video_processor):
        super().__init__(feature_extractor, video_processor)


__all__ = ["AVMAEProcessor"]
