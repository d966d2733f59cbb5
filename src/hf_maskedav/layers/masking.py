"""Masking: which tokens the encoder sees.

Convention everywhere in this package: in a ``mask``/``bool_masked_pos`` tensor, **1 (True) means masked** (removed
from the encoder input or replaced by a mask token), 0 means kept.

* :func:`random_masking` -- the MAE recipe driven by a ``noise`` tensor (Audio-MAE, MAE-ST, MAViL, CAV-MAE).
* :func:`time_frequency_masking` -- Audio-MAE's structured fine-tuning masking (drop time rows and mel columns).
* :func:`mask_from_noise` -- check a ``noise`` tensor's shape (or draw it) and mask: ``"random"`` (MAE),
  ``"tube"`` (VideoMAE), ``"count"`` (VideoMAE V2 random); :func:`checked_noise` is its shape check alone.
* :func:`tube_masking` -- VideoMAE: one spatial mask repeated over every time slice, fixed count per sample
  (:func:`tube_mask_from_noise` from a given noise).
* :func:`running_cell_mask` -- VideoMAE V2's decoder mask: a 2x2 cell pattern that shifts by one cell every time
  slice (True = not reconstructed); :func:`videomae_v2_masks` draws both V2 masks exactly as the official data loader.
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

    Returns a ``[N, T * S]`` bool tensor (True = masked) with tokens ordered ``(t, s)``; the cells with the smallest
    of ``torch.rand(N, S, generator=generator)`` are masked (:func:`tube_mask_from_noise` of the negated draw).
    """
    noise = torch.rand(batch_size, num_spatial, generator=generator, device=device)
    return tube_mask_from_noise(-noise, num_frames, mask_ratio)


def tube_mask_from_noise(noise: torch.Tensor, num_frames: int, mask_ratio: float) -> torch.Tensor:
    """VideoMAE tube masking from ``[N, S]`` noise (``S = H'*W'`` spatial cells): the ``int(mask_ratio * S)`` cells
    with the largest noise are masked in every one of ``num_frames`` time slices (official ``TubeMaskingGenerator``
    count). Returns ``[N, num_frames * S]`` bool, tokens ordered ``(t, s)``."""
    cells = noise.shape[1]
    num_mask = int(mask_ratio * cells)
    ranks = torch.argsort(torch.argsort(noise, dim=1), dim=1)  # 0 = smallest noise
    return (ranks >= cells - num_mask).repeat(1, num_frames)


def count_mask_from_noise(noise: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """Unstructured masking from ``[N, L]`` noise: the ``int(mask_ratio * L)`` largest are masked (VideoMAE V2's
    count; MAE's :func:`random_masking` keeps ``int(L * (1 - ratio))`` instead). Returns ``[N, L]`` bool."""
    length = noise.shape[1]
    num_mask = int(mask_ratio * length)
    ranks = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    return ranks >= length - num_mask


def num_masked_tokens(kind: str, grid: tuple[int, ...], mask_ratio: float) -> int:
    """Masked tokens per sample of a ``"tube"`` or ``"count"`` mask, known before drawing it: ``T' * int(ratio *
    H'W')`` for tube masking, ``int(ratio * L)`` otherwise."""
    if kind == "tube":
        return grid[0] * int(mask_ratio * math.prod(grid[1:]))
    return int(mask_ratio * math.prod(grid))


MASK_KINDS = ("random", "tube", "count")


def noise_shape(kind: str, batch: int, grid: tuple[int, ...]) -> tuple[int, int]:
    """The ``noise`` shape a mask ``kind`` reads: one value per spatial cell for ``"tube"`` (``grid[1:]``), one per
    token otherwise."""
    return (batch, math.prod(grid[1:])) if kind == "tube" else (batch, math.prod(grid))


def checked_noise(
    noise: torch.Tensor | None, shape: tuple[int, ...], device=None, name: str = "noise", what: str = "batch, tokens"
) -> torch.Tensor:
    """``noise`` checked to have ``shape`` (a ``ValueError`` naming ``name`` and ``what`` the axes are) and moved to
    ``device``; ``torch.rand(shape)`` when it is None. The first step of every "noise -> mask" in the models."""
    shape = tuple(shape)
    if noise is None:
        return torch.rand(*shape, device=device)
    if tuple(noise.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {tuple(noise.shape)}")
    return noise if device is None else noise.to(device)


def mask_from_noise(
    kind: str,
    noise: torch.Tensor | None,
    grid: tuple[int, ...],
    mask_ratio: float,
    *,
    batch: int,
    device=None,
    name: str = "noise",
    what: str | None = None,
) -> MaskingIndices:
    """Check ``noise`` (draw it when None) and mask a token ``grid`` of ``kind``:

    * ``"random"`` -- MAE (:func:`random_masking`): keep ``int(L * (1 - ratio))`` smallest, in ascending-noise order.
    * ``"tube"`` -- VideoMAE (:func:`tube_mask_from_noise`), noise per spatial cell of a ``(T', H', W')`` grid.
    * ``"count"`` -- VideoMAE V2 random (:func:`count_mask_from_noise`).

    Tube and count masks list the kept tokens in ascending position (:func:`ids_from_fixed_count_mask`). Structured
    time/frequency masking reads two noises: :func:`checked_noise` each, then :func:`time_frequency_masking`.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    if what is None:
        what = (
            f"one value per spatial cell ({'x'.join(map(str, grid[1:]))}) for tube masking"
            if kind == "tube"
            else "batch, tokens"
        )
    noise = checked_noise(noise, noise_shape(kind, batch, grid), device, name, what)
    if kind == "random":
        return random_masking(noise, mask_ratio)
    if kind == "tube":
        mask = tube_mask_from_noise(noise, grid[0], mask_ratio)
    else:
        mask = count_mask_from_noise(noise, mask_ratio)
    return ids_from_fixed_count_mask(mask, math.prod(grid) - num_masked_tokens(kind, grid, mask_ratio))


def running_cell_mask(start: torch.Tensor, grid: tuple[int, int, int], mask_ratio: float) -> torch.Tensor:
    """VideoMAE V2's running-cell decoder mask (official ``RunningCellMaskingGenerator``), ``[N, T'*H'*W']`` bool.

    True = the token is **not** reconstructed by the decoder. Each 2x2 spatial cell drops ``m = int(4 * mask_ratio)``
    of its 4 positions: the cell queue ``[1]*m + [0]*(4-m)`` read from pointer ``p`` (positions in row-major order
    ``(h % 2, w % 2)``), tiled over the grid. The pointer advances by one every time slice and starts at
    ``start + 1`` (the official ``run_cell()`` runs before ``get_cell()``), so there are only 4 different masks,
    chosen by ``start`` in ``[0, 4)`` (the official generator draws it with ``np.random.randint(4)``).

    The official generator tiles ``H'//2 x W'//2`` cells and so needs even ``H'`` and ``W'``; for an odd side the
    pattern here simply continues (``h % 2``) and is cut at the border -- then the count per sample can depend on
    ``start`` (:func:`running_cell_counts`).

    Args:
        start: ``[N]`` integer start pointers in ``[0, 4)``.
        grid: token grid ``(T', H', W')``.
        mask_ratio: fraction of each cell not reconstructed; ``int(4 * ratio)`` must be 1, 2 or 3.
    """
    num_masked = int(4 * mask_ratio)
    if not 0 < num_masked < 4:
        raise ValueError(
            f"decoder_mask_ratio {mask_ratio} drops int(4 * ratio) = {num_masked} of the 4 positions of a running cell; "
            "it must drop 1, 2 or 3 (ratio 0.25, 0.5 or 0.75)"
        )
    grid_t, grid_h, grid_w = grid
    device = start.device
    t = torch.arange(grid_t, device=device).view(1, grid_t, 1, 1)
    h = torch.arange(grid_h, device=device).view(1, 1, grid_h, 1)
    w = torch.arange(grid_w, device=device).view(1, 1, 1, grid_w)
    position = (h % 2) * 2 + w % 2  # index inside the 2x2 cell, row-major
    pointer = start.long().view(-1, 1, 1, 1) + t + 1  # the official run_cell() before each frame's get_cell()
    return (((position + pointer) % 4) < num_masked).flatten(1)  # queue[(i + ptr) % 4] == 1 for the first m entries


def running_cell_counts(grid: tuple[int, int, int], mask_ratio: float) -> list[int]:
    """Tokens *not* reconstructed per sample for each of the 4 start pointers of :func:`running_cell_mask`.

    All four are equal (``int(4 * ratio) / 4`` of every time slice) when ``H'`` and ``W'`` are even; for an odd side
    they are equal when ``T'`` is a multiple of 4 (each pointer then occurs equally often).
    """
    num_masked = int(4 * mask_ratio)
    grid_t, grid_h, grid_w = grid
    rows, cols = ((grid_h + 1) // 2, grid_h // 2), ((grid_w + 1) // 2, grid_w // 2)  # even / odd rows and columns
    per_position = [rows[i // 2] * cols[i % 2] for i in range(4)]  # tokens at each position of the 2x2 cell
    # plain Python (no tensor read back), so that a compiled forward stays one graph
    return [
        sum(per_position[i] for t in range(grid_t) for i in range(4) if (i + start + t + 1) % 4 < num_masked)
        for start in range(4)
    ]


def videomae_v2_masks(
    rng, batch_size: int, grid: tuple[int, int, int], mask_ratio: float, decoder_mask_ratio: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both VideoMAE V2 masks drawn as the official data pipeline draws them, from a numpy ``RandomState``.

    Per sample, in batch order (``DataAugmentationForVideoMAEv2.__call__``): the encoder tube mask (one
    ``rng.shuffle`` of ``[0]*(S - m) + [1]*m`` with ``m = int(mask_ratio * S)``, ``S = H'*W'``, repeated over time,
    official ``TubeMaskingGenerator``), then the running-cell decoder mask (``rng.randint(4)`` picks the start
    pointer, official ``RunningCellMaskingGenerator``). ``np.random.RandomState(seed)`` reproduces the official
    ``np.random.seed(seed)`` stream.

    Returns ``(bool_masked_pos, decode_masked_pos)``, each ``[N, L]`` bool (True = hidden from the encoder / not
    reconstructed by the decoder).
    """
    import numpy as np

    grid_t, grid_h, grid_w = grid
    cells = grid_h * grid_w
    num_mask = int(mask_ratio * cells)
    encoder, starts = [], []
    for _ in range(batch_size):
        frame = np.hstack([np.zeros(cells - num_mask), np.ones(num_mask)])
        rng.shuffle(frame)
        encoder.append(np.tile(frame, grid_t))
        starts.append(int(rng.randint(4)))
    bool_masked_pos = torch.from_numpy(np.stack(encoder)).bool()
    return bool_masked_pos, running_cell_mask(torch.tensor(starts), grid, decoder_mask_ratio)


def _random_block(rng: random.Random, min_patches: float, max_patches: float, log_aspect: tuple[float, float]):
    target_area = rng.uniform(min_patches, max_patches)
    aspect = math.exp(rng.uniform(*log_aspect))
    return int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))


def _grow_blocks(mask: torch.Tensor, num_masking_patches: int, tries: int, budget_of, draw) -> torch.Tensor:
    """The generators' shared loop: add blocks until about ``num_masking_patches`` cells of ``mask`` are masked.

    Each round allows ``budget_of(cells still missing)`` new cells and makes up to ``tries`` draws; ``draw(budget)``
    returns the region (a view of ``mask``) of a random block, or None when it does not fit. A block is accepted when
    it adds between 1 and ``budget`` cells; a round with none accepted ends the loop.
    """
    count = 0
    while count < num_masking_patches:
        budget = budget_of(num_masking_patches - count)
        added = 0
        for _ in range(tries):
            region = draw(budget)
            if region is None:
                continue
            new = region.numel() - int(region.sum())
            if 0 < new <= budget:
                region.fill_(True)
                added = new
                break
        if added == 0:
            break
        count += added
    return mask


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

    def draw_block(budget):
        h, w = _random_block(rng, min_num_patches, budget, log_aspect)
        if h < height and w < width:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            return mask[top : top + h, left : left + w]
        return None

    return _grow_blocks(mask, num_masking_patches, 10, lambda missing: min(missing, max_num_patches), draw_block)


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

    def draw_cube(budget):
        h, w = _random_block(rng, min_num_patches, max_num_patches, log_aspect)
        t = rng.randint(1, frames)
        if h < height and w < width:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            front = rng.randint(0, frames - t)
            return mask[front : front + t, top : top + h, left : left + w]
        return None

    return _grow_blocks(mask, num_masking_patches, 100, lambda missing: missing, draw_cube)
