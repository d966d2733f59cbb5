"""MViTv2 encoder blocks for MaskFeat: pooling attention, residual pooling, decomposed relative positions.

Facts from facebookresearch/SlowFast (``slowfast/models/attention.py`` ``MultiScaleAttention``/``MultiScaleBlock``,
``video_model_builder.py`` ``MViT``); the code here is written from those facts. Shapes: N = batch, nH = heads,
d = head width, (t, h, w) = token grid, L = 1 + t*h*w tokens (the cls token first; it bypasses every pooling and
carries no relative position).

Attention goes through the transformers attention interface (``eager`` / ``sdpa``): the decomposed relative
position terms are passed as an additive float bias ``[N, nH, Lq, Lk]``. Kernels that take no float bias (flash
attention) cannot run this attention, so the MaskFeat models do not declare flash support.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ...layers import DropPath, eager_attention_forward
from .configuration_maskfeat import MaskFeatConfig

Grid = tuple[int, int, int]


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    """SlowFast ``round_width``: ``width * multiplier`` rounded to a multiple of ``divisor`` (never below 90%)."""
    if not multiplier:
        return int(width)
    width *= multiplier
    min_width = min_width or divisor
    width_out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if width_out < 0.9 * width:
        width_out += divisor
    return int(width_out)


@dataclass(frozen=True)
class MViTLayerSpec:
    """Shape of one MViTv2 block, derived from the config as the official ``MViT.__init__`` does."""

    dim_in: int
    dim_out: int
    num_heads: int
    input_grid: Grid
    q_kernel: tuple[int, ...]  # empty: no query pooling
    q_stride: tuple[int, ...]
    kv_kernel: tuple[int, ...]
    kv_stride: tuple[int, ...]


def _pool_kernel(config: MaskFeatConfig, stride: tuple[int, ...]) -> tuple[int, ...]:
    if config.pool_kernel_size is not None:
        return tuple(int(k) for k in config.pool_kernel_size)
    return tuple(s + 1 if s > 1 else s for s in stride)


def _no_pooling(kernel: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    # Official: a pooling with kernel and stride (1, 1, 1) -- or none listed -- is skipped.
    return math.prod(kernel) == 1 and math.prod(stride) == 1


def mvit_layer_specs(config: MaskFeatConfig, num_layers: int | None = None) -> list[MViTLayerSpec]:
    """Per-block widths, heads, pooling kernels/strides and input grids (official ``MViT.__init__``)."""
    depth = config.num_hidden_layers
    dim_mul, head_mul = [1.0] * (depth + 1), [1.0] * (depth + 1)
    for block, mul in config.dim_mul:
        dim_mul[int(block)] = float(mul)
    for block, mul in config.head_mul:
        head_mul[int(block)] = float(mul)

    q_strides = config.query_strides()
    if config.pool_kv_stride_adaptive is not None:
        kv_strides: list[tuple[int, ...] | None] = []
        stride = tuple(int(s) for s in config.pool_kv_stride_adaptive)
        for block in range(depth):
            if q_strides[block] is not None:
                stride = tuple(max(s // q, 1) for s, q in zip(stride, q_strides[block]))
            kv_strides.append(stride)
    else:
        kv_strides = [None] * depth
        for entry in config.pool_kv_stride:
            kv_strides[int(entry[0])] = tuple(int(s) for s in entry[1:])

    specs = []
    dim, heads, grid = config.hidden_size, config.num_attention_heads, config.patch_grid
    for block in range(depth if num_layers is None else num_layers):
        heads = round_width(heads, head_mul[block])
        dim_out = round_width(dim, dim_mul[block + 1], divisor=round_width(heads, head_mul[block + 1]))
        q_stride = q_strides[block] or ()
        kv_stride = kv_strides[block] or ()
        q_kernel = _pool_kernel(config, q_stride) if q_stride else ()
        kv_kernel = _pool_kernel(config, kv_stride) if kv_stride else ()
        if _no_pooling(q_kernel, q_stride):
            q_kernel = ()
        if _no_pooling(kv_kernel, kv_stride):
            kv_kernel = ()
        specs.append(MViTLayerSpec(dim, dim_out, heads, grid, q_kernel, q_stride, kv_kernel, kv_stride))
        if q_stride:
            grid = tuple(g // s for g, s in zip(grid, q_stride))
        dim = dim_out
    return specs


def pool_tokens(tokens: torch.Tensor, pool: nn.Module | None, grid: Grid, norm: nn.Module | None = None):
    """Pool the grid tokens of ``[N, nH, L, d]`` (or ``[N, L, C]``) with a 3-D op; the cls token bypasses it.

    Returns the pooled tokens (cls first, then ``norm`` over all of them, as the official ``attention_pool``) and the
    new grid.
    """
    if pool is None:
        return tokens, grid
    squeeze = tokens.dim() == 3
    if squeeze:
        tokens = tokens.unsqueeze(1)
    cls, patches = tokens[:, :, :1], tokens[:, :, 1:]
    batch, heads, _, width = patches.shape
    t, h, w = grid
    x = patches.reshape(batch * heads, t, h, w, width).permute(0, 4, 1, 2, 3)  # [N*nH, d, t, h, w]
    x = pool(x)
    new_grid = tuple(x.shape[2:])
    x = x.reshape(batch, heads, width, -1).transpose(2, 3)  # [N, nH, t'*h'*w', d]
    x = torch.cat([cls, x], dim=2)
    if norm is not None:
        x = norm(x)
    return (x.squeeze(1) if squeeze else x), new_grid


def relative_position_table(table: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """``[q_size, k_size, d]`` embeddings of the (scaled) relative offsets between query and key positions.

    Official ``cal_rel_pos_spatial``/``get_rel_pos``: when q and k have different resolutions the coordinates of
    the coarser one are scaled up; the table is linearly interpolated when it has another length than needed.
    """
    length = 2 * max(q_size, k_size) - 1
    if table.shape[0] != length:
        table = nn.functional.interpolate(table.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    device = table.device
    distance = torch.arange(q_size, device=device)[:, None] * q_ratio - torch.arange(k_size, device=device)[None, :] * k_ratio
    distance = distance + (k_size - 1) * k_ratio
    return table[distance.long()]


def decomposed_relative_position_bias(
    query: torch.Tensor,
    q_grid: Grid,
    k_grid: Grid,
    rel_pos_h: torch.Tensor | None,
    rel_pos_w: torch.Tensor | None,
    rel_pos_t: torch.Tensor | None,
) -> torch.Tensor:
    """Additive attention bias ``[N, nH, Lq, Lk]`` from the *unscaled* query (cls row and column are zero).

    ``bias[(t, y, x), (t', y', x')] = q . R_t[t, t'] + q . R_h[y, y'] + q . R_w[x, x']`` (MViTv2).
    """
    batch, heads, _, dim = query.shape
    qt, qh, qw = q_grid
    kt, kh, kw = k_grid
    r_q = query[:, :, 1:].reshape(batch, heads, qt, qh, qw, dim)
    bias = None
    if rel_pos_h is not None:
        table_h = relative_position_table(rel_pos_h, qh, kh)  # [qh, kh, d]
        table_w = relative_position_table(rel_pos_w, qw, kw)  # [qw, kw, d]
        rel_h = torch.einsum("bnthwc,hkc->bnthwk", r_q, table_h)  # [N, nH, qt, qh, qw, kh]
        rel_w = torch.einsum("bnthwc,wkc->bnthwk", r_q, table_w)  # [N, nH, qt, qh, qw, kw]
        bias = rel_h[:, :, :, :, :, None, :, None] + rel_w[:, :, :, :, :, None, None, :]
    if rel_pos_t is not None:
        table_t = relative_position_table(rel_pos_t, qt, kt)  # [qt, kt, d]
        rel_t = torch.einsum("bnthwc,tkc->bnthwk", r_q, table_t)[:, :, :, :, :, :, None, None]  # [.., kt, 1, 1]
        bias = rel_t if bias is None else bias + rel_t
    bias = bias.expand(batch, heads, qt, qh, qw, kt, kh, kw).reshape(batch, heads, qt * qh * qw, kt * kh * kw)
    return nn.functional.pad(bias, (1, 0, 1, 0))  # zero row/column for the cls token


class MViTAttention(nn.Module):
    """Multi-head pooling attention (MViTv2): fused ``qkv_proj``, depthwise-conv pooling of q, k and v (each
    followed by a LayerNorm), optional decomposed relative positions and residual pooling, then ``o_proj``.

    The pooling convolutions are shared by the heads (``d`` channels, ``groups=d``), as the official ``conv`` mode.
    """

    def __init__(self, config: MaskFeatConfig, spec: MViTLayerSpec):
        super().__init__()
        dim = spec.dim_in  # official DIM_MUL_IN_ATT=False: attention keeps the block's input width
        if dim % spec.num_heads:
            raise ValueError(f"width {dim} is not divisible by {spec.num_heads} heads")
        self.config = config
        self.num_heads = spec.num_heads
        self.head_dim = dim // spec.num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv_proj = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        self.o_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def pooling(kernel, stride):
            if not kernel:
                return None, None
            conv = nn.Conv3d(
                self.head_dim, self.head_dim, kernel, stride=stride, padding=[k // 2 for k in kernel],
                groups=self.head_dim, bias=False,
            )
            return conv, nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps)

        self.pool_q, self.norm_q = pooling(spec.q_kernel, spec.q_stride)
        self.pool_k, self.norm_k = pooling(spec.kv_kernel, spec.kv_stride)
        self.pool_v, self.norm_v = pooling(spec.kv_kernel, spec.kv_stride)

        t, size, _ = spec.input_grid
        if config.rel_pos_spatial:
            q_size = size // spec.q_stride[1] if spec.q_stride else size
            kv_size = size // spec.kv_stride[1] if spec.kv_stride else size
            length = 2 * max(q_size, kv_size) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(length, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(length, self.head_dim))
        else:
            self.rel_pos_h = self.rel_pos_w = None
        self.rel_pos_t = nn.Parameter(torch.zeros(2 * t - 1, self.head_dim)) if config.rel_pos_temporal else None
        self.residual_pooling = config.residual_pooling

    def forward(
        self, hidden_states: torch.Tensor, grid: Grid, output_attentions: bool = False
    ) -> tuple[torch.Tensor, Grid, torch.Tensor | None]:
        batch, length, width = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [N, nH, L, d]
        query, q_grid = pool_tokens(query, self.pool_q, grid, self.norm_q)
        key, k_grid = pool_tokens(key, self.pool_k, grid, self.norm_k)
        value, _ = pool_tokens(value, self.pool_v, grid, self.norm_v)

        bias = None
        if self.rel_pos_h is not None or self.rel_pos_t is not None:
            bias = decomposed_relative_position_bias(query, q_grid, k_grid, self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)

        implementation = self.config._attn_implementation
        attention_interface: Callable = eager_attention_forward
        if implementation != "eager" and not output_attentions:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self, query, key, value, bias, dropout=0.0, scaling=self.scaling
        )  # [N, Lq, nH, d]
        if self.residual_pooling:
            # the pooled query is added to every grid row (not the cls row): [N, Lq-1, nH, d] padded at the front
            attn_output = attn_output + nn.functional.pad(query[:, :, 1:].transpose(1, 2), (0, 0, 0, 0, 1, 0))
        attn_output = attn_output.reshape(batch, -1, width)
        attn_output = self.dropout(self.o_proj(attn_output))
        return attn_output, q_grid, (attn_weights if output_attentions else None)


class MViTMLP(nn.Module):
    """``fc2(dropout(act(fc1(x))))`` whose output width may differ from its input (official ``Mlp``)."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, hidden_act: str, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim_in, hidden)
        self.act = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(hidden, dim_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(hidden_states)))))


class MViTLayer(GradientCheckpointingLayer):
    """MViTv2 block (official ``MultiScaleBlock`` with ``DIM_MUL_IN_ATT=False``).

    ``x = maxpool(x) + attn(norm1(x))``; then ``y = norm2(x)`` and ``x = skip(y) + mlp(y)``, where ``skip`` is the
    identity or, when the width changes, the Linear ``skip_proj`` applied to the *normed* tensor (official quirk).
    The max-pool skip (kernel ``s + 1``, stride ``s``) follows the query stride.
    """

    def __init__(self, config: MaskFeatConfig, spec: MViTLayerSpec, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(spec.dim_in, eps=config.layer_norm_eps)
        self.attention = MViTAttention(config, spec)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(spec.dim_in, eps=config.layer_norm_eps)
        hidden = int(spec.dim_in * config.mlp_ratio)
        self.mlp = MViTMLP(spec.dim_in, hidden, spec.dim_out, config.hidden_act, config.hidden_dropout_prob)
        self.skip_proj = nn.Linear(spec.dim_in, spec.dim_out) if spec.dim_in != spec.dim_out else None
        if spec.q_stride and math.prod(spec.q_stride) > 1:
            kernel = [s + 1 if s > 1 else s for s in spec.q_stride]
            self.pool_skip = nn.MaxPool3d(kernel, spec.q_stride, [k // 2 for k in kernel], ceil_mode=False)
        else:
            self.pool_skip = None

    def forward(
        self, hidden_states: torch.Tensor, grid: Grid, output_attentions: bool = False
    ) -> tuple[torch.Tensor, Grid, torch.Tensor | None]:
        attn_output, new_grid, attn_weights = self.attention(self.norm1(hidden_states), grid, output_attentions)
        residual, _ = pool_tokens(hidden_states, self.pool_skip, grid)
        hidden_states = residual + self.drop_path(attn_output)
        normed = self.norm2(hidden_states)
        mlp_output = self.mlp(normed)
        if self.skip_proj is not None:
            hidden_states = self.skip_proj(normed)
        hidden_states = hidden_states + self.drop_path(mlp_output)
        return hidden_states, new_grid, attn_weights


class MViTEncoder(nn.Module):
    """A stack of :class:`MViTLayer` (the first ``num_layers`` blocks of the configured MViTv2)."""

    def __init__(self, config: MaskFeatConfig, num_layers: int | None = None):
        super().__init__()
        self.specs = mvit_layer_specs(config, num_layers)
        drop_path = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers).tolist()
        self.layers = nn.ModuleList(MViTLayer(config, spec, drop_path[i]) for i, spec in enumerate(self.specs))
        self.output_size = self.specs[-1].dim_out if self.specs else config.hidden_size
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        grid: Grid,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ):
        """``[N, 1 + t*h*w, C]`` tokens on ``grid`` -> ``(tokens, grid, all_hidden_states, all_attentions)``."""
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        # layers.run_layers' loop, plus the token grid each pooling layer changes (a TransformerLayer keeps it)
        for layer in self.layers:
            hidden_states, grid, attn_weights = layer(hidden_states, grid, output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (attn_weights,)
        return hidden_states, grid, all_hidden, all_attentions


__all__ = ["MViTAttention", "MViTEncoder", "MViTLayer", "MViTLayerSpec", "mvit_layer_specs", "round_width"]
