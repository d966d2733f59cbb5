from .configuration_mavil import MAViLConfig
from .modeling_mavil import (
    MAViLForAudioVisualClassification,
    MAViLForPreTraining,
    MAViLModel,
    MAViLPreTrainedModel,
)
from .processing_mavil import MAViLProcessor
from .video_processing_mavil import MAViLVideoProcessor
