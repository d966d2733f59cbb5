"""Registration of every model family with the transformers Auto classes (idempotent)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

_REGISTERED = False


def register_auto_classes() -> None:
    """Register configs, models and processors. Called once by ``import hf_maskedav``."""
    global _REGISTERED
    if _REGISTERED:
        return
    from .models.audiomae import (
        AudioMAEConfig,
        AudioMAEFeatureExtractor,
        AudioMAEForAudioClassification,
        AudioMAEForPreTraining,
        AudioMAEModel,
    )

    AutoConfig.register(AudioMAEConfig.model_type, AudioMAEConfig)
    AutoModel.register(AudioMAEConfig, AudioMAEModel)
    AutoModelForPreTraining.register(AudioMAEConfig, AudioMAEForPreTraining)
    AutoModelForAudioClassification.register(AudioMAEConfig, AudioMAEForAudioClassification)
    AutoFeatureExtractor.register(AudioMAEConfig, AudioMAEFeatureExtractor)
    _register_maskfeat()
    _register_mavil()
    _register_video_mae_families()
    _register_cavmae()
    _register_avmae()
    _REGISTERED = True


def _register_maskfeat() -> None:
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        AutoModelForVideoClassification,
        AutoVideoProcessor,
    )

    from .models.maskfeat import (
        MaskFeatConfig,
        MaskFeatForImageClassification,
        MaskFeatForPreTraining,
        MaskFeatForVideoClassification,
        MaskFeatImageProcessor,
        MaskFeatModel,
        MaskFeatVideoProcessor,
    )

    AutoConfig.register(MaskFeatConfig.model_type, MaskFeatConfig)
    AutoModel.register(MaskFeatConfig, MaskFeatModel)
    AutoModelForPreTraining.register(MaskFeatConfig, MaskFeatForPreTraining)
    AutoModelForImageClassification.register(MaskFeatConfig, MaskFeatForImageClassification)
    AutoModelForVideoClassification.register(MaskFeatConfig, MaskFeatForVideoClassification)
    AutoImageProcessor.register(MaskFeatConfig, image_processor_classes={"torchvision": MaskFeatImageProcessor})
    AutoVideoProcessor.register(MaskFeatConfig, MaskFeatVideoProcessor)


def _register_mavil() -> None:
    from transformers import (
        AutoModelForVideoClassification,
        AutoProcessor,
        AutoVideoProcessor,
    )

    from .models.audiomae import AudioMAEFeatureExtractor
    from .models.mavil import (
        MAViLConfig,
        MAViLForAudioVisualClassification,
        MAViLForPreTraining,
        MAViLModel,
        MAViLProcessor,
        MAViLVideoProcessor,
    )
    from .pipelines import AutoModelForAudioVisualClassification, register_pipeline

    AutoConfig.register(MAViLConfig.model_type, MAViLConfig)
    AutoModel.register(MAViLConfig, MAViLModel)
    AutoModelForPreTraining.register(MAViLConfig, MAViLForPreTraining)
    # one classification model for the three tasks: its audio / video / audio+visual heads
    AutoModelForAudioClassification.register(MAViLConfig, MAViLForAudioVisualClassification)
    AutoModelForVideoClassification.register(MAViLConfig, MAViLForAudioVisualClassification)
    AutoModelForAudioVisualClassification.register(MAViLConfig, MAViLForAudioVisualClassification)
    AutoFeatureExtractor.register(MAViLConfig, AudioMAEFeatureExtractor)
    AutoVideoProcessor.register(MAViLConfig, MAViLVideoProcessor)
    AutoProcessor.register(MAViLConfig, MAViLProcessor)
    register_pipeline()


def _register_video_mae_families() -> None:
    """VideoMAE and MAE-ST: configs, models, video processors (``pipeline("video-classification")`` works)."""
    from transformers import AutoModelForVideoClassification, AutoVideoProcessor

    from .models.mae_st import MAESTConfig, MAESTForPreTraining, MAESTForVideoClassification, MAESTModel, MAESTVideoProcessor
    from .models.videomae import (
        MaskedAVVideoMAEConfig,
        MaskedAVVideoMAEForPreTraining,
        MaskedAVVideoMAEForVideoClassification,
        MaskedAVVideoMAEModel,
        MaskedAVVideoMAEVideoProcessor,
    )

    for config, base, pretraining, classification, processor in (
        (MaskedAVVideoMAEConfig, MaskedAVVideoMAEModel, MaskedAVVideoMAEForPreTraining,
         MaskedAVVideoMAEForVideoClassification, MaskedAVVideoMAEVideoProcessor),
        (MAESTConfig, MAESTModel, MAESTForPreTraining, MAESTForVideoClassification, MAESTVideoProcessor),
    ):
        AutoConfig.register(config.model_type, config)
        AutoModel.register(config, base)
        AutoModelForPreTraining.register(config, pretraining)
        AutoModelForVideoClassification.register(config, classification)
        AutoVideoProcessor.register(config, processor)


def _register_cavmae() -> None:
    """CAV-MAE: one classification model for the audio, video and audio-video classification pipelines."""
    from transformers import AutoModelForVideoClassification, AutoProcessor, AutoVideoProcessor

    from .models.cavmae import (
        CAVMAEConfig,
        CAVMAEFeatureExtractor,
        CAVMAEForAudioVisualClassification,
        CAVMAEForPreTraining,
        CAVMAEModel,
        CAVMAEProcessor,
        CAVMAEVideoProcessor,
    )
    from .pipelines import AutoModelForAudioVisualClassification

    AutoConfig.register(CAVMAEConfig.model_type, CAVMAEConfig)
    AutoModel.register(CAVMAEConfig, CAVMAEModel)
    AutoModelForPreTraining.register(CAVMAEConfig, CAVMAEForPreTraining)
    AutoModelForAudioClassification.register(CAVMAEConfig, CAVMAEForAudioVisualClassification)
    AutoModelForVideoClassification.register(CAVMAEConfig, CAVMAEForAudioVisualClassification)
    AutoModelForAudioVisualClassification.register(CAVMAEConfig, CAVMAEForAudioVisualClassification)
    AutoFeatureExtractor.register(CAVMAEConfig, CAVMAEFeatureExtractor)
    AutoVideoProcessor.register(CAVMAEConfig, CAVMAEVideoProcessor)
    AutoProcessor.register(CAVMAEConfig, CAVMAEProcessor)


def _register_avmae() -> None:
    """AV-MAE (Scenic checkpoints, unverified conversion): pretraining encoder/decoder and the MBT classifier."""
    from transformers import AutoModelForVideoClassification, AutoProcessor, AutoVideoProcessor

    from .models.avmae import (
        AVMAEConfig,
        AVMAEFeatureExtractor,
        AVMAEForAudioVisualClassification,
        AVMAEForPreTraining,
        AVMAEModel,
        AVMAEProcessor,
        AVMAEVideoProcessor,
    )
    from .pipelines import AutoModelForAudioVisualClassification

    AutoConfig.register(AVMAEConfig.model_type, AVMAEConfig)
    AutoModel.register(AVMAEConfig, AVMAEModel)
    AutoModelForPreTraining.register(AVMAEConfig, AVMAEForPreTraining)
    AutoModelForAudioClassification.register(AVMAEConfig, AVMAEForAudioVisualClassification)
    AutoModelForVideoClassification.register(AVMAEConfig, AVMAEForAudioVisualClassification)
    AutoModelForAudioVisualClassification.register(AVMAEConfig, AVMAEForAudioVisualClassification)
    AutoFeatureExtractor.register(AVMAEConfig, AVMAEFeatureExtractor)
    AutoVideoProcessor.register(AVMAEConfig, AVMAEVideoProcessor)
    AutoProcessor.register(AVMAEConfig, AVMAEProcessor)
