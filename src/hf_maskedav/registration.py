"""Registration of every model family with the transformers Auto classes (idempotent)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

_REGISTERED = False


def register_auto_classes() -> None:
    """Register configs, models and processors. Called once by ``import hf_maskedav``."""
    global _REGISTERED
    if _REGISTERED:
        return
    from .models.audiomae import (
        AudioMAEConfig,
        AudioMAEFeatureExtractor,
        AudioMAEForAudioClassification,
        AudioMAEForPreTraining,
        AudioMAEModel,
    )

    AutoConfig.register(AudioMAEConfig.model_type, AudioMAEConfig)
    AutoModel.register(AudioMAEConfig, AudioMAEModel)
    AutoModelForPreTraining.register(AudioMAEConfig, AudioMAEForPreTraining)
    AutoModelForAudioClassification.register(AudioMAEConfig, AudioMAEForAudioClassification)
    AutoFeatureExtractor.register(AudioMAEConfig, AudioMAEFeatureExtractor)
    _REGISTERED = True
