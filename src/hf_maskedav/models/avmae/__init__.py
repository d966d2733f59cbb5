"""AV-MAE: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.avmae import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_avmae": ["AVMAEConfig"],
        "feature_extraction_avmae": ["AVMAEFeatureExtractor"],
        "modeling_avmae": [
            "AVMAEForAudioVisualClassification",
            "AVMAEForPreTraining",
            "AVMAEModel",
            "AVMAEPreTrainedModel",
        ],
        "processing_avmae": ["AVMAEProcessor"],
        "video_processing_avmae": ["AVMAEVideoProcessor"],
    },
)

if TYPE_CHECKING:
    from .configuration_avmae import AVMAEConfig
    from .feature_extraction_avmae import AVMAEFeatureExtractor
    from .modeling_avmae import AVMAEForAudioVisualClassification, AVMAEForPreTraining, AVMAEModel, AVMAEPreTrainedModel
    from .processing_avmae import AVMAEProcessor
    from .video_processing_avmae import AVMAEVideoProcessor
