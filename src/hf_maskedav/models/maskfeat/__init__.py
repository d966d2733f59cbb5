from .configuration_maskfeat import PRESETS, MaskFeatConfig
from .modeling_maskfeat import (
    MaskFeatForImageClassification,
    MaskFeatForPreTraining,
    MaskFeatForVideoClassification,
    MaskFeatMaskGenerator,
    MaskFeatModel,
    MaskFeatPreTrainedModel,
)
from .image_processing_maskfeat import MaskFeatImageProcessor
from .video_processing_maskfeat import MaskFeatVideoProcessor
