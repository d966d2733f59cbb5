"""MAViL: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.mavil import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_mavil": ["MAViLConfig"],
        "modeling_mavil": [
            "MAViLForAudioVisualClassification",
            "MAViLForPreTraining",
            "MAViLForStage2PreTraining",
            "MAViLModel",
            "MAViLPreTrainedModel",
        ],
        "processing_mavil": ["MAViLProcessor"],
        "video_processing_mavil": ["MAViLVideoProcessor"],
    },
)

if TYPE_CHECKING:
    from .configuration_mavil import MAViLConfig
    from .modeling_mavil import (
        MAViLForAudioVisualClassification,
        MAViLForPreTraining,
        MAViLForStage2PreTraining,
        MAViLModel,
        MAViLPreTrainedModel,
    )
    from .processing_mavil import MAViLProcessor
    from .video_processing_mavil import MAViLVideoProcessor
