"""MAE-ST: configuration, models and processors (imported on first use of a name)."""

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# names resolve on first access: ``from hf_maskedav.models.mae_st import X`` imports only the module defining X
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "configuration_mae_st": ["MAESTConfig"],
        "modeling_mae_st": ["MAESTForPreTraining", "MAESTForVideoClassification", "MAESTModel", "MAESTPreTrainedModel"],
        "video_processing_mae_st": ["MAESTVideoProcessor"],
    },
)

if TYPE_CHECKING:
    from .configuration_mae_st import MAESTConfig
    from .modeling_mae_st import MAESTForPreTraining, MAESTForVideoClassification, MAESTModel, MAESTPreTrainedModel
    from .video_processing_mae_st import MAESTVideoProcessor
