from .configuration_avmae import AVMAEConfig
from .feature_extraction_avmae import AVMAEFeatureExtractor
from .modeling_avmae import (
    AVMAEForAudioVisualClassification,
    AVMAEForPreTraining,
    AVMAEModel,
    AVMAEPreTrainedModel,
)
from .processing_avmae import AVMAEProcessor
from .video_processing_avmae import AVMAEVideoProcessor
