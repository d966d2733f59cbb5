"""MAViL processor, video processor and pipelines on real .mp4 files (with and without an audio track) written here."""


import numpy as np
import pytest
import torch
from transformers import AutoProcessor, pipeline

from hf_maskedav import AudioMAEFeatureExtractor, MAViLConfig, MAViLForAudioVisualClassification
from hf_maskedav.models.mavil import MAViLProcessor, MAViLVideoProcessor
from hf_maskedav.models.mavil.processing_mavil import MissingStreamError, read_audio_track
from hf_maskedav.models.mavil.video_processing_mavil import mavil_frame_indices

from video_helpers import write_clip

FPS, SECONDS, RATE, SIZE = 10, 2.0, 22050, (48, 64)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def frame_value(i: int) -> int:
    return (i * 12) % 240  # frame i is a flat grey image of this brightness


def write_media(path, audio=True, video=True):
    """A 2-s clip: flat grey frames whose brightness encodes their index, a stereo 440 Hz tone."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    return write_clip(
        path, seconds=SECONDS, fps=FPS, size=SIZE, rate=RATE,
        frame=(lambda i: np.full((*SIZE, 3), frame_value(i), dtype=np.uint8)) if video else None,
        tone=np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32) if audio else None,
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {
        "both": write_media(folder / "clip.mp4"),
        "video_only": write_media(folder / "silent.mp4", audio=False),
        "audio_only": write_media(folder / "sound.mp4", video=False),
    }


def tiny_processor():
    return MAViLProcessor(
        AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32),
        MAViLVideoProcessor(size={"height": 16, "width": 16}, num_frames=4),
    )


def tiny_config(**overrides):
    fields = dict(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, audio_num_hidden_layers=1, video_num_hidden_layers=1,
        fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
        decoder_intermediate_size=64, num_labels=3, id2label={0: "dog", 1: "car", 2: "rain"},
        label2id={"dog": 0, "car": 1, "rain": 2},
    )
    fields.update(overrides)
    return MAViLConfig(**fields)


def test_frame_indices_follow_the_authors_recipe():
    # 10 s at 25 fps: every 12.5th frame of the first 4 s
    assert mavil_frame_indices(250, 25.0).tolist() == [0, 12, 25, 37, 50, 62, 75, 87]
    # a 2-s clip at 10 fps is repeated to cover 4 s, then every 5th frame
    assert mavil_frame_indices(20, 10.0).tolist() == [0, 5, 10, 15, 0, 5, 10, 15]
    # unknown rate: frames taken as already at 2 fps
    assert mavil_frame_indices(20, None).tolist() == list(range(8))


def test_processor_on_an_mp4_with_an_audio_track(media):
    processor = MAViLProcessor(AudioMAEFeatureExtractor(), MAViLVideoProcessor(size={"height": 32, "width": 32}))
    out = processor(media["both"])
    assert out["input_values"].shape == (1, 1024, 128)
    assert out["pixel_values"].shape == (1, 8, 3, 32, 32)
    # audio: the decoded track (stereo averaged, resampled to 16 kHz) through the Audio-MAE feature extractor
    waveform, rate = read_audio_track(media["both"], 16000)
    assert rate == 16000 and abs(waveform.shape[0] - SECONDS * 16000) < 2048  # AAC adds priming samples
    spectrum = torch.fft.rfft(waveform).abs()
    assert abs(int(spectrum.argmax()) * 16000 / waveform.shape[0] - 440) < 5  # the tone survived
    expected = processor.feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(out["input_values"], expected)
    # video: first 4 s at 2 fps of a repeated 2-s clip at 10 fps -> frames 0, 5, 10, 15, 0, 5, 10, 15
    mean, std = torch.tensor(processor.video_processor.image_mean), torch.tensor(processor.video_processor.image_std)
    grey = (out["pixel_values"][0] * std[None, :, None, None] + mean[None, :, None, None]).mean(dim=(1, 2, 3)) * 255
    expected_grey = torch.tensor([frame_value(i) for i in (0, 5, 10, 15, 0, 5, 10, 15)], dtype=torch.float32)
    assert (grey - expected_grey).abs().max() < 6, grey


def test_missing_streams_get_clear_errors(media):
    processor = tiny_processor()
    with pytest.raises(MissingStreamError, match="no audio track.*modalities='video'"):
        processor(media["video_only"])
    with pytest.raises(MissingStreamError, match="no video track.*modalities='audio'"):
        processor(media["audio_only"])
    only_video = processor(media["video_only"], modalities="video")
    assert set(only_video) == {"pixel_values"} and only_video["pixel_values"].shape == (1, 4, 3, 16, 16)
    only_audio = processor(media["audio_only"], modalities="audio")
    assert set(only_audio) == {"input_values"} and only_audio["input_values"].shape == (1, 32, 16)
    with pytest.raises(ValueError, match="no audio given"):
        processor(videos=np.zeros((4, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="modalities"):
        processor(media["both"], modalities="speech")


def test_processor_on_arrays_and_round_trip(media, tmp_path):
    processor = tiny_processor()
    waveform = np.random.default_rng(0).standard_normal(22050).astype(np.float32) * 0.1
    frames = np.random.default_rng(1).integers(0, 255, (20, 24, 24, 3), dtype=np.uint8)
    out = processor(audio=[waveform, waveform], sampling_rate=22050, videos=[frames, frames], video_fps=10)
    assert out["input_values"].shape == (2, 32, 16) and out["pixel_values"].shape == (2, 4, 3, 16, 16)
    # 22.05 kHz audio is resampled to the extractor's 16 kHz
    import torchaudio

    resampled = torchaudio.functional.resample(torch.from_numpy(waveform), 22050, 16000)
    direct = processor.feature_extractor(resampled, sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(out["input_values"][:1], direct)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded, MAViLProcessor)
    again = reloaded(audio=[waveform, waveform], sampling_rate=22050, videos=[frames, frames], video_fps=10)
    for key in out:
        torch.testing.assert_close(again[key], out[key])


def test_pipelines(media, tmp_path):
    torch.manual_seed(0)
    model = MAViLForAudioVisualClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    tiny_processor().save_pretrained(tmp_path)

    av_classifier = pipeline("audio-video-classification", model=str(tmp_path))
    result = av_classifier(media["both"], top_k=2)
    assert len(result) == 2 and {r["label"] for r in result} <= {"dog", "car", "rain"}
    processed = tiny_processor()(media["both"])
    with torch.no_grad():
        probs = model(**processed).logits.softmax(-1)[0]
    assert abs(result[0]["score"] - float(probs.max())) < 1e-5

    # the single-modality heads behind the standard pipelines
    audio_result = av_classifier(media["both"], modalities="audio", top_k=3)
    audio_classifier = pipeline("audio-classification", model=str(tmp_path))
    waveform, _ = read_audio_track(media["both"], 16000)
    standard = audio_classifier(waveform.numpy(), top_k=3)
    assert [r["label"] for r in standard] == [r["label"] for r in audio_result]
    np.testing.assert_allclose([r["score"] for r in standard], [r["score"] for r in audio_result], atol=1e-5)

    video_classifier = pipeline("video-classification", model=str(tmp_path))
    video_result = video_classifier(media["both"], top_k=1)
    with torch.no_grad():
        video_probs = model(pixel_values=processed["pixel_values"]).logits.softmax(-1)[0]
    assert abs(video_result[0]["score"] - float(video_probs.max())) < 1e-5
    with pytest.raises(MissingStreamError):
        av_classifier(media["video_only"])
