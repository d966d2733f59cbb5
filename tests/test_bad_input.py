"""Bad input, table-driven, for every processor, pipeline and model (issue: reliability).

Each case feeds one bad (or unusual) input to one entry point and expects either

* ``Raises(type, pattern)``: that exception, with a message naming the input and saying what to do, raised by our
  checks (not from deep inside torch/torchvision/FFmpeg), or
* ``Fallback(check)``: the documented fallback (resample, down-mix, pad/crop/repeat, RGB conversion, cast), with the
  result checked against what the fallback should give.

The table of what each entry point does with each input is docs/reliability.md; ``test_table_counts`` prints the
number of cases per entry point (``pytest tests/test_bad_input.py -k counts -s``).
"""

from __future__ import annotations

import fractions
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from PIL import Image
from transformers import pipeline

from hf_maskedav import (
    AudioMAEConfig,
    AudioMAEFeatureExtractor,
    AudioMAEForAudioClassification,
    AudioMAEForPreTraining,
    AVMAEConfig,
    AVMAEFeatureExtractor,
    AVMAEForAudioVisualClassification,
    AVMAEProcessor,
    AVMAEVideoProcessor,
    CAVMAEConfig,
    CAVMAEFeatureExtractor,
    CAVMAEForAudioVisualClassification,
    CAVMAEProcessor,
    CAVMAEVideoProcessor,
    MAESTConfig,
    MAESTForVideoClassification,
    MAESTVideoProcessor,
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEVideoProcessor,
    MaskFeatConfig,
    MaskFeatForImageClassification,
    MaskFeatForVideoClassification,
    MaskFeatImageProcessor,
    MaskFeatVideoProcessor,
    MAViLConfig,
    MAViLForAudioVisualClassification,
    MAViLProcessor,
    MAViLVideoProcessor,
)
from hf_maskedav.models.mavil.processing_mavil import MissingStreamError
from hf_maskedav.video import VideoDecodingError

RATE = 16000
rng = np.random.default_rng(0)


@dataclass
class Raises:
    """The entry point must raise ``error`` with a message matching ``pattern`` (case-insensitive regex)."""

    error: type | tuple
    pattern: str


@dataclass
class Fallback:
    """The entry point must succeed; ``check(result, entry)`` verifies the documented fallback."""

    check: Callable


def run_case(call: Callable, expect, entry=None):
    if isinstance(expect, Raises):
        with pytest.raises(expect.error) as info:
            call()
        assert re.search(expect.pattern, str(info.value), re.IGNORECASE | re.DOTALL), str(info.value)
        return info.value
    result = call()
    expect.check(result, entry)
    return result


def tone(seconds=1.0, rate=RATE, freq=440.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono * (c + 1) / channels for c in range(channels)])


# ---------------------------------------------------------------------------------------------------------- media


def _write_av(path: Path, video=True, audio=True, frames=10, fps=10, size=(24, 32), rate=22050, faststart=False):
    """An .mp4 with a flat-grey video (frame i has level 10 * i) and/or a stereo tone."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        if video:
            vstream = container.add_stream("mpeg4", rate=fps)
            vstream.height, vstream.width, vstream.pix_fmt = *size, "yuv420p"
        if audio:
            astream = container.add_stream("aac", rate=rate)
            astream.layout = "stereo"
        if video:
            for i in range(frames):
                image = np.full((*size, 3), 10 * i, np.uint8)
                if faststart:  # noise makes a file large enough to cut in the middle of its frames
                    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if audio:
            wave = tone(frames / fps, rate, channels=2)
            for start in range(0, wave.shape[1], 1024):
                chunk = np.ascontiguousarray(wave[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, fractions.Fraction(1, rate)
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_media")
    files = {
        "both": _write_av(root / "both.mp4"),
        "video_only": _write_av(root / "video_only.mp4", audio=False),
        "audio_only": _write_av(root / "audio_only.m4a", video=False),
    }
    long_clip = _write_av(root / "long.mp4", audio=False, frames=24, faststart=True)
    data = files["both"].read_bytes()
    files["truncated_mp4"] = root / "truncated.mp4"  # index (moov) at the end: cut off
    files["truncated_mp4"].write_bytes(data[: len(data) // 2])
    files["truncated_faststart_mp4"] = root / "truncated_faststart.mp4"  # index first, cut in its first frames
    files["truncated_faststart_mp4"].write_bytes(long_clip.read_bytes()[:400])
    files["empty"] = root / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["empty_wav"] = root / "empty.wav"
    files["empty_wav"].write_bytes(b"")
    files["text_wav"] = root / "notes.wav"
    files["text_wav"].write_text("these are my notes, not a wav file\n" * 20)
    files["text_mp4"] = root / "notes.mp4"
    files["text_mp4"].write_text("these are my notes, not a video\n" * 20)
    files["wav"] = root / "tone.wav"
    soundfile.write(files["wav"], tone(), RATE)
    files["truncated_wav"] = root / "header_only.wav"
    files["truncated_wav"].write_bytes(files["wav"].read_bytes()[:30])
    files["stereo_48k_wav"] = root / "stereo48k.wav"
    soundfile.write(files["stereo_48k_wav"], tone(1.0, 48000, channels=2).T, 48000)
    files["one_sample_wav"] = root / "one.wav"
    soundfile.write(files["one_sample_wav"], np.zeros(1, np.float32), RATE)
    return {k: str(v) for k, v in files.items()}


# ------------------------------------------------------------------------------------------------- audio front-ends

FEATURE_EXTRACTORS = {
    "audiomae": lambda: AudioMAEFeatureExtractor(num_mel_bins=32, max_length=64),
    "cavmae": lambda: CAVMAEFeatureExtractor(num_mel_bins=32, max_length=64),
    "avmae": lambda: AVMAEFeatureExtractor(max_length=64),
}


def _fe(fe, audio, rate=RATE):
    return fe(audio, sampling_rate=rate, return_tensors="pt")["input_values"]


def _same_as(reference: Callable, atol=1e-5):
    def check(out, fe):
        torch.testing.assert_close(out, reference(fe), atol=atol, rtol=0)

    return Fallback(check)


def _check_silent(out, fe):
    assert out.shape[0] == 1 and torch.isfinite(out).all()
    assert torch.allclose(out, out[0, 0, 0])  # every bin is the floor value: no noise, no NaN from log(0)


def _check_stereo_batch(out, fe):
    stereo = tone(channels=2)
    assert out.shape[0] == 2  # a 2-D array is (batch, samples): two clips
    torch.testing.assert_close(out[1], _fe(fe, stereo[1])[0])


AUDIO_CASES = {
    "zero-length": (lambda fe: _fe(fe, np.zeros(0, np.float32)), Raises(ValueError, r"clip 0 is empty")),
    "one-sample": (lambda fe: _fe(fe, np.zeros(1, np.float32)), Raises(ValueError, r"1 samples.*pad it with zeros")),
    "silent": (lambda fe: _fe(fe, np.zeros(RATE, np.float32)), Fallback(_check_silent)),
    "stereo (channels, samples) in a list: down-mixed": (
        lambda fe: _fe(fe, [tone(channels=2)]),
        _same_as(lambda fe: _fe(fe, tone(channels=2).mean(axis=0))),
    ),
    "stereo (samples, channels) in a list: down-mixed": (
        lambda fe: _fe(fe, [tone(channels=2).T.copy()]),
        _same_as(lambda fe: _fe(fe, tone(channels=2).mean(axis=0))),
    ),
    "stereo (samples, channels) bare array": (
        lambda fe: _fe(fe, tone(channels=2).T.copy()),
        Raises(ValueError, r"\(samples, channels\).*mean\(axis=1\)"),
    ),
    "stereo (channels, samples) bare array is a batch": (lambda fe: _fe(fe, tone(channels=2)), Fallback(_check_stereo_batch)),
    "8 kHz": (lambda fe: _fe(fe, tone(1.0, 8000), 8000), Raises(ValueError, r"8000 Hz.*resample")),
    "48 kHz": (lambda fe: _fe(fe, tone(1.0, 48000), 48000), Raises(ValueError, r"48000 Hz.*resample")),
    "NaN sample": (lambda fe: _fe(fe, np.where(np.arange(RATE) == 7, np.nan, tone())), Raises(ValueError, r"NaN or Inf")),
    "Inf sample": (lambda fe: _fe(fe, np.where(np.arange(RATE) == 7, np.inf, tone())), Raises(ValueError, r"NaN or Inf")),
    "complex dtype": (lambda fe: _fe(fe, tone().astype(np.complex64)), Raises(TypeError, r"complex64.*float")),
    "bool dtype": (lambda fe: _fe(fe, tone() > 0), Raises(TypeError, r"bool.*float")),
    "int16 PCM: scaled": (
        lambda fe: _fe(fe, (tone() * 32768).astype(np.int16)),
        _same_as(lambda fe: _fe(fe, (tone() * 32768).astype(np.int16) / 32768.0), atol=1e-4),
    ),
    "float64: cast": (lambda fe: _fe(fe, tone().astype(np.float64)), _same_as(lambda fe: _fe(fe, tone()))),
    "rank 3": (lambda fe: _fe(fe, tone()[None, None]), Raises(ValueError, r"1-D.*2-D.*average the channels")),
    "batch mixing lengths: padded": (
        lambda fe: _fe(fe, [tone(1.0), tone(0.25)]),
        _same_as(lambda fe: torch.cat([_fe(fe, tone(1.0)), _fe(fe, tone(0.25))])),
    ),
    "not audio (a string)": (lambda fe: _fe(fe, "clip.wav"), Raises(TypeError, r"unsupported audio input.*str")),
}


@pytest.mark.parametrize("case", list(AUDIO_CASES))
@pytest.mark.parametrize("family", list(FEATURE_EXTRACTORS))
def test_feature_extractors(family, case):
    fe = FEATURE_EXTRACTORS[family]()
    call, expect = AUDIO_CASES[case]
    run_case(lambda: call(fe), expect, fe)


# ---------------------------------------------------------------------------------------------- video processors

SMALL = dict(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
VIDEO_PROCESSORS = {
    "videomae": lambda: MaskedAVVideoMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, **SMALL),
    "mae_st": lambda: MAESTVideoProcessor(num_frames=4, frame_sampling_rate=2, **SMALL),
    "maskfeat": lambda: MaskFeatVideoProcessor(num_frames=4, frame_sampling_rate=2, **SMALL),
    "mavil": lambda: MAViLVideoProcessor(num_frames=4, size={"height": 16, "width": 16}),
    "cavmae": lambda: CAVMAEVideoProcessor(**SMALL),
    "avmae": lambda: AVMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, **SMALL),
}


def levels(n, size=(24, 32), channels=3):
    """``n`` flat grey frames ``[n, H, W, C]``, frame i at level ``10 * (i % 25)`` (recoverable after processing)."""
    return np.stack([np.full((*size, channels), 10 * (i % 25), np.uint8) for i in range(n)])


def frame_levels(pixel_values: torch.Tensor, processor) -> list[int]:
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    pixels = (pixel_values[0] * std + mean) * 255  # [T, 3, H, W]
    return [round(float(f.mean()) / 10) for f in pixels]


def _pv(processor, video, **kwargs):
    return processor(video, return_tensors="pt", **kwargs)["pixel_values"]


def _check_repeats(source_frames: int):
    def check(out, processor):
        wanted = processor.num_frames
        assert out.shape[:3] == (1, wanted, 3)
        found = frame_levels(out, processor)
        assert set(found) <= set(range(source_frames)), found  # only frames of the clip, repeated as needed
        if source_frames == 1:
            assert torch.equal(out[0, :1].expand_as(out[0]), out[0])

    return Fallback(check)


def _check_long(out, processor):
    assert out.shape[:3] == (1, processor.num_frames, 3)
    found = frame_levels(out, processor)
    assert all(0 <= f < 25 for f in found)
    assert processor.num_frames == 1 or len(set(found)) > 1  # distinct frames of the long clip, not one repeated


def _same_pixels(reference: Callable):
    def check(out, processor):
        torch.testing.assert_close(out, reference(processor))

    return Fallback(check)


def _check_batch(out, processor):
    assert out.shape[0] == 2 and out.shape[1] == processor.num_frames
    torch.testing.assert_close(out[1:], _pv(processor, levels(3)))


VIDEO_CASES = {
    "empty file": (lambda p, m: _pv(p, m["empty"]), Raises(VideoDecodingError, r"empty.mp4 is empty \(0 bytes\)")),
    "truncated .mp4 (index lost)": (
        lambda p, m: _pv(p, m["truncated_mp4"]),
        Raises(VideoDecodingError, r"truncated.mp4.*(truncated|corrupt)"),
    ),
    "truncated .mp4 (cut in the frames)": (
        lambda p, m: _pv(p, m["truncated_faststart_mp4"]),
        Raises(VideoDecodingError, r"truncated_faststart.mp4.*(truncated|corrupt)"),
    ),
    "text file renamed .mp4": (lambda p, m: _pv(p, m["text_mp4"]), Raises(VideoDecodingError, r"notes.mp4.*not a video")),
    "text file renamed .wav": (lambda p, m: _pv(p, m["text_wav"]), Raises(VideoDecodingError, r"notes.wav.*not a video")),
    "audio-only file": (
        lambda p, m: _pv(p, m["audio_only"]),
        Raises(VideoDecodingError, r"audio_only.m4a has no video stream.*audio-only"),
    ),
    "1 frame: repeated": (lambda p, m: _pv(p, levels(1)), _check_repeats(1)),
    "2 frames: repeated": (lambda p, m: _pv(p, levels(2)), _check_repeats(2)),
    "1000 frames: sampled": (lambda p, m: _pv(p, levels(1000, size=(8, 8))), Fallback(_check_long)),
    "grey-scale (T, H, W, 1): RGB": (
        lambda p, m: _pv(p, levels(6, channels=1)),
        _same_pixels(lambda p: _pv(p, levels(6))),
    ),
    "grey-scale list of 2-D frames: RGB": (
        lambda p, m: _pv(p, [f[..., 0] for f in levels(6)]),
        _same_pixels(lambda p: _pv(p, levels(6))),
    ),
    "RGBA: alpha dropped": (
        lambda p, m: _pv(p, np.concatenate([levels(6), np.full((6, 24, 32, 1), 7, np.uint8)], -1)),
        _same_pixels(lambda p: _pv(p, levels(6))),
    ),
    "RGBA PIL frames: RGB": (
        lambda p, m: _pv(p, [Image.fromarray(f).convert("RGBA") for f in levels(6)]),
        _same_pixels(lambda p: _pv(p, levels(6))),
    ),
    "frames of different sizes": (
        lambda p, m: _pv(p, [np.zeros((24, 32, 3), np.uint8), np.zeros((20, 30, 3), np.uint8)]),
        Raises(ValueError, r"same shape.*resize them"),
    ),
    "bool dtype": (lambda p, m: _pv(p, levels(6) > 0), Raises(TypeError, r"video 0 has dtype torch.bool")),
    "NaN pixels": (
        lambda p, m: _pv(p, np.where((np.arange(32) == 5)[:, None], np.nan, levels(6)).astype(np.float32)),  # every frame
        Raises(ValueError, r"video 0 contains NaN or Inf"),
    ),
    "rank 3 (ambiguous)": (lambda p, m: _pv(p, levels(6)[..., 0]), Raises(ValueError, r"3-D array.*ambiguous")),
    "rank 6": (lambda p, m: _pv(p, levels(6)[None, None]), Raises(ValueError, r"4 dimensions")),
    "empty frames (0 x W)": (
        lambda p, m: _pv(p, np.zeros((4, 0, 32, 3), np.uint8)),
        Raises(ValueError, r"frames of size 0x32"),
    ),
    "batch mixing lengths: each sampled": (lambda p, m: _pv(p, [levels(8), levels(3)]), Fallback(_check_batch)),
}


@pytest.mark.parametrize("case", list(VIDEO_CASES))
@pytest.mark.parametrize("family", list(VIDEO_PROCESSORS))
def test_video_processors(family, case, media):
    processor = VIDEO_PROCESSORS[family]()
    call, expect = VIDEO_CASES[case]
    run_case(lambda: call(processor, media), expect, processor)


# ------------------------------------------------------------------------------------------------ image processor


def _image_processor():
    return MaskFeatImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})


def _img(image, **kwargs):
    return _image_processor()(image, return_tensors="pt", **kwargs)["pixel_values"]


GREY = np.tile(np.arange(32, dtype=np.uint8)[None, :] * 8, (24, 1))  # [24, 32]
RGB = np.repeat(GREY[..., None], 3, axis=-1)
IMAGE_CASES = {
    "grey-scale 2-D array: RGB": (lambda: _img(GREY), _same_pixels(lambda _: _img(RGB))),
    "grey-scale (H, W, 1): RGB": (lambda: _img(GREY[..., None]), _same_pixels(lambda _: _img(RGB))),
    "grey-scale PIL (L): RGB": (lambda: _img(Image.fromarray(GREY, "L")), _same_pixels(lambda _: _img(RGB))),
    "RGBA opaque: RGB": (
        lambda: _img(np.concatenate([RGB, np.full((24, 32, 1), 255, np.uint8)], -1)),
        _same_pixels(lambda _: _img(RGB)),
    ),
    "RGBA PIL opaque: RGB": (lambda: _img(Image.fromarray(RGB).convert("RGBA")), _same_pixels(lambda _: _img(RGB))),
    "NaN pixels": (lambda: _img(np.full((24, 32, 3), np.nan, np.float32)), Raises(ValueError, r"image 0 contains NaN")),
    "bool dtype": (lambda: _img(RGB > 0), Raises(TypeError, r"image 0 has dtype torch.bool")),
    "rank 5": (lambda: _img(RGB[None, None]), Raises(ValueError, r"image 0 has shape.*list of images")),
    "empty batch": (lambda: _img([]), Raises(ValueError, r"empty list of images")),
    "batch of different sizes: each resized": (
        lambda: _img([RGB, np.zeros((40, 20, 3), np.uint8)]),
        Fallback(lambda out, _: (out.shape == (2, 3, 16, 16)) or pytest.fail(str(out.shape))),
    ),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_maskfeat_image_processor(case):
    call, expect = IMAGE_CASES[case]
    run_case(call, expect)


# -------------------------------------------------------------------------------------- audio-visual processors

AV_PROCESSORS = {
    "mavil": lambda: MAViLProcessor(
        AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32), MAViLVideoProcessor(size={"height": 16, "width": 16}, num_frames=4)
    ),
    "cavmae": lambda: CAVMAEProcessor(CAVMAEFeatureExtractor(num_mel_bins=16, max_length=32), CAVMAEVideoProcessor(**SMALL)),
    "avmae": lambda: AVMAEProcessor(
        AVMAEFeatureExtractor(max_length=32), AVMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, **SMALL)
    ),
}
FRAMES = levels(8, size=(16, 16))


def _audio_of(out, processor, reference):
    torch.testing.assert_close(out["input_values"], _fe(processor.feature_extractor, reference), atol=1e-4, rtol=0)


AV_CASES = {
    "video-only file (no audio track)": (
        lambda p, m: p(m["video_only"]),
        Raises(MissingStreamError, r"video_only.mp4 has no audio track.*modalities='video'"),
    ),
    "audio-only file (no video track)": (
        lambda p, m: p(m["audio_only"]),
        Raises(MissingStreamError, r"audio_only.m4a has no video track.*modalities='audio'"),
    ),
    "video-only file, modalities='video'": (
        lambda p, m: p(m["video_only"], modalities="video"),
        Fallback(lambda out, p: set(out) == {"pixel_values"} or pytest.fail(str(set(out)))),
    ),
    "empty file": (lambda p, m: p(m["empty_wav"]), Raises(VideoDecodingError, r"empty.wav is empty \(0 bytes\)")),
    "text file renamed .wav": (lambda p, m: p(m["text_wav"]), Raises(VideoDecodingError, r"notes.wav could not be opened")),
    "truncated .mp4": (lambda p, m: p(m["truncated_mp4"]), Raises(VideoDecodingError, r"truncated.mp4.*corrupt")),
    "stereo audio array: down-mixed": (
        lambda p, m: p(audio=[tone(channels=2)], sampling_rate=RATE, videos=[FRAMES]),
        Fallback(lambda out, p: _audio_of(out, p, tone(channels=2).mean(axis=0))),
    ),
    "48 kHz audio array: resampled": (
        lambda p, m: p(audio=[tone(1.0, 48000)], sampling_rate=48000, videos=[FRAMES]),
        Fallback(
            lambda out, p: _audio_of(
                out, p, torchaudio.functional.resample(torch.from_numpy(tone(1.0, 48000)), 48000, RATE).numpy()
            )
        ),
    ),
    "8 kHz audio array: resampled": (
        lambda p, m: p(audio=[tone(1.0, 8000)], sampling_rate=8000, videos=[FRAMES]),
        Fallback(
            lambda out, p: _audio_of(
                out, p, torchaudio.functional.resample(torch.from_numpy(tone(1.0, 8000)), 8000, RATE).numpy()
            )
        ),
    ),
    "NaN in the waveform": (
        lambda p, m: p(audio=[np.full(RATE, np.nan, np.float32)], sampling_rate=RATE, videos=[FRAMES]),
        Raises(ValueError, r"clip 0 contains NaN or Inf"),
    ),
    "audio without sampling_rate": (
        lambda p, m: p(audio=[tone()], videos=[FRAMES]),
        Raises(ValueError, r"pass the sampling_rate"),
    ),
    "2 audio clips, 1 video": (
        lambda p, m: p(audio=[tone(), tone()], sampling_rate=RATE, videos=[FRAMES]),
        Raises(ValueError, r"2 audio clips but 1 videos.*pair up"),
    ),
}


@pytest.mark.parametrize("case", list(AV_CASES))
@pytest.mark.parametrize("family", list(AV_PROCESSORS))
def test_audio_visual_processors(family, case, media):
    processor = AV_PROCESSORS[family]()
    call, expect = AV_CASES[case]
    run_case(lambda: call(processor, media), expect, processor)


def test_media_file_stereo_track_is_downmixed(media):
    """A file's stereo track is averaged to mono (documented), the same as down-mixing the decoded channels."""
    from hf_maskedav.models.mavil.processing_mavil import read_audio_track

    processor = AV_PROCESSORS["mavil"]()
    out = processor(media["both"], modalities="audio")
    with av.open(media["both"]) as container:
        stream = container.streams.audio[0]
        assert stream.channels == 2
    waveform, rate = read_audio_track(media["both"], RATE)
    assert rate == RATE and waveform.dim() == 1
    torch.testing.assert_close(out["input_values"], _fe(processor.feature_extractor, waveform.numpy()))


# ---------------------------------------------------------------------------------------------------------- models

LABELS = {0: "a", 1: "b", 2: "c"}
VIDEO_TINY = dict(
    image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
    num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2, decoder_intermediate_size=32, id2label=LABELS,
)
MODELS = {
    "audiomae": lambda: AudioMAEForAudioClassification(AudioMAEConfig(
        max_length=32, num_mel_bins=16, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_attention_heads=4,
        decoder_intermediate_size=64, id2label=LABELS,
    )),
    "videomae": lambda: MaskedAVVideoMAEForVideoClassification(MaskedAVVideoMAEConfig(**VIDEO_TINY)),
    "mae_st": lambda: MAESTForVideoClassification(MAESTConfig(**VIDEO_TINY, pred_t_dim=2)),
    "maskfeat": lambda: MaskFeatForVideoClassification(MaskFeatConfig(
        image_size=16, num_frames=4, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8], patch_padding=[0, 0, 0],
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, separate_position_embeddings=True,
        mask_window_size=[2, 2, 2], id2label=LABELS,
    )),
    "maskfeat_image": lambda: MaskFeatForImageClassification(MaskFeatConfig(
        image_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, id2label=LABELS,
    )),
    "mavil": lambda: MAViLForAudioVisualClassification(MAViLConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, audio_num_hidden_layers=1,
        video_num_hidden_layers=1, fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, id2label=LABELS,
    )),
    "cavmae": lambda: CAVMAEForAudioVisualClassification(CAVMAEConfig(
        max_length=32, num_mel_bins=16, image_size=16, patch_size=8, hidden_size=32, num_attention_heads=4,
        intermediate_size=64, num_modality_specific_layers=1, num_shared_layers=1, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64, id2label=LABELS,
    )),
    "avmae": lambda: AVMAEForAudioVisualClassification(AVMAEConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, num_fusion_layers=1,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, bottleneck_fusion_layer=1, num_bottleneck_tokens=2, id2label=LABELS,
    )),
}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: make().eval() for name, make in MODELS.items()}


def good_inputs(name: str, model, batch: int = 1) -> dict[str, torch.Tensor]:
    """Valid inputs for ``model``; the bad cases below modify one of them."""
    config = model.config
    gen = torch.Generator().manual_seed(0)
    inputs = {}
    if name in ("audiomae", "mavil", "cavmae", "avmae"):
        inputs["input_values"] = torch.randn(batch, config.max_length, config.num_mel_bins, generator=gen)
    if name == "maskfeat_image":
        inputs["pixel_values"] = torch.randn(batch, 3, config.image_size, config.image_size, generator=gen)
    elif name == "cavmae":
        inputs["pixel_values"] = torch.randn(batch, 1, 3, config.image_size, config.image_size, generator=gen)
    elif name != "audiomae":
        inputs["pixel_values"] = torch.randn(batch, config.num_frames, 3, config.image_size, config.image_size, generator=gen)
    return inputs


def _replace(key: str, change: Callable):
    def call(name, model):
        inputs = good_inputs(name, model)
        inputs[key] = change(inputs[key])
        return model(**inputs)

    return call


def _poison(value):
    def change(tensor):
        tensor = tensor.clone()
        tensor.view(-1)[3] = value
        return tensor

    return change


def _frames(count: int):
    def change(pixels):
        return torch.randn(pixels.shape[0], count, *pixels.shape[2:], generator=torch.Generator().manual_seed(1))

    return change


def _cast_matches(name, model):
    """float64 inputs are cast to the weights' dtype: same logits as float32 (within float32 rounding)."""
    inputs = good_inputs(name, model)
    with torch.no_grad():
        expected = model(**inputs).logits
        got = model(**{k: v.double() for k, v in inputs.items()}).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    return got


def _mutated_id2label(count: int):
    def call(name, model):
        original = dict(model.config.id2label)
        model.config.id2label = {i: f"label{i}" for i in range(count)}
        try:
            return model(**good_inputs(name, model))
        finally:
            model.config.id2label = original

    return call


def _labels(values):
    def call(name, model):
        return model(**good_inputs(name, model, batch=len(values)), labels=torch.tensor(values))

    return call


def _finite_logits(out, _):
    assert torch.isfinite(out.logits).all() and out.logits.shape == (1, 3)


def _model_cases(name: str) -> dict:
    keys = {"audiomae": ["input_values"], "mavil": ["input_values", "pixel_values"], "cavmae": ["input_values", "pixel_values"],
            "avmae": ["input_values", "pixel_values"]}.get(name, ["pixel_values"])
    cases = {}
    for key in keys:
        cases[f"NaN in {key}"] = (_replace(key, _poison(float("nan"))), Raises(ValueError, rf"{key} contains 1 NaN or Inf"))
        cases[f"Inf in {key}"] = (_replace(key, _poison(float("inf"))), Raises(ValueError, rf"{key} contains 1 NaN or Inf"))
        cases[f"int64 {key}"] = (_replace(key, lambda t: t.long()), Raises(TypeError, rf"{key} must be a floating-point"))
        cases[f"numpy {key}"] = (_replace(key, lambda t: t.numpy()), Raises(TypeError, rf"{key} must be a torch.Tensor"))
        cases[f"{key} as a list (a batch mixing lengths)"] = (
            _replace(key, lambda t: [t[0], t[0, :2]]),
            Raises(TypeError, rf"{key} must be a torch.Tensor"),
        )
        cases[f"rank-1 {key}"] = (_replace(key, lambda t: t.flatten()), Raises(ValueError, rf"{key} (must have shape|has|is)|takes"))
        cases[f"rank+2 {key}"] = (_replace(key, lambda t: t[None, None]), Raises(ValueError, rf"{key} (must have shape|has|is)|takes"))
        cases[f"empty batch of {key}"] = (_replace(key, lambda t: t[:0]), Raises(ValueError, rf"{key} is an empty batch"))
    cases["float64 inputs: cast"] = (_cast_matches, Fallback(lambda out, _: None))
    if "pixel_values" in keys and name != "maskfeat_image":
        image_axis = 2
        cases["grey-scale (1 channel) pixel_values"] = (
            _replace("pixel_values", lambda t: t.narrow(image_axis if t.dim() == 5 else 1, 0, 1)),
            Raises(ValueError, r"channels|shape"),
        )
        cases["RGBA (4 channels) pixel_values"] = (
            _replace("pixel_values", lambda t: torch.cat([t, t.narrow(2, 0, 1)], 2)),
            Raises(ValueError, r"channels|shape"),
        )
        # 1, 2 and 1000 frames: VideoMAE/MAE-ST interpolate their temporal positions and MAViL rebuilds its sin-cos
        # table for any multiple of the tubelet; MaskFeat and AV-MAE are built for one clip length and say so.
        interpolates = name in ("videomae", "mae_st", "mavil")
        for count in (1, 2, 1000):
            if interpolates and count > 1:
                expect = Fallback(_finite_logits)
            elif name == "cavmae" and count == 1:
                expect = Fallback(_finite_logits)  # CAV-MAE sees one frame
            elif name == "cavmae":
                expect = Raises(ValueError, r"one frame per clip.*average the predictions")
            else:
                expect = Raises(ValueError, r"frames")
            cases[f"{count} frame(s)"] = (_replace("pixel_values", _frames(count)), expect)
    cases["id2label with 5 labels for a 3-class head"] = (_mutated_id2label(5), Raises(ValueError, r"outputs 3 classes but config.id2label has 5 labels"))
    cases["id2label with 2 labels for a 3-class head"] = (_mutated_id2label(2), Raises(ValueError, r"outputs 3 classes but config.id2label has 2 labels"))
    cases["labels out of range"] = (_labels([0, 7]), Raises(ValueError, r"class indices in \[0, 2\].*\[7\]"))
    return cases


MODEL_CASES = [(name, case) for name in MODELS for case in _model_cases(name)]


@pytest.mark.parametrize("family,case", MODEL_CASES, ids=[f"{n}-{c}" for n, c in MODEL_CASES])
def test_models(models, family, case):
    model = models[family]
    call, expect = _model_cases(family)[case]
    with torch.no_grad():
        run_case(lambda: call(family, model), expect)


def test_finite_check_policy_on_cpu_and_opt_out(models, monkeypatch):
    """The NaN/Inf check runs for CPU tensors by default and can be switched off (then NaN flows to the logits)."""
    model = models["audiomae"]
    inputs = good_inputs("audiomae", model)
    inputs["input_values"][0, 0, 0] = float("nan")
    monkeypatch.setenv("HF_MASKEDAV_CHECK_FINITE_INPUTS", "0")
    with torch.no_grad():
        assert torch.isnan(model(**inputs).logits).all()
    monkeypatch.setenv("HF_MASKEDAV_CHECK_FINITE_INPUTS", "1")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(**inputs)


# ------------------------------------------------------------------------------------------------------- pipelines


@pytest.fixture(scope="module")
def saved(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("saved")
    folders = {}
    folders["audiomae"] = root / "audiomae"
    models["audiomae"].save_pretrained(folders["audiomae"])
    AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32).save_pretrained(folders["audiomae"])
    folders["videomae"] = root / "videomae"
    models["videomae"].save_pretrained(folders["videomae"])
    VIDEO_PROCESSORS["videomae"]().save_pretrained(folders["videomae"])
    folders["mavil"] = root / "mavil"
    models["mavil"].save_pretrained(folders["mavil"])
    AV_PROCESSORS["mavil"]().save_pretrained(folders["mavil"])
    return folders


def _scores_are_a_distribution(result, _):
    assert {r["label"] for r in result} == set(LABELS.values())
    assert abs(sum(r["score"] for r in result) - 1.0) < 1e-4


def _pipeline_by_hand(folder, waveform, rate):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    if rate != fe.sampling_rate:
        waveform = torchaudio.functional.resample(torch.from_numpy(waveform), rate, fe.sampling_rate).numpy()
    with torch.no_grad():
        probs = model(**fe(waveform, sampling_rate=fe.sampling_rate, return_tensors="pt")).logits.softmax(-1)[0]
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}


def _matches_by_hand(folder_key, waveform, rate):
    def check(result, saved):
        expected = _pipeline_by_hand(saved[folder_key], waveform, rate)
        for entry in result:
            assert entry["score"] == pytest.approx(expected[entry["label"]], abs=1e-5)

    return Fallback(check)


AUDIO_PIPELINE_CASES = {
    # transformers' own AudioClassificationPipeline reads files with FFmpeg; its error does not name the file
    "empty file": (lambda c, m: c(m["empty_wav"]), Raises(ValueError, r"malformed soundfile|ffmpeg")),
    "text file renamed .wav": (lambda c, m: c(m["text_wav"]), Raises(ValueError, r"malformed soundfile|ffmpeg")),
    "truncated .wav (header only)": (lambda c, m: c(m["truncated_wav"]), Raises(ValueError, r"malformed soundfile|ffmpeg")),
    "video-only file": (lambda c, m: c(m["video_only"]), Raises(ValueError, r"malformed soundfile|ffmpeg")),
    "one-sample .wav": (lambda c, m: c(m["one_sample_wav"]), Raises(ValueError, r"1 samples.*pad it with zeros")),
    "stereo 48 kHz .wav: down-mixed and resampled by FFmpeg": (
        lambda c, m: c(m["stereo_48k_wav"]),
        Fallback(_scores_are_a_distribution),
    ),
    "48 kHz array dict: resampled": (
        lambda c, m: c({"array": tone(1.0, 48000), "sampling_rate": 48000}),
        _matches_by_hand("audiomae", tone(1.0, 48000), 48000),
    ),
    "8 kHz array dict: resampled": (
        lambda c, m: c({"array": tone(1.0, 8000), "sampling_rate": 8000}),
        _matches_by_hand("audiomae", tone(1.0, 8000), 8000),
    ),
    "stereo array dict": (
        lambda c, m: c({"array": tone(channels=2), "sampling_rate": RATE}),
        Raises(ValueError, r"single channel"),
    ),
    "NaN waveform": (lambda c, m: c(np.full(RATE, np.nan, np.float32)), Raises(ValueError, r"NaN or Inf")),
    "silent waveform": (lambda c, m: c(np.zeros(RATE, np.float32)), Fallback(_scores_are_a_distribution)),
    "batch mixing lengths": (
        lambda c, m: c([tone(1.0), tone(0.3)]),
        Fallback(lambda result, saved: [len(r) for r in result] == [3, 3] or pytest.fail(str(result))),
    ),
}


@pytest.mark.parametrize("case", list(AUDIO_PIPELINE_CASES))
def test_audio_classification_pipeline(saved, media, case):
    classifier = pipeline("audio-classification", model=str(saved["audiomae"]))
    call, expect = AUDIO_PIPELINE_CASES[case]
    run_case(lambda: call(classifier, media), expect, saved)


VIDEO_PIPELINE_CASES = {
    "audio-only file": (lambda c, m: c(m["audio_only"]), Raises(VideoDecodingError, r"audio_only.m4a.*audio-only")),
    "empty file": (lambda c, m: c(m["empty"]), Raises(VideoDecodingError, r"empty \(0 bytes\)")),
    "text file renamed .mp4": (lambda c, m: c(m["text_mp4"]), Raises(VideoDecodingError, r"notes.mp4.*not a video")),
    "truncated .mp4": (lambda c, m: c(m["truncated_mp4"]), Raises(VideoDecodingError, r"truncated.mp4")),
    "1 frame": (lambda c, m: c(levels(1)), Fallback(_scores_are_a_distribution)),
    "1000 frames": (lambda c, m: c(levels(1000, size=(8, 8))), Fallback(_scores_are_a_distribution)),
    "grey-scale frames": (lambda c, m: c(levels(6, channels=1)), Fallback(_scores_are_a_distribution)),
    "frames of different sizes": (
        lambda c, m: c([[np.zeros((24, 32, 3), np.uint8), np.zeros((20, 30, 3), np.uint8)]]),
        Raises(ValueError, r"same shape"),
    ),
}


@pytest.mark.parametrize("case", list(VIDEO_PIPELINE_CASES))
@pytest.mark.parametrize("family", ["videomae", "mavil"])
def test_video_classification_pipeline(saved, media, family, case):
    classifier = pipeline("video-classification", model=str(saved[family]))
    call, expect = VIDEO_PIPELINE_CASES[case]
    run_case(lambda: call(classifier, media), expect, saved)


AV_PIPELINE_CASES = {
    "video-only file": (lambda c, m: c(m["video_only"]), Raises(MissingStreamError, r"no audio track.*modalities='video'")),
    "audio-only file": (lambda c, m: c(m["audio_only"]), Raises(MissingStreamError, r"no video track.*modalities='audio'")),
    "empty file": (lambda c, m: c(m["empty_wav"]), Raises(VideoDecodingError, r"empty \(0 bytes\)")),
    "text file renamed .wav": (lambda c, m: c(m["text_wav"]), Raises(VideoDecodingError, r"notes.wav could not be opened")),
    "truncated .mp4": (lambda c, m: c(m["truncated_mp4"]), Raises(VideoDecodingError, r"truncated.mp4")),
    "stereo dict: down-mixed": (
        lambda c, m: c({"audio": tone(channels=2), "sampling_rate": RATE, "video": FRAMES}),
        Fallback(lambda result, saved: len(result) == 3 or pytest.fail(str(result))),
    ),
    "48 kHz dict: resampled": (
        lambda c, m: c({"audio": tone(1.0, 48000), "sampling_rate": 48000, "video": FRAMES}),
        Fallback(_scores_are_a_distribution),
    ),
    "NaN audio": (
        lambda c, m: c({"audio": np.full(RATE, np.nan, np.float32), "sampling_rate": RATE, "video": FRAMES}),
        Raises(ValueError, r"NaN or Inf"),
    ),
    "unknown key": (lambda c, m: c({"sound": tone(), "sampling_rate": RATE}), Raises(ValueError, r"unknown keys \['sound'\]")),
    "not a path or dict": (lambda c, m: c(42), Raises(TypeError, r"unsupported input of type int")),
}


@pytest.mark.parametrize("case", list(AV_PIPELINE_CASES))
def test_audio_video_classification_pipeline(saved, media, case):
    classifier = pipeline("audio-video-classification", model=str(saved["mavil"]))
    call, expect = AV_PIPELINE_CASES[case]
    run_case(lambda: call(classifier, media), expect, saved)


def test_pipelines_refuse_a_mutated_id2label(saved, models):
    """A head/id2label mismatch is caught by the model's check before transformers' postprocess would fail."""
    model = models["mavil"]
    original = dict(model.config.id2label)
    model.config.id2label = {0: "x", 1: "y"}
    try:
        classifier = pipeline("video-classification", model=model, video_processor=VIDEO_PROCESSORS["mavil"]())
        with pytest.raises(ValueError, match="outputs 3 classes but config.id2label has 2 labels"):
            classifier(levels(8, size=(16, 16)))
        processor = AV_PROCESSORS["mavil"]()
        av_classifier = pipeline("audio-video-classification", model=model, processor=processor)
        with pytest.raises(ValueError, match="outputs 3 classes but config.id2label has 2 labels"):
            av_classifier({"audio": tone(), "sampling_rate": RATE, "video": FRAMES})
    finally:
        model.config.id2label = original


def test_id2label_that_does_not_match_saved_head_is_refused_at_load(saved, tmp_path):
    """config.json edited to 5 labels next to a 3-class head: from_pretrained stops (transformers' load report)."""
    import json
    import shutil

    from transformers import AutoModelForAudioClassification

    folder = tmp_path / "edited"
    shutil.copytree(saved["audiomae"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"l{i}" for i in range(5)}
    config["label2id"] = {f"l{i}": i for i in range(5)}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        AutoModelForAudioClassification.from_pretrained(folder)
    # the documented way out: a new head for the new labels
    model = AutoModelForAudioClassification.from_pretrained(folder, ignore_mismatched_sizes=True)
    assert model.classifier.out_features == 5


# ----------------------------------------------------------------------------------------------------- the count

ENTRY_POINTS = {
    "feature extractors (AudioMAE, CAV-MAE, AV-MAE), each": len(AUDIO_CASES),
    "video processors (VideoMAE, MAE-ST, MaskFeat, MAViL, CAV-MAE, AV-MAE), each": len(VIDEO_CASES),
    "MaskFeat image processor": len(IMAGE_CASES),
    "audio-visual processors (MAViL, CAV-MAE, AV-MAE), each": len(AV_CASES) + 1,
    "audio-classification pipeline": len(AUDIO_PIPELINE_CASES) + 1,
    "video-classification pipeline (VideoMAE and MAViL), each": len(VIDEO_PIPELINE_CASES) + 1,
    "audio-video-classification pipeline": len(AV_PIPELINE_CASES),
    **{f"model {name}": len(_model_cases(name)) for name in MODELS},
}


def test_table_counts(capsys):
    assert all(count >= 8 for count in ENTRY_POINTS.values()), ENTRY_POINTS
    with capsys.disabled():
        logging.getLogger(__name__).info("bad inputs per entry point: %s", ENTRY_POINTS)
        print("\nbad inputs tried per entry point:")
        for name, count in ENTRY_POINTS.items():
            print(f"  {count:3d}  {name}")
