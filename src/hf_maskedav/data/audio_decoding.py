"""Turn one stored audio value (a file path, encoded bytes, a decoded array, a datasets decoder) into a mono waveform.

Decoding goes through torchcodec (FFmpeg: wav, flac, mp3, ogg, m4a...) with resampling and down-mixing done by the
decoder itself; when torchcodec cannot be used (no FFmpeg libraries), soundfile decodes and torchaudio resamples.
Whatever goes wrong with one sample is raised as :class:`BadSampleError`, which the datasets in
:mod:`hf_maskedav.data.audio` catch, count and report instead of stopping a long run.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
import torch


class BadSampleError(ValueError):
    """One sample cannot be used (undecodable, empty, non-finite...). The message says which and why."""


@lru_cache(maxsize=1)
def _torchcodec_decoder_class():
    """torchcodec's ``AudioDecoder``, or None when torchcodec or its FFmpeg libraries are missing."""
    try:
        from torchcodec.decoders import AudioDecoder
    except (ImportError, OSError, RuntimeError):  # torchcodec raises RuntimeError when FFmpeg cannot be loaded
        return None
    return AudioDecoder


def _describe(value) -> str:
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def _to_mono(array: torch.Tensor, where: str) -> torch.Tensor:
    """``[samples]``, ``[channels, samples]`` or ``[samples, channels]`` -> ``[samples]`` (channel average)."""
    if array.dim() == 1:
        return array
    if array.dim() != 2:
        raise BadSampleError(f"{where}: audio array has shape {tuple(array.shape)}; expected (samples,) or 2-D")
    channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
    return array.mean(dim=channel_axis)


def _resample(waveform: torch.Tensor, orig: int, target: int) -> torch.Tensor:
    if orig == target:
        return waveform
    import torchaudio.functional

    return torchaudio.functional.resample(waveform, orig, target)


# Frame-based codecs (AAC, MP3, Opus...) decode whole frames: the last one is padded (a 2.000 s 16 kHz AAC stream
# decodes to 32,768 samples, 2.048 s), which would show as a silent band at the end of the spectrogram. Samples past the
# stream's duration are dropped, when the excess is at most this long (a few codec frames; more would mean the header's
# duration is an estimate, e.g. a VBR MP3 without a header, and the audio is kept whole).
MAX_TRIMMED_SECONDS = 0.3


def trim_to_stream_duration(waveform: torch.Tensor, metadata, sampling_rate: int) -> torch.Tensor:
    """``waveform`` (``[..., samples]`` at ``sampling_rate``) cut to the duration the stream's metadata gives."""
    duration = getattr(metadata, "duration_seconds", None) or getattr(metadata, "duration_seconds_from_header", None)
    if not duration or duration <= 0:
        return waveform
    expected = int(round(float(duration) * sampling_rate))
    excess = waveform.shape[-1] - expected
    if 0 < excess <= MAX_TRIMMED_SECONDS * sampling_rate:
        waveform = waveform[..., :expected]
    return waveform


def _decode_encoded(source, sampling_rate: int, where: str) -> torch.Tensor:
    """Decode a path or encoded bytes with torchcodec, falling back to soundfile."""
    decoder_class = _torchcodec_decoder_class()
    if decoder_class is not None:
        try:
            decoder = decoder_class(source, sample_rate=sampling_rate, num_channels=1)
            samples = decoder.get_all_samples()
        except (RuntimeError, ValueError, OSError) as error:
            raise BadSampleError(f"{where}: could not decode the audio ({error})") from error
        return trim_to_stream_duration(samples.data[0], decoder.metadata, sampling_rate)
    import soundfile

    try:
        data, rate = soundfile.read(
            io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source, dtype="float32"
        )
    except (RuntimeError, ValueError, OSError, soundfile.LibsndfileError) as error:
        raise BadSampleError(f"{where}: could not decode the audio ({error})") from error
    waveform = _to_mono(torch.from_numpy(np.ascontiguousarray(data)).T, where)
    return _resample(waveform, int(rate), sampling_rate)


def decode_audio(value, sampling_rate: int = 16000) -> torch.Tensor:
    """Decode one audio value to a mono float32 waveform at ``sampling_rate``.

    Args:
        value: a file path; encoded bytes; a datasets audio dict (``{"path", "bytes"}`` as stored with
            ``Audio(decode=False)``, or ``{"array", "sampling_rate"}`` when already decoded); a torchcodec
            ``AudioDecoder`` (what ``datasets>=4`` returns with decoding on).
        sampling_rate: the rate to resample to.

    Returns:
        ``[samples]`` float32 tensor.

    Raises:
        BadSampleError: the value cannot be decoded, is empty, or contains NaN/Inf.
    """
    where = _describe(value)
    if isinstance(value, dict):
        if value.get("array") is not None:
            if value.get("sampling_rate") is None:
                raise BadSampleError(f"{where}: decoded audio dict has an 'array' but no 'sampling_rate'")
            array = torch.as_tensor(np.asarray(value["array"], dtype=np.float32))
            waveform = _resample(_to_mono(array, where), int(value["sampling_rate"]), sampling_rate)
        elif value.get("bytes") is not None:
            waveform = _decode_encoded(bytes(value["bytes"]), sampling_rate, where)
        elif value.get("path") is not None:
            waveform = _decode_encoded(str(value["path"]), sampling_rate, where)
        else:
            raise BadSampleError(f"audio dict with neither 'array', 'bytes' nor 'path' (keys: {sorted(value)})")
    elif isinstance(value, (str, os.PathLike)):
        if not os.path.isfile(value):
            raise BadSampleError(f"{where}: no such file")
        waveform = _decode_encoded(str(value), sampling_rate, where)
    elif isinstance(value, (bytes, bytearray)):
        waveform = _decode_encoded(bytes(value), sampling_rate, where)
    elif hasattr(value, "get_all_samples"):  # a torchcodec AudioDecoder handed over by datasets
        try:
            samples = value.get_all_samples()
        except (RuntimeError, ValueError, OSError) as error:
            raise BadSampleError(f"{where}: could not decode the audio ({error})") from error
        data = trim_to_stream_duration(samples.data, getattr(value, "metadata", None), int(samples.sample_rate))
        waveform = _resample(_to_mono(data, where), int(samples.sample_rate), sampling_rate)
    elif value is None:
        raise BadSampleError("missing audio (None)")
    else:
        raise BadSampleError(f"unsupported audio value of type {type(value).__name__}")

    waveform = waveform.to(torch.float32).contiguous()
    if waveform.numel() == 0:
        raise BadSampleError(f"{where}: the audio is empty (0 samples)")
    if not torch.isfinite(waveform).all():
        raise BadSampleError(f"{where}: the audio contains NaN or Inf samples")
    return waveform


def crop_or_pad(
    waveform: torch.Tensor, num_samples: int, generator: np.random.Generator | None = None, pad: bool = False
) -> torch.Tensor:
    """Cut ``waveform`` to at most ``num_samples``: a random window when ``generator`` is given, else the start.

    Shorter clips are returned as they are unless ``pad`` (then zero-padded at the end). Not padding is what the
    fbank feature extractor wants: it pads the *spectrogram* with zeros after the clip's real frames, as the official
    Audio-MAE data loader does.
    """
    length = waveform.shape[-1]
    if length > num_samples:
        offset = int(generator.integers(0, length - num_samples + 1)) if generator is not None else 0
        return waveform[..., offset : offset + num_samples]
    if pad and length < num_samples:
        return torch.nn.functional.pad(waveform, (0, num_samples - length))
    return waveform


__all__ = ["BadSampleError", "crop_or_pad", "decode_audio"]
