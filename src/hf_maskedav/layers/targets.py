"""Reconstruction targets: patchify/unpatchify for 2-D and 3-D inputs and normalised-pixel targets."""

from __future__ import annotations

import math

import torch


def patchify_2d(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[N, C, H, W] -> [N, (H/p)*(W/p), p*p*C]``, tokens row-major, values ordered (row, col, channel)."""
    batch, channels, height, width = images.shape
    p = patch_size
    if height % p or width % p:
        raise ValueError(f"input of size {height}x{width} is not divisible by patch size {p}")
    h, w = height // p, width // p
    x = images.reshape(batch, channels, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(batch, h * w, p * p * channels)


def unpatchify_2d(patches: torch.Tensor, patch_size: int, grid: tuple[int, int], channels: int = 1) -> torch.Tensor:
    """Inverse of :func:`patchify_2d` for a token grid ``(H/p, W/p)``: ``[N, L, p*p*C] -> [N, C, H, W]``."""
    batch = patches.shape[0]
    h, w = grid
    p = patch_size
    x = patches.reshape(batch, h, w, p, p, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(batch, channels, h * p, w * p)


def patchify_3d(videos: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """``[N, C, T, H, W] -> [N, T'*H'*W', t*p*p*C]``, tokens (t, h, w), values (frame, row, col, channel)."""
    batch, channels, frames, height, width = videos.shape
    t, p = tubelet_size, patch_size
    if frames % t or height % p or width % p:
        raise ValueError(f"video of size {frames}x{height}x{width} is not divisible by tubelet {t}x{p}x{p}")
    x = videos.reshape(batch, channels, frames // t, t, height // p, p, width // p, p)
    x = torch.einsum("nctuhpwq->nthwupqc", x)
    return x.reshape(batch, (frames // t) * (height // p) * (width // p), t * p * p * channels)


def unpatchify_3d(
    patches: torch.Tensor, tubelet_size: int, patch_size: int, grid: tuple[int, int, int], channels: int = 3
) -> torch.Tensor:
    """Inverse of :func:`patchify_3d`: ``[N, L, t*p*p*C] -> [N, C, T, H, W]``."""
    batch = patches.shape[0]
    gt, gh, gw = grid
    t, p = tubelet_size, patch_size
    x = patches.reshape(batch, gt, gh, gw, t, p, p, channels)
    x = torch.einsum("nthwupqc->nctuhpwq", x)
    return x.reshape(batch, channels, gt * t, gh * p, gw * p)


def normalize_per_patch(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MAE ``norm_pix_loss`` target: per-token mean and *unbiased* variance, ``(x - mean) / sqrt(var + eps)``."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def normalize_per_patch_channel(patches: torch.Tensor, channels: int, eps: float = 1e-6) -> torch.Tensor:
    """VideoMAE target: normalise each channel of each token separately, eps added to the *std*.

    ``patches`` are ``[N, L, K*C]`` with the channel last; returns the same layout with
    ``(x - mean_c) / (sqrt(unbiased var_c) + eps)``.
    """
    batch, length, width = patches.shape
    x = patches.reshape(batch, length, width // channels, channels)
    mean = x.mean(dim=-2, keepdim=True)
    std = x.var(dim=-2, keepdim=True).sqrt()
    return ((x - mean) / (std + eps)).reshape(batch, length, width)


def video_pixel_targets(
    video: torch.Tensor,
    ids: torch.Tensor,
    kernel: tuple[int, int, int],
    pixel_mean,
    pixel_std,
    normalize: bool,
    eps: float = 1e-6,
) -> torch.Tensor:
    """VideoMAE's reconstruction target of the tokens ``ids`` only, ``[N, M, t*p*p*C]`` (values ordered (frame, row,
    column, channel), as :func:`patchify_3d`), as the official ``engine_for_pretraining.py`` builds it.

    ``video`` is the normalised ``[N, C, T, H, W]`` clip; only the ``ids`` tubelets are cut (:func:`select_patches`),
    un-normalised with ``pixel_mean``/``pixel_std`` and, with ``normalize``, normalised per channel of each tubelet:
    ``(x - mean) / (sqrt(unbiased var) + eps)``, the statistics taken over a contiguous row (channel-first, in place).
    """
    patches = select_patches(video, ids, kernel).flatten(3)  # [N, M, C, K]; a new tensor, so updated in place
    batch, num_tokens, channels, values = patches.shape
    shape = (1, 1, channels, 1)
    patches.mul_(torch.tensor(pixel_std, device=video.device, dtype=patches.dtype).view(shape))
    patches.add_(torch.tensor(pixel_mean, device=video.device, dtype=patches.dtype).view(shape))  # raw pixels
    if normalize:
        # The statistic of normalize_per_patch_channel in another form; kept apart because the parity fixtures pin
        # both to the bit (this one the official loss, that one the official labels; merging moves one by 1 ulp).
        patches.sub_(patches.mean(dim=-1, keepdim=True))
        patches.div_(torch.linalg.vector_norm(patches, dim=-1, keepdim=True).div_((values - 1) ** 0.5).add_(eps))
    out = torch.empty(batch, num_tokens, values, channels, device=video.device, dtype=patches.dtype)
    out.transpose(2, 3).copy_(patches)  # into the logits' layout, so that the loss reads both contiguously
    return out.view(batch, num_tokens, values * channels)


def select_patches(pixels: torch.Tensor, ids: torch.Tensor, kernel: tuple[int, ...]) -> torch.Tensor:
    """Cut only the non-overlapping patches ``ids`` of an image or clip, channel first inside each patch.

    Args:
        pixels: ``[N, C, H, W]`` (2-D kernel) or ``[N, C, T, H, W]`` (3-D kernel); any strides (a permuted view is
            read in place). A few patches are read directly; for more than a quarter of them the whole input is
            cut once and the rows picked (faster on CPU).
        ids: ``[N, K]`` token indices on the row-major patch grid (the order of :func:`patchify_2d`/``_3d`` and of
            the patch convolutions).
        kernel: patch size per spatial (and temporal) axis, e.g. ``(p, p)`` or ``(t, p, p)``.

    Returns:
        ``[N, K, C, *kernel]``: flattened from dim 2 it is the input of the patch convolution's weight viewed as
        ``[D, C * prod(kernel)]``. Trailing pixels that do not fill a patch are ignored, as the convolution does.
    """
    batch, channels, *sizes = pixels.shape
    if len(sizes) != len(kernel):
        raise ValueError(f"a {len(kernel)}-D patch kernel needs {len(kernel)} spatial axes, got input {tuple(pixels.shape)}")
    grid = [size // k for size, k in zip(sizes, kernel)]
    pixels = pixels[(..., *(slice(0, g * k) for g, k in zip(grid, kernel)))]
    split = [batch, channels]
    for g, k in zip(grid, kernel):
        split += [g, k]
    dims = len(kernel)
    # [N, C, g0, k0, g1, k1, ...] -> [N, g0, g1, ..., C, k0, k1, ...] (a view)
    view = pixels.reshape(split).permute(0, *range(2, 2 + 2 * dims, 2), 1, *range(3, 3 + 2 * dims, 2))
    length = math.prod(grid)
    batch_index = torch.arange(batch, device=ids.device)[:, None]
    if 4 * ids.shape[1] > length:
        # Most tokens (e.g. the 90% masked ones): one contiguous patchify, then whole rows, is faster on CPU than
        # element-wise advanced indexing.
        rows = view.reshape(batch * length, -1)  # [N*L, C*prod(kernel)]
        picked = rows.index_select(0, (ids + batch_index * length).reshape(-1))
        return picked.view(batch, ids.shape[1], channels, *kernel)
    coords = []
    rest = ids
    for g in reversed(grid[1:]):
        coords.append(rest % g)
        rest = rest // g
    coords.append(rest)
    return view[(batch_index, *reversed(coords))]  # [N, K, C, *kernel]
