"""Registration of every model family with the transformers Auto classes and pipelines, without importing them.

``import hf_maskedav`` only calls :func:`register_when_transformers_loads` (a few milliseconds): each part of the
registration runs when transformers imports the module it registers with (:mod:`hf_maskedav._import_hooks`), or at
once if transformers already did:

* ``transformers.models.auto.configuration_auto``: the config classes, with ``AutoConfig.register`` (the configuration
  modules are small: they import ``PreTrainedConfig`` only);
* ``modeling_auto``, ``feature_extraction_auto``, ``image_processing_auto``, ``video_processing_auto``,
  ``processing_auto``: a :class:`~hf_maskedav._lazy.Deferred` reference per class, put in the Auto mapping's
  registered content (made a :class:`~hf_maskedav._lazy.DeferredContent`). ``AutoModel.from_pretrained`` on an
  Audio-MAE folder then imports ``hf_maskedav.models.audiomae.modeling_audiomae`` and no other model module;
* ``transformers.pipelines``: the ``audio-video-classification`` task.

:data:`FAMILIES` is the single table of the families: what is registered where, the name people know each by, and
the package whose public names ``hf_maskedav`` re-exports (``hf_maskedav.models.<family>``). The remote-code export,
the pipeline's Auto class and the demo read it too. :func:`register_auto_classes` does everything now (it imports the
transformers modules, not ours).
"""

from __future__ import annotations

import importlib

from ._import_hooks import when_imported
from ._lazy import Deferred, deferred_content

_MODELS = "hf_maskedav.models."

# family (its package hf_maskedav.models.<family>) -> {"name": what people call it, "config": module:Class,
# Auto class name: module:Class}; modules relative to hf_maskedav.models
FAMILIES: dict[str, dict[str, str]] = {
    "audiomae": {
        "name": "Audio-MAE",
        "config": "audiomae.configuration_audiomae:AudioMAEConfig",
        "AutoModel": "audiomae.modeling_audiomae:AudioMAEModel",
        "AutoModelForPreTraining": "audiomae.modeling_audiomae:AudioMAEForPreTraining",
        "AutoModelForAudioClassification": "audiomae.modeling_audiomae:AudioMAEForAudioClassification",
        "AutoFeatureExtractor": "audiomae.feature_extraction_audiomae:AudioMAEFeatureExtractor",
        # AutoProcessor too: without it, AutoProcessor on a folder exported with remote code (auto_map in
        # preprocessor_config.json) reaches AutoImageProcessor's legacy feature-extractor fallback, which asks the
        # user whether to run the folder's code although the package's class serves it
        "AutoProcessor": "audiomae.feature_extraction_audiomae:AudioMAEFeatureExtractor",
    },
    "maskfeat": {
        "name": "MaskFeat",
        "config": "maskfeat.configuration_maskfeat:MaskFeatConfig",
        "AutoModel": "maskfeat.modeling_maskfeat:MaskFeatModel",
        "AutoModelForPreTraining": "maskfeat.modeling_maskfeat:MaskFeatForPreTraining",
        "AutoModelForImageClassification": "maskfeat.modeling_maskfeat:MaskFeatForImageClassification",
        "AutoModelForVideoClassification": "maskfeat.modeling_maskfeat:MaskFeatForVideoClassification",
        "AutoImageProcessor": "maskfeat.image_processing_maskfeat:MaskFeatImageProcessor",
        "AutoVideoProcessor": "maskfeat.video_processing_maskfeat:MaskFeatVideoProcessor",
    },
    # MAViL, CAV-MAE, AV-MAE: one classification model for the audio, video and audio-visual classification tasks
    # (its audio / video / audio+visual heads)
    "mavil": {
        "name": "MAViL",
        "config": "mavil.configuration_mavil:MAViLConfig",
        "AutoModel": "mavil.modeling_mavil:MAViLModel",
        "AutoModelForPreTraining": "mavil.modeling_mavil:MAViLForPreTraining",
        "AutoModelForAudioClassification": "mavil.modeling_mavil:MAViLForAudioVisualClassification",
        "AutoModelForVideoClassification": "mavil.modeling_mavil:MAViLForAudioVisualClassification",
        "AutoModelForAudioVisualClassification": "mavil.modeling_mavil:MAViLForAudioVisualClassification",
        "AutoFeatureExtractor": "audiomae.feature_extraction_audiomae:AudioMAEFeatureExtractor",
        "AutoVideoProcessor": "mavil.video_processing_mavil:MAViLVideoProcessor",
        "AutoProcessor": "mavil.processing_mavil:MAViLProcessor",
    },
    "videomae": {
        "name": "VideoMAE",
        "config": "videomae.configuration_videomae:MaskedAVVideoMAEConfig",
        "AutoModel": "videomae.modeling_videomae:MaskedAVVideoMAEModel",
        "AutoModelForPreTraining": "videomae.modeling_videomae:MaskedAVVideoMAEForPreTraining",
        "AutoModelForVideoClassification": "videomae.modeling_videomae:MaskedAVVideoMAEForVideoClassification",
        "AutoVideoProcessor": "videomae.video_processing_videomae:MaskedAVVideoMAEVideoProcessor",
    },
    "mae_st": {
        "name": "MAE-ST",
        "config": "mae_st.configuration_mae_st:MAESTConfig",
        "AutoModel": "mae_st.modeling_mae_st:MAESTModel",
        "AutoModelForPreTraining": "mae_st.modeling_mae_st:MAESTForPreTraining",
        "AutoModelForVideoClassification": "mae_st.modeling_mae_st:MAESTForVideoClassification",
        "AutoVideoProcessor": "mae_st.video_processing_mae_st:MAESTVideoProcessor",
    },
    "cavmae": {
        "name": "CAV-MAE",
        "config": "cavmae.configuration_cavmae:CAVMAEConfig",
        "AutoModel": "cavmae.modeling_cavmae:CAVMAEModel",
        "AutoModelForPreTraining": "cavmae.modeling_cavmae:CAVMAEForPreTraining",
        "AutoModelForAudioClassification": "cavmae.modeling_cavmae:CAVMAEForAudioVisualClassification",
        "AutoModelForVideoClassification": "cavmae.modeling_cavmae:CAVMAEForAudioVisualClassification",
        "AutoModelForAudioVisualClassification": "cavmae.modeling_cavmae:CAVMAEForAudioVisualClassification",
        "AutoFeatureExtractor": "cavmae.feature_extraction_cavmae:CAVMAEFeatureExtractor",
        "AutoVideoProcessor": "cavmae.video_processing_cavmae:CAVMAEVideoProcessor",
        "AutoProcessor": "cavmae.processing_cavmae:CAVMAEProcessor",
    },
    # AV-MAE (Scenic checkpoints, unverified conversion): pretraining encoder/decoder and the MBT classifier
    "avmae": {
        "name": "AV-MAE",
        "config": "avmae.configuration_avmae:AVMAEConfig",
        "AutoModel": "avmae.modeling_avmae:AVMAEModel",
        "AutoModelForPreTraining": "avmae.modeling_avmae:AVMAEForPreTraining",
        "AutoModelForAudioClassification": "avmae.modeling_avmae:AVMAEForAudioVisualClassification",
        "AutoModelForVideoClassification": "avmae.modeling_avmae:AVMAEForAudioVisualClassification",
        "AutoModelForAudioVisualClassification": "avmae.modeling_avmae:AVMAEForAudioVisualClassification",
        "AutoFeatureExtractor": "avmae.feature_extraction_avmae:AVMAEFeatureExtractor",
        "AutoVideoProcessor": "avmae.video_processing_avmae:AVMAEVideoProcessor",
        "AutoProcessor": "avmae.processing_avmae:AVMAEProcessor",
    },
}

# the transformers Auto model classes the families register with (the pipeline's own Auto class,
# AutoModelForAudioVisualClassification, is hf_maskedav.pipelines')
MODEL_AUTO_CLASSES = (
    "AutoModel",
    "AutoModelForPreTraining",
    "AutoModelForAudioClassification",
    "AutoModelForVideoClassification",
    "AutoModelForImageClassification",
)
AUDIO_VISUAL_AUTO_CLASS = "AutoModelForAudioVisualClassification"

# transformers module -> (its Auto mapping attribute, the FAMILIES key, how the value is stored)
_PROCESSOR_MAPPINGS = {
    "transformers.models.auto.feature_extraction_auto": ("FEATURE_EXTRACTOR_MAPPING", "AutoFeatureExtractor", None),
    "transformers.models.auto.image_processing_auto": ("IMAGE_PROCESSOR_MAPPING", "AutoImageProcessor", "torchvision"),
    "transformers.models.auto.video_processing_auto": ("VIDEO_PROCESSOR_MAPPING", "AutoVideoProcessor", "torchvision"),
    "transformers.models.auto.processing_auto": ("PROCESSOR_MAPPING", "AutoProcessor", None),
}


def _absolute(reference: str) -> str:
    return _MODELS + reference


def config_class(family: str):
    """The config class of ``family`` (imports its configuration module only)."""
    module, _, name = _absolute(FAMILIES[family]["config"]).partition(":")
    return getattr(importlib.import_module(module), name)


def model_types() -> dict[str, str]:
    """``{model_type: family}`` (imports the configuration modules only)."""
    return {config_class(family).model_type: family for family in FAMILIES}


def family_of(config_class_or_model_type) -> str | None:
    """The family of a config class or a ``model_type`` string (``None`` if it is not one of ours)."""
    model_type = getattr(config_class_or_model_type, "model_type", config_class_or_model_type)
    return model_types().get(model_type)


def is_audio_visual(family: str) -> bool:
    """Whether ``family`` takes audio and video together (it has an audio-visual classifier: MAViL, CAV-MAE, AV-MAE)."""
    return AUDIO_VISUAL_AUTO_CLASS in FAMILIES[family]


def _register_configs(configuration_auto) -> None:
    for family in FAMILIES:
        config = config_class(family)
        configuration_auto.AutoConfig.register(config.model_type, config, exist_ok=True)


def register_models(mapping, auto_class_name: str) -> None:
    """Put a deferred reference to each family's ``auto_class_name`` model in ``mapping`` (a ``_LazyAutoMapping``).

    An entry registered before (by the user, with ``AutoX.register``) is kept.
    """
    content = deferred_content(mapping)
    for family, entries in FAMILIES.items():
        if auto_class_name in entries:
            content.add(config_class(family), Deferred(_absolute(entries[auto_class_name])))


def _register_model_mappings(modeling_auto) -> None:
    for auto_class_name in MODEL_AUTO_CLASSES:
        register_models(getattr(modeling_auto, auto_class_name)._model_mapping, auto_class_name)


def _processor_registrar(mapping_name: str, auto_class_name: str, backend: str | None):
    def register(module) -> None:
        content = deferred_content(getattr(module, mapping_name))
        for family, entries in FAMILIES.items():
            if auto_class_name in entries:
                reference = Deferred(_absolute(entries[auto_class_name]))
                content.add(config_class(family), reference if backend is None else {backend: reference})

    return register


def _register_pipelines(_pipelines) -> None:
    from .pipelines.audio_video_classification import register_pipeline

    register_pipeline()


def _registrations():
    yield "transformers.models.auto.configuration_auto", _register_configs
    yield "transformers.models.auto.modeling_auto", _register_model_mappings
    for module_name, (mapping_name, auto_class_name, backend) in _PROCESSOR_MAPPINGS.items():
        yield module_name, _processor_registrar(mapping_name, auto_class_name, backend)
    yield "transformers.pipelines", _register_pipelines


_HOOKED = False


def register_when_transformers_loads() -> None:
    """Register each part as soon as transformers has imported the module it goes into (idempotent, cheap)."""
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True
    for module_name, register in _registrations():
        when_imported(module_name, register)


def register_auto_classes() -> None:
    """Register configs, models, processors and the pipeline task now (idempotent).

    Imports the transformers Auto modules and ``transformers.pipelines`` (seconds), not the hf_maskedav model modules:
    those stay deferred references until an Auto class needs one. ``import hf_maskedav`` does not need this.
    """
    register_when_transformers_loads()
    for module_name, _ in _registrations():
        importlib.import_module(module_name)
