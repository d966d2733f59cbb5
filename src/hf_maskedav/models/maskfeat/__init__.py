"""MaskFeat: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.maskfeat import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_maskfeat": ["PRESETS", "MaskFeatConfig"],
        "modeling_maskfeat": [
            "MaskFeatForImageClassification",
            "MaskFeatForPreTraining",
            "MaskFeatForVideoClassification",
            "MaskFeatMaskGenerator",
            "MaskFeatModel",
            "MaskFeatPreTrainedModel",
        ],
        "image_processing_maskfeat": ["MaskFeatImageProcessor"],
        "video_processing_maskfeat": ["MaskFeatVideoProcessor"],
    },
)

if TYPE_CHECKING:
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
