"""Position tables: fixed sin-cos tables (1-D, 2-D, 3-D) and learned separable space/time embeddings.

Fixed tables are computed in float64 (as the official numpy code does) and returned as float32 tensors. Models
register them as non-persistent buffers built once in ``__init__`` and rebuild them in ``_init_weights`` so that
they are right both after ``Model(config)`` and after ``from_pretrained`` (which may build modules on the meta
device).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """MAE-style 1-D code: ``[sin(pos * omega) | cos(pos * omega)]`` with ``omega_i = 1 / 10000 ** (i / (D / 2))``.

    Args:
        embed_dim: output width ``D`` (must be even).
        positions: 1-D tensor of positions.

    Returns:
        ``[len(positions), D]`` float64 tensor.
    """
    if embed_dim % 2 != 0:
        raise ValueError(f"sin-cos embedding width must be even, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega  # [D/2]
    out = positions.to(torch.float64)[:, None] * omega[None, :]  # [M, D/2]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)  # [M, D]


def sincos_2d_table(embed_dim: int, grid_rows: int, grid_cols: int, cls_token: bool = False) -> torch.Tensor:
    """2-D sin-cos table over a ``grid_rows x grid_cols`` grid flattened row-major (MAE ``get_2d_sincos_pos_embed``).

    The first ``D/2`` channels encode the column index, the last ``D/2`` the row index; a zero row is prepended
    for the cls token when ``cls_token``.

    Returns:
        ``[(cls) + rows * cols, D]`` float32 tensor.
    """
    if embed_dim % 4 != 0:
        raise ValueError(f"2-D sin-cos embedding width must be divisible by 4, got {embed_dim}")
    rows = torch.arange(grid_rows).repeat_interleave(grid_cols)  # row index of each cell, row-major
    cols = torch.arange(grid_cols).repeat(grid_rows)
    table = torch.cat([sincos_1d(embed_dim // 2, cols), sincos_1d(embed_dim // 2, rows)], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, embed_dim, dtype=table.dtype), table], dim=0)
    return table.float()


def audiomae_position_table(embed_dim: int, time_patches: int, freq_patches: int, cls_token: bool = True):
    """The fixed table of the official Audio-MAE for a time-major ``time_patches x freq_patches`` token grid.

    The official code (AudioMAE ``util/pos_embed.py``, ``get_2d_sincos_pos_embed_flexible``) builds the grid from
    ``patch_embed.patch_hw = (freq_patches, time_patches)`` while tokens are laid out time-major, so token ``j``
    receives the code of cell ``(j // time_patches, j % time_patches)`` of a ``freq x time`` grid, not its true
    ``(t, f)`` position. Every released checkpoint was trained with this table, so we reproduce it exactly.
    """
    return sincos_2d_table(embed_dim, freq_patches, time_patches, cls_token=cls_token)


def sincos_3d_table(
    embed_dim: int, grid_t: int, grid_h: int, grid_w: int, time_fraction: float = 0.25, cls_token: bool = False
) -> torch.Tensor:
    """3-D sin-cos table over ``(t, h, w)`` flattened row-major.

    ``time_fraction`` of the channels encode time, the rest a 2-D ``(h, w)`` code (MAViL's video table uses a quarter
    for time). Returns a ``[(cls) + t*h*w, D]`` float32 tensor.
    """
    dim_t = int(round(embed_dim * time_fraction))
    dim_t -= dim_t % 2
    dim_s = embed_dim - dim_t
    spatial = sincos_2d_table(dim_s, grid_h, grid_w).double()  # [h*w, dim_s]
    temporal = sincos_1d(dim_t, torch.arange(grid_t))  # [t, dim_t]
    table = torch.cat(
        [temporal.repeat_interleave(grid_h * grid_w, dim=0), spatial.repeat(grid_t, 1)], dim=1
    )  # [t*h*w, D]
    if cls_token:
        table = torch.cat([torch.zeros(1, embed_dim, dtype=table.dtype), table], dim=0)
    return table.float()


def sinusoid_1d_table(num_positions: int, embed_dim: int) -> torch.Tensor:
    """Transformer-style 1-D table with interleaved sin/cos (VideoMAE ``get_sinusoid_encoding_table``).

    Channel ``2i`` is ``sin(pos / 10000 ** (2i / D))`` and channel ``2i + 1`` is ``cos`` of the same angle.
    Returns ``[num_positions, D]`` float32.
    """
    channel = torch.arange(embed_dim, dtype=torch.float64)
    exponent = 2 * torch.div(channel, 2, rounding_mode="floor") / embed_dim
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] / torch.pow(10000.0, exponent)[None, :]
    table = angles.clone()
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class SeparableSpaceTimePositionEmbedding(nn.Module):
    """Learned separable position embedding (MAE-ST ``sep_pos_embed``).

    Position of token ``(t, s)`` = ``spatial[s] + temporal[t]``; the cls token, if any, has its own ``cls`` vector.
    Parameters are named ``spatial``, ``temporal`` and ``cls`` and hold ``[1, N, D]`` tensors like the official ones.
    """

    def __init__(self, embed_dim: int, num_frames: int, num_spatial: int, cls_token: bool = True):
        super().__init__()
        self.num_frames = num_frames
        self.num_spatial = num_spatial
        self.spatial = nn.Parameter(torch.zeros(1, num_spatial, embed_dim))
        self.temporal = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cls_token else None

    def forward(self, num_frames: int | None = None, grid_hw: tuple[int, int] | None = None) -> torch.Tensor:
        """Returns ``[1, T*S, D]`` (patch positions only, time-major), interpolated when the grid differs."""
        spatial, temporal = self.spatial, self.temporal
        side = int(math.isqrt(self.num_spatial))
        square = side * side == self.num_spatial
        # A square table must be resized for any other grid, even one with the same number of cells (e.g. 2x8 vs 4x4).
        if grid_hw is not None and (tuple(grid_hw) != (side, side) if square else grid_hw[0] * grid_hw[1] != self.num_spatial):
            if not square:
                raise ValueError(
                    f"cannot interpolate a non-square spatial position table of {self.num_spatial} entries to {grid_hw}"
                )
            grid = spatial.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            grid = nn.functional.interpolate(grid, size=grid_hw, mode="bicubic", align_corners=False)
            spatial = grid.permute(0, 2, 3, 1).reshape(1, grid_hw[0] * grid_hw[1], -1)
        if num_frames is not None and num_frames != self.num_frames:
            temporal = nn.functional.interpolate(
                temporal.transpose(1, 2), size=num_frames, mode="linear", align_corners=False
            ).transpose(1, 2)
        frames = temporal.shape[1]
        return spatial.repeat(1, frames, 1) + temporal.repeat_interleave(spatial.shape[1], dim=1)
