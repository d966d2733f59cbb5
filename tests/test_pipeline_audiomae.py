"""Auto classes and the audio-classification pipeline on a tiny saved Audio-MAE."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    pipeline,
)

import hf_maskedav  # noqa: F401
from hf_maskedav import (
    AudioMAEConfig,
    AudioMAEFeatureExtractor,
    AudioMAEForAudioClassification,
    AudioMAEForPreTraining,
    AudioMAEModel,
)

LABELS = {0: "tone", 1: "noise", 2: "click"}


def tiny(**kw):
    return AudioMAEConfig(
        max_length=64, num_mel_bins=32, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4, decoder_intermediate_size=64,
        id2label=LABELS, label2id={v: k for k, v in LABELS.items()}, **kw,
    )


@pytest.fixture
def saved_classifier(tmp_path):
    def make(**kw):
        folder = tmp_path / "classifier"
        torch.manual_seed(0)
        AudioMAEForAudioClassification(tiny(**kw)).save_pretrained(folder)
        AudioMAEFeatureExtractor(num_mel_bins=32, max_length=64).save_pretrained(folder)
        return folder

    return make


def test_auto_classes_resolve_our_models(tmp_path):
    AudioMAEForPreTraining(tiny()).save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is AudioMAEConfig
    assert type(AutoModel.from_pretrained(tmp_path)) is AudioMAEModel
    assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is AudioMAEForPreTraining
    assert type(AutoModelForAudioClassification.from_pretrained(tmp_path)) is AudioMAEForAudioClassification


def test_model_types_and_class_names_do_not_collide_with_transformers():
    """Every public class and every model_type of the package (all families) is free in transformers."""
    import inspect

    import transformers
    from transformers import PreTrainedConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    classes = [getattr(hf_maskedav, n) for n in hf_maskedav.__all__ if inspect.isclass(getattr(hf_maskedav, n))]
    assert classes
    for cls in classes:
        assert not hasattr(transformers, cls.__name__), f"{cls.__name__} collides with transformers.{cls.__name__}"
        if issubclass(cls, PreTrainedConfig):
            assert cls.model_type.startswith("maskedav_") and cls.model_type not in CONFIG_MAPPING_NAMES


def test_pipeline_on_array_dict_and_file(saved_classifier, tmp_path):
    classifier = pipeline("audio-classification", model=str(saved_classifier()))
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(16000)).astype(np.float32)

    from_array = classifier(clip)
    assert {r["label"] for r in from_array} == set(LABELS.values())
    assert abs(sum(r["score"] for r in from_array) - 1.0) < 1e-4  # softmax for single-label

    # another sampling rate: the pipeline resamples to the feature extractor's 16 kHz
    resampled = classifier({"array": (0.1 * rng.standard_normal(44100)).astype(np.float32), "sampling_rate": 44100})
    assert len(resampled) == 3

    path = tmp_path / "clip.wav"
    soundfile.write(path, clip, 16000)
    from_file = classifier(str(path))
    assert [r["label"] for r in from_file] == [r["label"] for r in from_array]
    for a, b in zip(from_file, from_array):
        assert abs(a["score"] - b["score"]) < 1e-3


def test_multi_label_pipeline_uses_sigmoid(saved_classifier):
    classifier = pipeline(
        "audio-classification", model=str(saved_classifier(problem_type="multi_label_classification"))
    )
    scores = classifier(np.zeros(16000, np.float32) + 0.01)
    model = AutoModelForAudioClassification.from_pretrained(classifier.model.name_or_path)
    fe = AudioMAEFeatureExtractor.from_pretrained(classifier.model.name_or_path)
    with torch.no_grad():
        logits = model(**fe(np.zeros(16000, np.float32) + 0.01, sampling_rate=16000, return_tensors="pt")).logits[0]
    expected = {LABELS[i]: float(p) for i, p in enumerate(logits.sigmoid())}
    for r in scores:
        assert abs(r["score"] - expected[r["label"]]) < 1e-5


def test_undecodable_file_gets_a_clear_error(saved_classifier, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is text, not a wav file")
    classifier = pipeline("audio-classification", model=str(saved_classifier()))
    with pytest.raises(ValueError, match="(?i)audio|ffmpeg|decode|malformed"):
        classifier(str(bad))
