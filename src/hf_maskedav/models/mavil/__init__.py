from .configuration_mavil import MAViLConfig
from .modeling_mavil import (
    MAViLForAudioVisualClassification,
    MAViLForPreTraining,
    MAViLModel,
    MAViLPreTrainedModel,
)
