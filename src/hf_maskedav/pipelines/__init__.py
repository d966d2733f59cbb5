"""Custom pipelines registered with transformers' pipeline registry by ``import hf_maskedav``."""

from .audio_video_classification import (
    AudioVideoClassificationPipeline,
    AutoModelForAudioVisualClassification,
    register_pipeline,
)

__all__ = ["AudioVideoClassificationPipeline", "AutoModelForAudioVisualClassification", "register_pipeline"]
