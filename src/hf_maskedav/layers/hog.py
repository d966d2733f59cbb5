"""Histogram-of-oriented-gradients targets (MaskFeat), batched in torch and usable on any device.

The numbers follow SlowFast's ``HOGLayerC`` (``slowfast/models/operators.py``) exactly, including its quirks:

* the input is the *normalised* image (after mean/std), reflect-padded by one pixel;
* per-channel (depthwise) 3x3 Sobel cross-correlation with ``kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` and
  ``ky = kx^T`` (note the sign);
* orientation ``atan2(gx, gy)`` (gx first), scaled by ``bins / pi`` to ``[-bins, bins]``, floored, then taken
  modulo ``bins`` (Python-style modulo of negatives) -> unsigned orientation, hard assignment to one bin;
* magnitudes summed over non-overlapping ``cell x cell`` pixel cells;
* each cell's histogram L2-normalised per colour channel (``F.normalize``, eps 1e-12), no block normalisation.

:func:`hog_token_targets` then cuts the ``[N, C, bins, H/cell, W/cell]`` map into one vector per output token, with
the channel-bin index as the slowest axis (``((c * bins + b) * k + cell_row) * k + cell_col``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sobel_kernels(num_channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The depthwise Sobel kernels ``[C, 1, 3, 3]`` of ``HOGLayerC`` (``weight_x``, ``weight_y = weight_x^T``)."""
    kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    weight_x = kx.view(1, 1, 3, 3).repeat(num_channels, 1, 1, 1)
    return weight_x, weight_x.transpose(2, 3).contiguous()


def gaussian_kernel_2d(size: int, std: float) -> torch.Tensor:
    """Normalised ``size x size`` Gaussian window (SlowFast ``get_gkern``), used when ``gaussian_window > 0``."""
    n = torch.arange(size, dtype=torch.float32)
    n = (n - n.mean()) / std
    g = torch.exp(-0.5 * n**2)
    window = torch.outer(g, g)
    return window / window.sum()


class HOGLayer(nn.Module):
    """Batched HOG feature map: ``[N, C, H, W]`` images -> ``[N, C, bins, H / cell, W / cell]``.

    Args:
        num_bins: orientation bins over 180 degrees (9 in MaskFeat).
        cell_size: side of the square pixel cell whose magnitudes are summed (8 in MaskFeat).
        gaussian_window: 0 (official MaskFeat) or the side of a Gaussian window, tiled over the image, that weights
            the magnitudes (the mmselfsup/mmpretrain MaskFeat reproduction uses 16).
        num_channels: image channels (each gets its own histogram).

    The Sobel kernels (and the Gaussian window) are fixed, non-persistent buffers: they are not part of a saved
    model. The computation always runs in float32 (the official layer allocates a float32 histogram) and returns
    float32; it needs no gradient.
    """

    def __init__(self, num_bins: int = 9, cell_size: int = 8, gaussian_window: int = 0, num_channels: int = 3):
        super().__init__()
        if num_bins < 1 or cell_size < 1 or gaussian_window < 0:
            raise ValueError(
                f"invalid HOG settings: num_bins={num_bins}, cell_size={cell_size}, gaussian_window={gaussian_window}"
            )
        self.num_bins = num_bins
        self.cell_size = cell_size
        self.gaussian_window = gaussian_window
        self.num_channels = num_channels
        weight_x, weight_y = sobel_kernels(num_channels)
        self.register_buffer("weight_x", weight_x, persistent=False)
        self.register_buffer("weight_y", weight_y, persistent=False)
        window = gaussian_kernel_2d(gaussian_window, gaussian_window // 2) if gaussian_window else torch.zeros(0)
        self.register_buffer("gaussian", window, persistent=False)

    def reset_buffers(self) -> None:
        """Rebuild the fixed buffers in place (``from_pretrained`` materialises non-persistent buffers empty)."""
        weight_x, weight_y = sobel_kernels(self.num_channels)
        window = (
            gaussian_kernel_2d(self.gaussian_window, self.gaussian_window // 2) if self.gaussian_window else torch.zeros(0)
        )
        with torch.no_grad():
            for name, value in (("weight_x", weight_x), ("weight_y", weight_y), ("gaussian", window)):
                buffer = getattr(self, name)
                if buffer.shape != value.shape:
                    setattr(self, name, value.to(buffer.device))
                else:
                    buffer.copy_(value)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}, cell_size={self.cell_size}, gaussian_window={self.gaussian_window}"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.num_channels:
            raise ValueError(
                f"HOG expects images of shape (batch, {self.num_channels}, height, width), got {tuple(images.shape)}"
            )
        batch, channels, height, width = images.shape
        if height % self.cell_size or width % self.cell_size:
            raise ValueError(
                f"HOG needs height and width divisible by the cell size {self.cell_size}, got {height}x{width}"
            )
        if height < 2 or width < 2:
            raise ValueError(f"HOG needs images of at least 2x2 pixels (reflect padding), got {height}x{width}")
        x = images.detach().float()
        x = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        # float32 even under autocast (which would run the Sobel convolutions in bf16/fp16 and move bin edges)
        with torch.autocast(device_type=x.device.type, enabled=False):
            gx = nn.functional.conv2d(x, self.weight_x.float(), groups=channels)  # [N, C, H, W]
            gy = nn.functional.conv2d(x, self.weight_y.float(), groups=channels)
        magnitude = torch.stack([gx, gy], dim=-1).norm(dim=-1)
        # Same expression and order as the official code: a different one can flip pixels that sit on a bin edge.
        phase = torch.atan2(gx, gy) / math.pi * self.num_bins  # [-bins, bins]
        bins = phase.floor().long() % self.num_bins  # [N, C, H, W], 0..bins-1
        if self.gaussian_window:
            if height % self.gaussian_window or width % self.gaussian_window:
                raise ValueError(
                    f"image size {height}x{width} is not a multiple of the Gaussian window {self.gaussian_window}"
                )
            reps = (height // self.gaussian_window, width // self.gaussian_window)
            magnitude = magnitude * self.gaussian.float().repeat(*reps)

        histogram = torch.zeros(batch, channels, self.num_bins, height, width, dtype=torch.float32, device=x.device)
        histogram.scatter_add_(2, bins.unsqueeze(2), magnitude.unsqueeze(2))
        c = self.cell_size
        # [N, C, bins, H/c, c, W/c, c] -> sum over each cell
        cells = histogram.view(batch, channels, self.num_bins, height // c, c, width // c, c).sum(dim=(4, 6))
        return nn.functional.normalize(cells, p=2, dim=2)


def hog_token_targets(hog_map: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per-token HOG targets from a ``[N, C, bins, Hc, Wc]`` map for a ``grid = (h, w)`` of output tokens.

    Each token covers ``(Hc / h) x (Wc / w)`` cells. Returns ``[N, h * w, C * bins * kh * kw]`` with tokens
    row-major and, inside a token, the order ``(channel * bins + bin, cell_row, cell_col)`` (official
    ``_get_hog_label_2d``/``_get_hog_label_3d``).
    """
    batch, channels, bins, cells_h, cells_w = hog_map.shape
    h, w = grid
    if cells_h % h or cells_w % w:
        raise ValueError(f"a {cells_h}x{cells_w} HOG cell map cannot be split into a {h}x{w} token grid")
    kh, kw = cells_h // h, cells_w // w
    x = hog_map.reshape(batch, channels * bins, h, kh, w, kw)
    x = x.permute(0, 2, 4, 1, 3, 5)  # [N, h, w, C*bins, kh, kw]
    return x.reshape(batch, h * w, channels * bins * kh * kw)
