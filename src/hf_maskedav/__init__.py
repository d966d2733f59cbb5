"""hf_maskedav: masked self-supervised audio and video models for the Hugging Face ecosystem.

Importing the package registers every model family with the transformers Auto classes, so
``AutoModel.from_pretrained(folder)`` and ``pipeline("audio-classification", model=folder)`` work.
"""

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
from .registration import register_auto_classes
from .version import __version__

register_auto_classes()

__all__ = [
    "AudioMAEConfig",
    "AudioMAEFeatureExtractor",
    "AudioMAEForAudioClassification",
    "AudioMAEForPreTraining",
    "AudioMAEModel",
    "AudioMAEPreTrainedModel",
    "AVMAEConfig",
    "AVMAEFeatureExtractor",
    "AVMAEForAudioVisualClassification",
    "AVMAEForPreTraining",
    "AVMAEModel",
    "AVMAEPreTrainedModel",
    "AVMAEProcessor",
    "AVMAEVideoProcessor",
    "CAVMAEConfig",
    "CAVMAEFeatureExtractor",
    "CAVMAEForAudioVisualClassification",
    "CAVMAEForPreTraining",
    "CAVMAEModel",
    "CAVMAEPreTrainedModel",
    "CAVMAEProcessor",
    "CAVMAEVideoProcessor",
    "MAViLConfig",
    "MAViLForAudioVisualClassification",
    "MAViLForPreTraining",
    "MAViLModel",
    "MAViLPreTrainedModel",
    "MAViLProcessor",
    "MAViLVideoProcessor",
    "MaskFeatConfig",
    "MaskFeatForImageClassification",
    "MaskFeatForPreTraining",
    "MaskFeatForVideoClassification",
    "MaskFeatImageProcessor",
    "MaskFeatMaskGenerator",
    "MaskFeatModel",
    "MaskFeatPreTrainedModel",
    "MaskFeatVideoProcessor",
    "MAESTConfig",
    "MAESTForPreTraining",
    "MAESTForVideoClassification",
    "MAESTModel",
    "MAESTPreTrainedModel",
    "MAESTVideoProcessor",
    "MaskedAVVideoMAEConfig",
    "MaskedAVVideoMAEForPreTraining",
    "MaskedAVVideoMAEForVideoClassification",
    "MaskedAVVideoMAEModel",
    "MaskedAVVideoMAEPreTrainedModel",
    "MaskedAVVideoMAEVideoProcessor",
    "__version__",
]
