"""VideoMAE: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.videomae import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_videomae": ["MaskedAVVideoMAEConfig"],
        "modeling_videomae": [
            "MaskedAVVideoMAEForPreTraining",
            "MaskedAVVideoMAEForVideoClassification",
            "MaskedAVVideoMAEModel",
            "MaskedAVVideoMAEPreTrainedModel",
        ],
        "video_processing_videomae": ["MaskedAVVideoMAEVideoProcessor"],
    },
)

if TYPE_CHECKING:
    from .configuration_videomae import MaskedAVVideoMAEConfig
    from .modeling_videomae import (
        MaskedAVVideoMAEForPreTraining,
        MaskedAVVideoMAEForVideoClassification,
        MaskedAVVideoMAEModel,
        MaskedAVVideoMAEPreTrainedModel,
    )
    from .video_processing_videomae import MaskedAVVideoMAEVideoProcessor
