"""CAV-MAE: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.cavmae import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_cavmae": ["CAVMAEConfig"],
        "feature_extraction_cavmae": ["CAVMAEFeatureExtractor"],
        "modeling_cavmae": [
            "CAVMAEForAudioVisualClassification",
            "CAVMAEForPreTraining",
            "CAVMAEModel",
            "CAVMAEPreTrainedModel",
        ],
        "processing_cavmae": ["CAVMAEProcessor"],
        "video_processing_cavmae": ["CAVMAEVideoProcessor"],
    },
)

if TYPE_CHECKING:
    from .configuration_cavmae import CAVMAEConfig
    from .feature_extraction_cavmae import CAVMAEFeatureExtractor
    from .modeling_cavmae import (
        CAVMAEForAudioVisualClassification,
        CAVMAEForPreTraining,
        CAVMAEModel,
        CAVMAEPreTrainedModel,
    )
    from .processing_cavmae import CAVMAEProcessor
    from .video_processing_cavmae import CAVMAEVideoProcessor
