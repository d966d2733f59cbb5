"""Masking: which tokens the encoder sees.

Convention everywhere in this package: in a ``mask``/``bool_masked_pos`` tensor, **1 (True) means masked** (removed
from the encoder input or replaced by a mask token), 0 means kept.

* :func:`random_masking` -- the MAE recipe driven by a ``noise`` tensor (Audio-MAE, MAE-ST, MAViL, CAV-MAE).
* :func:`time_frequency_masking` -- Audio-MAE's structured fine-tuning masking (drop time rows and mel columns).
* :func:`tube_masking` -- VideoMAE: one spatial mask repeated over every time slice, fixed count per sample.
* :func:`block_masking` / :func:`cube_masking` -- BEiT-style blocks (MaskFeat images) and space-time cubes (MaskFeat
  video); the number of masked tokens is not fixed per sample.
* :func:`ids_from_bool_mask` -- turn an external ``bool_masked_pos`` with a fixed count per sample into the
  ``ids_keep``/``ids_restore`` form the encoders use (:func:`ids_from_fixed_count_mask` when the count is known).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch


@dataclass
class MaskingIndices:
    """Result of a masking draw.

    Attributes:
        ids_keep: ``[N, len_keep]`` indices of the kept tokens, in the order the encoder sees them.
        ids_restore: ``[N, L]`` permutation that puts ``[kept, removed]`` tokens back in the original order.
        mask: ``[N, L]`` float, 1 for removed tokens, in the original token order.
    """

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor


def num_kept(num_tokens: int, mask_ratio: float) -> int:
    """``int(L * (1 - ratio))`` in Python float arithmetic, exactly as the official MAE code."""
    return int(num_tokens * (1 - mask_ratio))


def random_masking(noise: torch.Tensor, mask_ratio: float) -> MaskingIndices:
    """MAE random masking from a ``[N, L]`` noise tensor (official ``random_masking``).

    The tokens with the smallest noise are kept, in ascending-noise order (not re-sorted).
    """
    if noise.dim() != 2:
        raise ValueError(f"noise must have shape (batch, num_tokens), got {tuple(noise.shape)}")
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    batch, length = noise.shape
    len_keep = num_kept(length, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is keep
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch, length, device=noise.device, dtype=torch.float32)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)  # back to the original token order
    return MaskingIndices(ids_keep=ids_shuffle[:, :len_keep], ids_restore=ids_restore, mask=mask)


def ids_from_bool_mask(bool_masked_pos: torch.Tensor) -> MaskingIndices:
    """Turn a ``[N, L]`` boolean mask (True = masked) into kept/restore indices.

    Kept tokens come first in ascending token order, then the masked ones in ascending order (the order VideoMAE's
    ``x[~mask]`` produces). Every sample must mask the same number of tokens.
    """
    if bool_masked_pos.dim() != 2:
        raise ValueError(f"bool_masked_pos must have shape (batch, num_tokens), got {tuple(bool_masked_pos.shape)}")
    bool_masked_pos = bool_masked_pos.bool()
    counts = bool_masked_pos.sum(dim=1)
    if (counts != counts[0]).any():
        raise ValueError(
            "bool_masked_pos must mask the same number of tokens in every sample of the batch "
            f"(got counts {counts.tolist()}); use a fixed-count generator such as tube_masking"
        )
    return ids_from_fixed_count_mask(bool_masked_pos, bool_masked_pos.shape[1] - int(counts[0]))


def ids_from_fixed_count_mask(bool_masked_pos: torch.Tensor, len_keep: int) -> MaskingIndices:
    """:func:`ids_from_bool_mask` for a mask whose per-sample count of kept tokens ``len_keep`` is known in advance
    (a mask the model drew itself with a fixed ratio): nothing is read back from the device, so ``torch.compile``
    captures it in one graph. The caller guarantees the count; it is not checked.
    """
    length = bool_masked_pos.shape[1]
    # stable sort of (masked flag, position): kept tokens first, each group in ascending position
    order = bool_masked_pos.long() * length + torch.arange(length, device=bool_masked_pos.device)
    ids_shuffle = torch.argsort(order, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    return MaskingIndices(ids_keep=ids_shuffle[:, :len_keep], ids_restore=ids_restore, mask=bool_masked_pos.float())


def time_frequency_masking(
    time_noise: torch.Tensor, freq_noise: torch.Tensor, mask_time_prob: float, mask_freq_prob: float
) -> torch.Tensor:
    """Structured time/frequency token dropping on a time-major ``T x F`` grid (Audio-MAE fine-tuning).

    Keeps ``int(T * (1 - p_t))`` time rows and ``int(F * (1 - p_f))`` frequency columns, each in ascending-noise
    order (official ``random_masking_2d`` in ``models_vit.py``), and returns ``[N, T_keep * F_keep]`` flat token
    indices laid out ``[T_keep, F_keep]``.
    """
    keep_t = torch.argsort(time_noise, dim=1)[:, : num_kept(time_noise.shape[1], mask_time_prob)]  # [N, T']
    keep_f = torch.argsort(freq_noise, dim=1)[:, : num_kept(freq_noise.shape[1], mask_freq_prob)]  # [N, F']
    num_freq = freq_noise.shape[1]
    return (keep_t[:, :, None] * num_freq + keep_f[:, None, :]).flatten(1)  # [N, T'*F']


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``tokens[n, ids[n, i]]`` for ``[N, L, D]`` tokens and ``[N, K]`` ids -> ``[N, K, D]``."""
    return torch.gather(tokens, dim=1, index=ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def restore_with_mask_tokens(visible: torch.Tensor, mask_token: torch.Tensor, ids_restore: torch.Tensor):
    """Append mask tokens after the visible ones and unshuffle to the original order: ``[N, L, D]``."""
    batch, num_visible, dim = visible.shape
    fill = mask_token.to(visible.dtype).expand(batch, ids_restore.shape[1] - num_visible, dim)
    return gather_tokens(torch.cat([visible, fill], dim=1), ids_restore)


def tube_masking(
    batch_size: int, num_frames: int, num_spatial: int, mask_ratio: float, generator=None, device=None
) -> torch.Tensor:
    """VideoMAE tube masking: ``int(mask_ratio * S)`` masked cells per frame, the same cells for every frame.

    Returns a ``[N, T * S]`` bool tensor (True = masked) with tokens ordered ``(t, s)``.
    """
    num_mask = int(mask_ratio * num_spatial)
    noise = torch.rand(batch_size, num_spatial, generator=generator, device=device)
    ranks = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    frame_mask = ranks < num_mask  # [N, S]
    return frame_mask.repeat(1, num_frames)


def _random_block(rng: random.Random, min_patches: float, max_patches: float, log_aspect: tuple[float, float]):
    target_area = rng.uniform(min_patches, max_patches)
    aspect = math.exp(rng.uniform(*log_aspect))
    return int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))


def block_masking(
    height: int,
    width: int,
    num_masking_patches: int,
    min_num_patches: int = 4,
    max_num_patches: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
    rng: random.Random | None = None,
) -> torch.Tensor:
    """BEiT-style block masking of a ``height x width`` grid (MaskFeat images). Returns ``[H, W]`` bool.

    Rectangles of random area and aspect ratio are added until about ``num_masking_patches`` cells are masked; a
    rectangle may add at most the number of cells still missing, so the count is close to but not always exactly
    the target.
    """
    rng = rng or random.Random()
    max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
    log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
    mask = torch.zeros(height, width, dtype=torch.bool)
    count = 0
    while count < num_masking_patches:
        budget = min(num_masking_patches - count, max_num_patches)
        added = 0
        for _ in range(10):
            h, w = _random_block(rng, min_num_patches, budget, log_aspect)
            if h < height and w < width:
                top, left = rng.randint(0, height - h), rng.randint(0, width - w)
                region = mask[top : top + h, left : left + w]
                new = h * w - int(region.sum())
                if 0 < new <= budget:
                    region.fill_(True)
                    added = new
                    break
        if added == 0:
            break
        count += added
    return mask


def cube_masking(
    mask_window_size: tuple[int, int, int],
    num_masking_patches: int,
    min_num_patches: int = 16,
    max_num_patches: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
    rng: random.Random | None = None,
) -> torch.Tensor:
    """Space-time cube masking (MaskFeat video): blocks with a random temporal extent. Returns ``[T, H, W]`` bool.

    Same random draws as SlowFast's ``MaskingGenerator3D``: the spatial area is drawn from
    ``[min_num_patches, max_num_patches]`` (``max_num_patches`` bounds the *area of one frame's rectangle*), the
    temporal extent from ``randint(1, T)``, and a cube is accepted when it adds between 1 and the number of cells
    still missing (unlike the 2-D generator, that budget is not capped by ``max_num_patches``).
    """
    rng = rng or random.Random()
    frames, height, width = mask_window_size
    max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
    log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
    mask = torch.zeros(frames, height, width, dtype=torch.bool)
    count = 0
    while count < num_masking_patches:
        budget = num_masking_patches - count
        added = 0
        for _ in range(100):
            h, w = _random_block(rng, min_num_patches, max_num_patches, log_aspect)
            t = rng.randint(1, frames)
            if h < height and w < width:
                top, left = rng.randint(0, height - h), rng.randint(0, width - w)
                front = rng.randint(0, frames - t)
                region = mask[front : front + t, top : top + h, left : left + w]
                new = t * h * w - int(region.sum())
                if 0 < new <= budget:
                    region.fill_(True)
                    added = new
                    break
        if added == 0:
            break
        count += added
    return mask
