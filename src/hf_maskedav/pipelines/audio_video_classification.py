"""``pipeline("audio-video-classification")``: classify a media file (audio + video tracks) or a pair of arrays.

Registered with transformers' pipeline registry once ``import hf_maskedav`` and ``transformers.pipelines`` are both
imported (in either order), together with an Auto class,
:class:`AutoModelForAudioVisualClassification`, that maps each audio-visual config to its classification model::

    from transformers import pipeline
    import hf_maskedav  # registers the task
    classifier = pipeline("audio-video-classification", model="path/to/mavil-finetuned")
    classifier("clip.mp4")                              # both tracks
    classifier("clip.mp4", modalities="audio")          # audio track only (uses the model's audio head)
    classifier({"audio": waveform, "sampling_rate": 16000, "video": frames, "video_fps": 25})
"""

from __future__ import annotations

from collections import OrderedDict

from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from ..registration import AUDIO_VISUAL_AUTO_CLASS, register_models
from .audio_video_pipeline import AudioVideoClassificationPipeline

MODEL_FOR_AUDIO_VISUAL_CLASSIFICATION_MAPPING = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())
# MAViL, CAV-MAE, AV-MAE: deferred references, so the model module is imported when a folder of that family is loaded
register_models(MODEL_FOR_AUDIO_VISUAL_CLASSIFICATION_MAPPING, AUDIO_VISUAL_AUTO_CLASS)


class AutoModelForAudioVisualClassification(_BaseAutoModelClass):
    """Auto class for audio-visual classification models (e.g. :class:`~hf_maskedav.MAViLForAudioVisualClassification`)."""

    _model_mapping = MODEL_FOR_AUDIO_VISUAL_CLASSIFICATION_MAPPING


def register_pipeline() -> None:
    """Register the task with transformers' pipeline registry (idempotent)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if "audio-video-classification" in PIPELINE_REGISTRY.get_supported_tasks():
        return
    PIPELINE_REGISTRY.register_pipeline(
        "audio-video-classification",
        pipeline_class=AudioVideoClassificationPipeline,
        pt_model=AutoModelForAudioVisualClassification,
        type="multimodal",
    )


__all__ = [
    "AudioVideoClassificationPipeline",
    "AutoModelForAudioVisualClassification",
    "MODEL_FOR_AUDIO_VISUAL_CLASSIFICATION_MAPPING",
    "register_pipeline",
]
