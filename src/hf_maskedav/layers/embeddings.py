"""Patch/tubelet embeddings and the position-table holder shared by every model family."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .masking import gather_tokens
from .targets import select_patches


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class PatchEmbed2D(nn.Module):
    """2-D patch embedding: ``Conv2d(in_channels, D, kernel=patch, stride=stride)`` flattened row-major.

    For a spectrogram laid out ``[N, 1, time, mel]`` the tokens are time-major (``t * F' + f``), as Audio-MAE's.
    The convolution is kept as ``proj`` so official ``patch_embed.proj.*`` keys map one to one.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size, stride=None):
        super().__init__()
        self.patch_size = _pair(patch_size)
        self.stride = _pair(stride if stride is not None else patch_size)
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=self.patch_size, stride=self.stride)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Number of patches along each axis for an input of ``height x width``."""
        return (
            (height - self.patch_size[0]) // self.stride[0] + 1,
            (width - self.patch_size[1]) // self.stride[1] + 1,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # [N, C, H, W] -> [N, D, H', W'] -> [N, H'*W', D]; contiguous, or every later elementwise op (residual
        # adds, LayerNorm) keeps the transposed layout and pays for it
        return self.proj(pixel_values).flatten(2).transpose(1, 2).contiguous()

    def embed_selected(self, pixel_values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The tokens ``ids`` (``[N, K]``) only: ``[N, K, D]``, equal to ``gather_tokens(self(pixel_values), ids)``.

        With non-overlapping patches only the selected patches are cut and projected (the convolution's weights as
        a matrix product), so an MAE encoder seeing 10-25% of the tokens pays 10-25% of the embedding.
        """
        return _embed_selected(self.proj, self.patch_size, self.stride, (0, 0), pixel_values, ids)


class TubeletEmbed3D(nn.Module):
    """3-D tubelet embedding: ``Conv3d(C, D, kernel=(t, p, p), stride=(t, p, p))`` flattened ``(t, h, w)``.

    Input is ``[N, C, T, H, W]`` (channels before time, as the official video code).
    """

    def __init__(self, in_channels: int, embed_dim: int, tubelet_size: int, patch_size, stride=None, padding=0):
        super().__init__()
        patch = _pair(patch_size)
        self.kernel_size = (tubelet_size, *patch)
        self.stride = tuple(stride) if stride is not None else self.kernel_size
        self.padding = padding if isinstance(padding, (tuple, list)) else (padding,) * 3
        self.proj = nn.Conv3d(
            in_channels, embed_dim, kernel_size=self.kernel_size, stride=self.stride, padding=tuple(self.padding)
        )

    def grid_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        sizes = (frames, height, width)
        return tuple(
            (size + 2 * pad - kernel) // stride + 1
            for size, kernel, stride, pad in zip(sizes, self.kernel_size, self.stride, self.padding)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # [N, C, T, H, W] -> [N, D, T', H', W'] -> [N, T'*H'*W', D], contiguous (see PatchEmbed2D.forward)
        return self.proj(pixel_values).flatten(2).transpose(1, 2).contiguous()

    def embed_selected(self, pixel_values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The tokens ``ids`` (``[N, K]``) only: ``[N, K, D]``, equal to ``gather_tokens(self(pixel_values), ids)``;
        see :meth:`PatchEmbed2D.embed_selected`."""
        return _embed_selected(self.proj, self.kernel_size, self.stride, self.padding, pixel_values, ids)


def embed_with_positions(
    patch_embed: PatchEmbed2D | TubeletEmbed3D,
    pixel_values: torch.Tensor,
    positions: torch.Tensor,
    ids_keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Patch tokens plus their ``[1, L, D]`` positions, added before masking (official MAE ``forward_encoder``), in the
    tokens' dtype: ``[N, L, D]``, or with ``ids_keep`` (``[N, K]``) only those tokens, cut and projected alone
    (:meth:`PatchEmbed2D.embed_selected`): ``[N, K, D]``."""
    pixel_values = pixel_values.to(patch_embed.proj.weight.dtype)
    if ids_keep is None:
        tokens = patch_embed(pixel_values)  # [N, L, D]
        return tokens + positions.to(tokens.dtype)
    tokens = patch_embed.embed_selected(pixel_values, ids_keep)  # [N, K, D]
    return tokens + gather_tokens(positions.to(tokens.dtype).expand(tokens.shape[0], -1, -1), ids_keep)


def _embed_selected(proj, kernel, stride, padding, pixel_values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    if tuple(stride) != tuple(kernel) or any(padding):  # overlapping or padded patches: convolve everything
        return gather_tokens(proj(pixel_values).flatten(2).transpose(1, 2), ids)
    patches = select_patches(pixel_values, ids, tuple(kernel)).flatten(2)  # [N, K, C*prod(kernel)]
    return nn.functional.linear(patches, proj.weight.flatten(1), proj.bias)


POSITION_TABLE_MODES = ("fixed", "stored", "learned")


class PositionTable(nn.Module):
    """The one holder of a ``[1, L, D]`` position table, kept under the state-dict key ``table`` in every mode.

    ``builder`` is a function returning the ``[L, D]`` table for a grid; it runs once in ``__init__`` and again in
    ``init_mae_weights`` (which leaves a table loaded from a checkpoint untouched). ``mode`` says how the table lives:

    * ``"fixed"``: a non-persistent buffer, never in the state dict, rebuilt on load (``from_pretrained`` materialises
      non-persistent buffers as empty tensors); :meth:`for_grid` builds (and caches) the table for another grid.
    * ``"stored"``: a persistent buffer, in the state dict and loaded as stored, never trained (converted checkpoints
      whose tables are stored values, e.g. MAViL ``position_tables="stored"``).
    * ``"learned"``: an ``nn.Parameter`` started from the builder's table (CAV-MAE ``tr_pos=True`` fine-tuning).

    A stored or learned table cannot be rebuilt for another grid: :meth:`for_grid` then raises.
    """

    def __init__(self, builder: Callable[..., torch.Tensor], *grid, mode: str = "fixed"):
        super().__init__()
        if mode not in POSITION_TABLE_MODES:
            raise ValueError(f"position table mode must be one of {POSITION_TABLE_MODES}, got {mode!r}")
        self.builder = builder
        self.grid = tuple(grid)
        self.mode = mode
        table = builder(*grid).unsqueeze(0)
        if mode == "learned":
            self.table = nn.Parameter(table)
        else:
            self.register_buffer("table", table, persistent=mode == "stored")
        self._other_grids: dict[tuple, torch.Tensor] = {}

    def build(self) -> torch.Tensor:
        return self.builder(*self.grid).unsqueeze(0)

    def for_grid(self, *grid) -> torch.Tensor:
        """The ``[1, L, D]`` table for ``grid`` on the table's device and dtype."""
        if tuple(grid) == self.grid:
            return self.table
        if self.mode != "fixed":
            raise ValueError(
                f"this model {'stores' if self.mode == 'stored' else 'learns'} its position table for a token grid of "
                f"{self.grid}; the input gives {tuple(grid)}. A {self.mode} table cannot be rebuilt for another size: "
                "resize/pad the input to the configured size."
            )
        key = (tuple(grid), self.table.device, self.table.dtype)
        if key not in self._other_grids:
            self._other_grids[key] = self.builder(*grid).unsqueeze(0).to(self.table.device, self.table.dtype)
        return self._other_grids[key]

    def extra_repr(self) -> str:
        return f"grid={self.grid}, mode={self.mode}, shape={tuple(self.table.shape)}"


# The name the models and docs used for the fixed mode (``PositionTable(builder, *grid)``); ``init_mae_weights`` checks
# it, so every mode is (re)built from its builder there.
FixedPositionTable = PositionTable
