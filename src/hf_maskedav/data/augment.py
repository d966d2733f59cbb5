"""Batched spectrogram augmentation for fine-tuning (runs on the training device, after feature extraction)."""

from __future__ import annotations

import torch


def _band_mask(batch: int, size: int, max_width: int, device, generator) -> torch.Tensor:
    """``[batch, size]`` True inside one random band per row: width ~ U{0..max_width}, start ~ U{0..size-width}."""
    width = torch.floor(torch.rand(batch, generator=generator, device=device) * (min(max_width, size) + 1))
    start = torch.floor(torch.rand(batch, generator=generator, device=device) * (size - width + 1))
    positions = torch.arange(size, device=device)[None, :]
    return (positions >= start[:, None]) & (positions < (start + width)[:, None])


def spec_augment(
    input_values: torch.Tensor,
    freq_mask_param: int = 0,
    time_mask_param: int = 0,
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment (one frequency band and one time band per example, independently drawn), on a batch.

    Same distribution as torchaudio's ``FrequencyMasking``/``TimeMasking`` with ``iid_masks=True``, which the official
    Audio-MAE fine-tuning applies (AudioSet: ``freqm=48``, ``timem=192`` for 128 x 1024 inputs). The official code
    masks the log-mel before normalising it; here the normalised features are masked with ``value`` (0 = the
    dataset mean after normalisation).

    Args:
        input_values: ``[N, T, F]`` (or ``[N, 1, T, F]``) normalised fbank.
        freq_mask_param, time_mask_param: maximum band widths in mel bins and frames (0 disables).
        generator: random source on the input's device (the global RNG when omitted).

    Returns:
        a new tensor; the input is not modified.
    """
    squeeze = input_values.dim() == 4
    x = input_values[:, 0] if squeeze else input_values
    if x.dim() != 3:
        raise ValueError(f"spec_augment expects (batch, frames, mel_bins) features, got {tuple(input_values.shape)}")
    batch, frames, bins = x.shape
    mask = torch.zeros(batch, frames, bins, dtype=torch.bool, device=x.device)
    if freq_mask_param > 0:
        mask |= _band_mask(batch, bins, freq_mask_param, x.device, generator)[:, None, :]
    if time_mask_param > 0:
        mask |= _band_mask(batch, frames, time_mask_param, x.device, generator)[:, :, None]
    out = x.masked_fill(mask, value)
    return out[:, None] if squeeze else out


__all__ = ["spec_augment"]
