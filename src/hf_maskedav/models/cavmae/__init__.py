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
