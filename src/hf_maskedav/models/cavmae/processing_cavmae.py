"""CAV-MAE processor: MAViL's media-file processor with CAV-MAE's feature extractor and frame processor."""

from __future__ import annotations

from ..mavil.processing_mavil import MAViLProcessor


class CAVMAEProcessor(MAViLProcessor):
    r"""Processor of CAV-MAE: :class:`CAVMAEFeatureExtractor` (Kaldi fbank, 1024 x 128, ``(x + 5.081) / 4.4849``) and
    :class:`CAVMAEVideoProcessor` (the middle of the 10 official frames, 224x224, ImageNet statistics).

    Everything else is :class:`~hf_maskedav.models.mavil.MAViLProcessor`: call it with media paths (both tracks
    decoded, the audio resampled to 16 kHz and averaged over channels) or with ``audio=``/``videos=`` arrays, and
    ``modalities="audio"``/``"video"`` for one track. Returns ``input_values`` ``[N, 1024, 128]`` and/or
    ``pixel_values`` ``[N, 1, 3, 224, 224]`` (the model accepts the one-frame axis).
    """

    def __init__(self, feature_extractor, video_processor):
        super().__init__(feature_extractor, video_processor)


__all__ = ["CAVMAEProcessor"]
