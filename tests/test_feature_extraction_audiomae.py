import numpy as np
import pytest
import torch
from transformers import ASTFeatureExtractor, AutoFeatureExtractor

import hf_maskedav  # noqa: F401  (registers the Auto classes)
from hf_maskedav import AudioMAEConfig, AudioMAEFeatureExtractor


def clips(lengths=(16000, 24000, 8000), seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_batched_equals_per_sample_and_numpy_equals_torch():
    fe = AudioMAEFeatureExtractor(max_length=256)
    audio = clips()
    batched = fe(audio, sampling_rate=16000, return_tensors="pt")["input_values"]
    assert batched.shape == (3, 256, 128)
    for i, clip in enumerate(audio):
        single = fe(clip, sampling_rate=16000, return_tensors="pt")["input_values"][0]
        torch.testing.assert_close(batched[i], single, atol=1e-4, rtol=0)
        as_tensor = fe(torch.from_numpy(clip), sampling_rate=16000, return_tensors="pt")["input_values"][0]
        torch.testing.assert_close(as_tensor, single)


def test_matches_transformers_ast_feature_extractor():
    """Same settings as ASTFeatureExtractor (which runs torchaudio's Kaldi fbank per sample)."""
    audio = clips((32000, 20000))
    ours = AudioMAEFeatureExtractor(max_length=300)(audio, sampling_rate=16000, return_tensors="pt")["input_values"]
    ast = ASTFeatureExtractor(max_length=300)(audio, sampling_rate=16000, return_tensors="pt")["input_values"]
    assert (ours - ast).abs().max() < 1e-3


def test_padding_rows_are_the_normalised_zero():
    fe = AudioMAEFeatureExtractor(max_length=200)
    out = fe(clips((8000,))[0], sampling_rate=16000, return_tensors="pt")["input_values"][0]
    frames = 1 + (8000 - 400) // 160
    expected = (0 - fe.mean) / (2 * fe.std)
    torch.testing.assert_close(out[frames:], torch.full_like(out[frames:], expected))


def test_return_types():
    fe = AudioMAEFeatureExtractor(max_length=64)
    assert isinstance(fe(clips()[0], sampling_rate=16000, return_tensors="np")["input_values"], np.ndarray)
    assert isinstance(fe(clips()[0], sampling_rate=16000)["input_values"], list)


def test_integer_pcm_is_scaled():
    fe = AudioMAEFeatureExtractor(max_length=64)
    clip = clips((4000,))[0]
    pcm = np.round(clip * 32767).astype(np.int16)
    a = fe(pcm, sampling_rate=16000, return_tensors="pt")["input_values"]
    b = fe(pcm.astype(np.float32) / 32768, sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(a, b)


def test_save_and_auto_load(tmp_path):
    fe = AudioMAEFeatureExtractor(max_length=512, mean=-6.6, std=5.4)
    fe.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    AudioMAEConfig(hidden_size=32, num_attention_heads=4, decoder_hidden_size=32).save_pretrained(tmp_path)
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is AudioMAEFeatureExtractor
    assert (loaded.max_length, loaded.mean, loaded.std) == (512, -6.6, 5.4)


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.zeros(10, dtype=np.float32), "fewer than"),
        (np.array([0.1, np.nan] * 500, dtype=np.float32), "NaN or Inf"),
        (np.array([0.1, np.inf] * 500, dtype=np.float32), "NaN or Inf"),
        (np.zeros((2, 2, 1000), dtype=np.float32), "1-D"),
        ("not audio", "unsupported audio input"),
    ],
)
def test_bad_audio_gets_a_clear_error(audio, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AudioMAEFeatureExtractor()(audio, sampling_rate=16000)


def test_wrong_sampling_rate_is_refused_with_advice():
    with pytest.raises(ValueError, match="resample"):
        AudioMAEFeatureExtractor()(clips()[0], sampling_rate=44100)


def test_silence_is_finite():
    out = AudioMAEFeatureExtractor(max_length=64)(np.zeros(4000, np.float32), sampling_rate=16000, return_tensors="pt")
    assert torch.isfinite(out["input_values"]).all()
