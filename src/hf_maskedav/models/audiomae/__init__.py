from .configuration_audiomae import AudioMAEConfig
from .feature_extraction_audiomae import AudioMAEFeatureExtractor
from .modeling_audiomae import (
    AudioMAEForAudioClassification,
    AudioMAEForPreTraining,
    AudioMAEModel,
    AudioMAEPreTrainedModel,
)
