"""Custom pipelines, registered with transformers' pipeline registry when ``transformers.pipelines`` is imported.

The names below resolve on first access (importing ``transformers.pipelines`` takes seconds).
"""

from typing import TYPE_CHECKING

# Load transformers' pipelines package before any module of ours does: its import fires our registration (an import
# hook), which imports ``audio_video_pipeline``; were that module the one importing ``transformers.pipelines``, the
# registration would meet it half-initialised (``import hf_maskedav.pipelines.audio_video_pipeline`` first failed).
import transformers.pipelines  # noqa: F401,E402

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
