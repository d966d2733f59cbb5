from .configuration_maskfeat import PRESETS, MaskFeatConfig
from .modeling_maskfeat import (
    MaskFeatForImageClassification,
    MaskFeatForPreTraining,
    MaskFeatForVideoClassification,
    MaskFeatMaskGenerator,
    MaskFeatModel,
    MaskFeatPreTrainedModel,
)
