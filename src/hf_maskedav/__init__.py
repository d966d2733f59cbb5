"""hf_maskedav: masked self-supervised audio and video models for the Hugging Face ecosystem.

``import hf_maskedav`` is light (milliseconds on top of ``import transformers``): it imports no model, processor or
pipeline module. Each public name below is imported from the module that defines it on first access, so
``from hf_maskedav import AudioMAEConfig`` loads the Audio-MAE configuration only. The import also arranges the
registration of every family with the transformers Auto classes and pipeline registry
(:mod:`hf_maskedav.registration`), done when transformers loads those, so ``AutoModel.from_pretrained(folder)`` and
``pipeline("audio-classification", model=folder)`` work and import only the family of ``folder``.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .registration import register_auto_classes, register_when_transformers_loads  # noqa: F401 (public before)
from .version import __version__

register_when_transformers_loads()

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "models.audiomae": [
            "AudioMAEConfig",
            "AudioMAEFeatureExtractor",
            "AudioMAEForAudioClassification",
            "AudioMAEForPreTraining",
            "AudioMAEModel",
            "AudioMAEPreTrainedModel",
        ],
        "models.avmae": [
            "AVMAEConfig",
            "AVMAEFeatureExtractor",
            "AVMAEForAudioVisualClassification",
            "AVMAEForPreTraining",
            "AVMAEModel",
            "AVMAEPreTrainedModel",
            "AVMAEProcessor",
            "AVMAEVideoProcessor",
        ],
        "models.cavmae": [
            "CAVMAEConfig",
            "CAVMAEFeatureExtractor",
            "CAVMAEForAudioVisualClassification",
            "CAVMAEForPreTraining",
            "CAVMAEModel",
            "CAVMAEPreTrainedModel",
            "CAVMAEProcessor",
            "CAVMAEVideoProcessor",
        ],
        "models.mavil": [
            "MAViLConfig",
            "MAViLForAudioVisualClassification",
            "MAViLForPreTraining",
            "MAViLModel",
            "MAViLPreTrainedModel",
            "MAViLProcessor",
            "MAViLVideoProcessor",
        ],
        "models.maskfeat": [
            "MaskFeatConfig",
            "MaskFeatForImageClassification",
            "MaskFeatForPreTraining",
            "MaskFeatForVideoClassification",
            "MaskFeatImageProcessor",
            "MaskFeatMaskGenerator",
            "MaskFeatModel",
            "MaskFeatPreTrainedModel",
            "MaskFeatVideoProcessor",
        ],
        "models.mae_st": [
            "MAESTConfig",
            "MAESTForPreTraining",
            "MAESTForVideoClassification",
            "MAESTModel",
            "MAESTPreTrainedModel",
            "MAESTVideoProcessor",
        ],
        "models.videomae": [
            "MaskedAVVideoMAEConfig",
            "MaskedAVVideoMAEForPreTraining",
            "MaskedAVVideoMAEForVideoClassification",
            "MaskedAVVideoMAEModel",
            "MaskedAVVideoMAEPreTrainedModel",
            "MaskedAVVideoMAEVideoProcessor",
        ],
    },
    eager={"__version__": __version__},
)

if TYPE_CHECKING:
    from .models.audiomae import (
        AudioMAEConfig,
        AudioMAEFeatureExtractor,
        AudioMAEForAudioClassification,
        AudioMAEForPreTraining,
        AudioMAEModel,
        AudioMAEPreTrainedModel,
    )
    from .models.avmae import (
        AVMAEConfig,
        AVMAEFeatureExtractor,
        AVMAEForAudioVisualClassification,
        AVMAEForPreTraining,
        AVMAEModel,
        AVMAEPreTrainedModel,
        AVMAEProcessor,
        AVMAEVideoProcessor,
    )
    from .models.cavmae import (
        CAVMAEConfig,
        CAVMAEFeatureExtractor,
        CAVMAEForAudioVisualClassification,
        CAVMAEForPreTraining,
        CAVMAEModel,
        CAVMAEPreTrainedModel,
        CAVMAEProcessor,
        CAVMAEVideoProcessor,
    )
    from .models.mavil import (
        MAViLConfig,
        MAViLForAudioVisualClassification,
        MAViLForPreTraining,
        MAViLModel,
        MAViLPreTrainedModel,
        MAViLProcessor,
        MAViLVideoProcessor,
    )
    from .models.maskfeat import (
        MaskFeatConfig,
        MaskFeatForImageClassification,
        MaskFeatForPreTraining,
        MaskFeatForVideoClassification,
        MaskFeatImageProcessor,
        MaskFeatMaskGenerator,
        MaskFeatModel,
        MaskFeatPreTrainedModel,
        MaskFeatVideoProcessor,
    )
    from .models.mae_st import (
        MAESTConfig,
        MAESTForPreTraining,
        MAESTForVideoClassification,
        MAESTModel,
        MAESTPreTrainedModel,
        MAESTVideoProcessor,
    )
    from .models.videomae import (
        MaskedAVVideoMAEConfig,
        MaskedAVVideoMAEForPreTraining,
        MaskedAVVideoMAEForVideoClassification,
        MaskedAVVideoMAEModel,
        MaskedAVVideoMAEPreTrainedModel,
        MaskedAVVideoMAEVideoProcessor,
    )
