from .configuration_videomae import MaskedAVVideoMAEConfig
from .modeling_videomae import (
    MaskedAVVideoMAEForPreTraining,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEModel,
    MaskedAVVideoMAEPreTrainedModel,
)
from .video_processing_videomae import MaskedAVVideoMAEVideoProcessor
