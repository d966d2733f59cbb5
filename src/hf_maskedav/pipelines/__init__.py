"""Custom pipelines, registered with transformers' pipeline registry when ``transformers.pipelines`` is imported.

The names below resolve on first access (importing ``transformers.pipelines`` takes seconds).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "audio_video_classification": [
            "AudioVideoClassificationPipeline",
            "AutoModelForAudioVisualClassification",
            "register_pipeline",
        ]
    },
)

if TYPE_CHECKING:
    from .audio_video_classification import (
        AudioVideoClassificationPipeline,
        AutoModelForAudioVisualClassification,
        register_pipeline,
    )
