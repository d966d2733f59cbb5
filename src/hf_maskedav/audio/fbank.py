"""Batched Kaldi-compatible log-mel filterbank in torch (any device).

Computes what ``torchaudio.compliance.kaldi.fbank`` computes with the options every model here uses (25 ms
Hann window, 10 ms hop, ``snip_edges``, per-frame DC removal, pre-emphasis 0.97, power spectrum of a 512-point FFT,
Kaldi mel filters from 20 Hz to Nyquist, ``log(max(x, eps))``), but for a whole batch at once and on the device of
the input. The mel matrix comes from torchaudio's ``get_mel_banks`` and is built once per configuration.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=16)
def _mel_matrix(num_mel_bins: int, fft_size: int, sampling_rate: int, low_freq: float, high_freq: float):
    from torchaudio.compliance.kaldi import get_mel_banks

    banks, _ = get_mel_banks(num_mel_bins, fft_size, float(sampling_rate), low_freq, high_freq, 100.0, -500.0, 1.0)
    # Kaldi's banks cover fft_size / 2 bins; the Nyquist bin gets a zero column.
    return torch.nn.functional.pad(banks.double(), (0, 1)).T.contiguous()  # [fft_size/2 + 1, num_mel_bins]


@lru_cache(maxsize=16)
def _hann(window_size: int) -> torch.Tensor:
    return torch.hann_window(window_size, periodic=False, dtype=torch.float64)


def _power_spectrum(frames: torch.Tensor) -> torch.Tensor:
    """``|rfft(frames)|^2`` over the last axis. Float64 on the CPU goes through numpy's pocketfft, about twice as
    fast as torch's CPU FFT in double precision (the same values); everything else stays in torch."""
    if frames.dtype == torch.float64 and frames.device.type == "cpu" and not frames.requires_grad:
        spectrum = np.fft.rfft(frames.numpy())
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        return torch.from_numpy(power)
    spectrum = torch.fft.rfft(frames)
    return spectrum.real.square() + spectrum.imag.square()


def num_frames(num_samples: int, sampling_rate: int, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> int:
    """Frames Kaldi produces for ``num_samples`` with ``snip_edges=True``."""
    window = int(sampling_rate * frame_length_ms / 1000)
    shift = int(sampling_rate * frame_shift_ms / 1000)
    return 0 if num_samples < window else 1 + (num_samples - window) // shift


def mel_centre_frequencies(
    num_mel_bins: int, sampling_rate: int = 16000, frame_length_ms: float = 25.0, low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """``[num_mel_bins]`` centre frequency (Hz) of each mel filter :func:`kaldi_fbank` uses with these settings."""
    from torchaudio.compliance.kaldi import get_mel_banks

    fft_size = 1 << math.ceil(math.log2(int(sampling_rate * frame_length_ms / 1000)))
    high = high_freq if high_freq > 0 else sampling_rate / 2 + high_freq
    _, centres = get_mel_banks(num_mel_bins, fft_size, float(sampling_rate), low_freq, high, 100.0, -500.0, 1.0)
    return centres


def kaldi_fbank(
    waveforms: torch.Tensor,
    lengths: torch.Tensor | None = None,
    sampling_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    dtype: torch.dtype = torch.float64,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Log-mel fbank of a batch of mono waveforms.

    Args:
        waveforms: ``[N, S]`` float waveforms, right-padded to a common length.
        lengths: ``[N]`` true lengths in samples (all ``S`` when omitted). Frames past a clip's end are returned as 0.
        dtype: precision of the framing and FFT. float64 (default) keeps low-energy bins, where a float32 FFT's
            rounding noise dominates, within 1e-4 of the exact values (the mel projection and log then run in
            float32, ~1e-7 from float64); float32 is faster, on GPUs especially, at the cost of that noise.
        chunk_size: clips processed at once (1 on CPU, the whole batch elsewhere, by default).

    Returns:
        ``[N, frames, num_mel_bins]`` where ``frames`` is the frame count of the longest clip.
    """
    if waveforms.dim() != 2:
        raise ValueError(f"waveforms must have shape (batch, samples), got {tuple(waveforms.shape)}")
    window = int(sampling_rate * frame_length_ms / 1000)
    shift = int(sampling_rate * frame_shift_ms / 1000)
    fft_size = 1 << math.ceil(math.log2(window))
    high = high_freq if high_freq > 0 else sampling_rate / 2 + high_freq
    total = num_frames(waveforms.shape[1], sampling_rate, frame_length_ms, frame_shift_ms)
    if total == 0:
        raise ValueError(f"audio of {waveforms.shape[1]} samples is shorter than one {frame_length_ms} ms frame")
    device = waveforms.device
    hann = _hann(window).to(device, dtype)
    # The mel projection sums a few positive powers per bin: float32 keeps it within ~1e-7 (relative) of float64.
    mel_matrix = _mel_matrix(num_mel_bins, fft_size, sampling_rate, low_freq, high).to(device, torch.float32)
    if chunk_size is None:
        # On CPU, clip by clip keeps the frames in cache (about 3x faster than one big batch); elsewhere, all at once.
        chunk_size = 1 if device.type == "cpu" else waveforms.shape[0]

    fbank = torch.empty(waveforms.shape[0], total, num_mel_bins, device=device, dtype=torch.float32)
    for start in range(0, waveforms.shape[0], chunk_size):
        samples = waveforms[start : start + chunk_size].to(dtype)  # [n, S]
        frames = samples.unfold(1, window, shift)  # [n, frames, window], a view
        dc = frames.mean(dim=-1, keepdim=True)  # remove_dc_offset
        # Pre-emphasis of the DC-free frame, taken from the waveform once instead of per frame: inside a frame,
        # sample i > 0 becomes x[i] - p * x[i-1] - (1 - p) * dc; the first sample is pre-emphasised against itself.
        emphasised = samples.clone()
        torch.sub(samples[:, 1:], samples[:, :-1], alpha=preemphasis, out=emphasised[:, 1:])
        # Frames copied into a zero-padded FFT buffer first: the FFT then pads nothing (numpy's padding costs as
        # much as the transform), and broadcasting ops straight on the overlapping frame view are ~20x slower.
        padded = torch.zeros(*frames.shape[:2], fft_size, dtype=dtype, device=device)
        windowed = padded[..., :window]
        windowed.copy_(emphasised.unfold(1, window, shift)).sub_((1.0 - preemphasis) * dc).mul_(hann)
        windowed[..., 0] = (frames[..., 0] - dc[..., 0]) * ((1.0 - preemphasis) * hann[0])
        power = _power_spectrum(padded)  # [n, frames, fft/2 + 1]
        mel = torch.matmul(power.to(torch.float32), mel_matrix, out=fbank[start : start + chunk_size])
        mel.clamp_(min=torch.finfo(torch.float32).eps).log_()  # [n, frames, mel], in the output

    if lengths is not None:
        valid = torch.tensor(
            [num_frames(int(n), sampling_rate, frame_length_ms, frame_shift_ms) for n in lengths], device=device
        )
        past_end = torch.arange(total, device=device)[None, :] >= valid[:, None]
        fbank = fbank.masked_fill_(past_end[..., None], 0.0)
    return fbank
