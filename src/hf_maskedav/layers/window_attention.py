"""Shifted-window block with scaled cosine attention (Swin-V2 "CR" variant), as Audio-MAE's local decoder uses it.

Facts from the official code (AudioMAE ``timm_patch/swin_transformer.py``):

* attention logits are cosine similarities ``q.k / max(|q| |k|, 1e-6)`` divided by a learned per-head temperature
  ``tau`` clamped at 0.01;
* a continuous relative-position bias comes from a small MLP (``meta_mlp``: Linear 2->hidden, ReLU, dropout,
  Linear hidden->heads, dropout) applied to ``sign(d) * log(1 + |d|)`` of the relative window coordinates;
* windows are ``window_size`` cells of a 2-D token grid; odd blocks roll the grid by ``shift_size`` first and mask
  attention across the wrapped border with -100;
* blocks are *post*-norm: ``x + norm1(attn(x))`` then ``x + norm2(mlp(x))``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .transformer import MLP, DropPath


class _MetaMLP(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden_size)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, num_heads)
        self.dropout = nn.Dropout(dropout)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(coords)))))


def relative_log_coordinates(window_size: tuple[int, int]) -> torch.Tensor:
    """``[A*A, 2]`` log-spaced relative coordinates between every pair of cells of a window of area ``A``."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size[0]), torch.arange(window_size[1]), indexing="ij")
    ).flatten(1)  # [2, A]
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).reshape(-1, 2).float()
    return torch.sign(relative) * torch.log1p(relative.abs())


def shifted_window_mask(grid: tuple[int, int], window_size: tuple[int, int], shift_size: tuple[int, int]):
    """``[num_windows, A, A]`` additive mask (0 or -100) keeping attention inside the regions of a rolled grid."""
    height, width = grid
    region = torch.zeros(height, width)
    # Label the cells of the rolled grid by region, as the official code does (later slices overwrite earlier ones).
    count = 0
    for rows in (slice(0, -window_size[0]), slice(-window_size[0], -shift_size[0]), slice(-shift_size[0], None)):
        for cols in (slice(0, -window_size[1]), slice(-window_size[1], -shift_size[1]), slice(-shift_size[1], None)):
            region[rows, cols] = count
            count += 1
    windows = window_partition(region[None, :, :, None], window_size).reshape(-1, window_size[0] * window_size[1])
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


def window_partition(x: torch.Tensor, window_size: tuple[int, int]) -> torch.Tensor:
    """``[N, H, W, C] -> [N * nH * nW, wh, ww, C]``."""
    batch, height, width, channels = x.shape
    wh, ww = window_size
    x = x.view(batch, height // wh, wh, width // ww, ww, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh, ww, channels)


def window_reverse(windows: torch.Tensor, window_size: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[N * nH * nW, wh, ww, C] -> [N, H, W, C]``."""
    height, width = grid
    wh, ww = window_size
    channels = windows.shape[-1]
    x = windows.view(-1, height // wh, width // ww, wh, ww, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


class WindowCosineAttention(nn.Module):
    """Multi-head scaled cosine attention inside windows, with the continuous relative-position bias."""

    def __init__(self, hidden_size, num_heads, window_size, meta_hidden_size=384, meta_dropout=0.1):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden size {hidden_size} is not divisible by the number of heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.tau = nn.Parameter(torch.ones(num_heads))
        self.meta_mlp = _MetaMLP(meta_hidden_size, num_heads, meta_dropout)
        self.register_buffer("relative_coordinates_log", relative_log_coordinates(self.window_size), persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        area = self.window_size[0] * self.window_size[1]
        bias = self.meta_mlp(self.relative_coordinates_log)  # [A*A, heads]
        return bias.transpose(0, 1).reshape(1, self.num_heads, area, area)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        num_windows_total, area, width = windows.shape
        qkv = self.qkv(windows).view(num_windows_total, area, 3, self.num_heads, width // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B*nW, heads, A, d]
        denom = query.norm(dim=-1, keepdim=True) @ key.norm(dim=-1, keepdim=True).transpose(-2, -1)
        attn = (query @ key.transpose(-2, -1)) / denom.clamp(min=1e-6)
        attn = attn / self.tau.clamp(min=0.01).reshape(1, self.num_heads, 1, 1)
        attn = attn + self.relative_position_bias()
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(-1, num_windows, self.num_heads, area, area) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, area, area)
        attn = attn.softmax(dim=-1)
        out = (attn @ value).transpose(1, 2).reshape(num_windows_total, area, width)
        return self.proj(out)


class ShiftedWindowLayer(GradientCheckpointingLayer):
    """Post-norm Swin-V2-CR block on a fixed ``grid`` of tokens (``[N, H*W, C]``, row-major)."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        grid: tuple[int, int],
        window_size: tuple[int, int],
        shift_size: tuple[int, int],
        intermediate_size: int,
        layer_norm_eps: float = 1e-6,
        meta_hidden_size: int = 384,
        meta_dropout: float = 0.1,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.grid = tuple(grid)
        # A window never exceeds the grid, and no shift happens along an axis the window already covers.
        self.window_size = tuple(min(g, w) for g, w in zip(self.grid, window_size))
        self.shift_size = tuple(0 if g <= w else s for g, w, s in zip(self.grid, self.window_size, shift_size))
        if any(g % w for g, w in zip(self.grid, self.window_size)):
            raise ValueError(f"token grid {self.grid} is not divisible by the window {self.window_size}")
        self.attn = WindowCosineAttention(hidden_size, num_heads, self.window_size, meta_hidden_size, meta_dropout)
        self.norm1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = MLP(hidden_size, intermediate_size, "gelu")
        self.norm2 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.drop_path = DropPath(drop_path)
        mask = shifted_window_mask(self.grid, self.window_size, self.shift_size) if any(self.shift_size) else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def _window_attention(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, channels = hidden_states.shape
        x = hidden_states.view(batch, *self.grid, channels)
        if any(self.shift_size):
            x = torch.roll(x, shifts=(-self.shift_size[0], -self.shift_size[1]), dims=(1, 2))
        windows = window_partition(x, self.window_size).reshape(-1, self.window_size[0] * self.window_size[1], channels)
        windows = self.attn(windows, mask=self.attn_mask)
        x = window_reverse(windows.view(-1, *self.window_size, channels), self.window_size, self.grid)
        if any(self.shift_size):
            x = torch.roll(x, shifts=self.shift_size, dims=(1, 2))
        return x.reshape(batch, length, channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.drop_path(self.norm1(self._window_attention(hidden_states)))
        hidden_states = hidden_states + self.drop_path(self.norm2(self.mlp(hidden_states)))
        return hidden_states
