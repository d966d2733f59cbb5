"""Audio-MAE: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.audiomae import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_audiomae": ["AudioMAEConfig"],
        "feature_extraction_audiomae": ["AudioMAEFeatureExtractor"],
        "modeling_audiomae": [
            "AudioMAEForAudioClassification",
            "AudioMAEForPreTraining",
            "AudioMAEModel",
            "AudioMAEPreTrainedModel",
        ],
    },
)

if TYPE_CHECKING:
    from .configuration_audiomae import AudioMAEConfig
    from .feature_extraction_audiomae import AudioMAEFeatureExtractor
    from .modeling_audiomae import (
        AudioMAEForAudioClassification,
        AudioMAEForPreTraining,
        AudioMAEModel,
        AudioMAEPreTrainedModel,
    )
