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


def spectrogram_jitter(
    input_values: torch.Tensor,
    time_shift: bool = False,
    mel_shift: float = 0.0,
    time_stretch: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Speaker- and timing-robustness augmentation of a featurized batch, each example drawn independently.

    The clip's own frames (the rows before the feature extractor's constant padding) are stretched along time by a
    factor in ``[1 / (1 + time_stretch), 1 + time_stretch]`` (tempo), shifted along the mel axis by up to
    ``mel_shift`` bins (linear interpolation, edges repeated: a cheap pitch / vocal-tract-length change), and, with
    ``time_shift``, placed at a random offset of the window instead of at its start (a short word is not always at
    the beginning of a clip). Padding keeps its value.

    Args:
        input_values: ``[N, T, F]`` (or ``[N, 1, T, F]``) features from the feature extractor.
        time_shift, mel_shift, time_stretch: see above; all off by default (the input is returned unchanged).
        generator: random source (CPU); the global RNG when omitted.

    Returns:
        a new tensor; the input is not modified.
    """
    if not (time_shift or mel_shift > 0 or time_stretch > 0):
        return input_values
    squeeze = input_values.dim() == 4
    x = input_values[:, 0] if squeeze else input_values
    if x.dim() != 3:
        raise ValueError(f"spectrogram_jitter expects (batch, frames, mel_bins), got {tuple(input_values.shape)}")
    batch, frames, bins = x.shape
    flat = (x.amax(dim=-1) - x.amin(dim=-1)) == 0  # [N, T] padding rows are constant
    draws = torch.rand(batch, 3, generator=generator).to(x.device)  # stretch, mel shift, offset
    out = torch.empty_like(x)
    for i in range(batch):
        padded = flat[i].nonzero()
        length = int(padded[0]) if len(padded) and bool(flat[i, int(padded[0]):].all()) else frames
        fill = x[i, length, 0] if length < frames else x.new_zeros(())
        clip = x[i, : max(length, 1)]
        if time_stretch > 0:
            factor = (1 + time_stretch) ** (2 * float(draws[i, 0]) - 1)
            size = max(1, min(frames, round(clip.shape[0] * factor)))
            clip = torch.nn.functional.interpolate(clip.T[None], size=size, mode="linear", align_corners=False)[0].T
        if mel_shift > 0:
            grid = torch.arange(bins, device=x.device, dtype=x.dtype) + (2 * float(draws[i, 1]) - 1) * mel_shift
            grid = grid.clamp(0, bins - 1)
            low = grid.floor().long()
            high = (low + 1).clamp(max=bins - 1)
            weight = grid - low
            clip = clip[:, low] * (1 - weight) + clip[:, high] * weight
        offset = int(float(draws[i, 2]) * (frames - clip.shape[0] + 1)) if time_shift else 0
        out[i] = fill
        out[i, offset : offset + clip.shape[0]] = clip
    return out[:, None] if squeeze else out


__all__ = ["spec_augment", "spectrogram_jitter"]
