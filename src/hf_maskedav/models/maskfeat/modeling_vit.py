"""Plain ViT encoder for MaskFeat (official SlowFast ``MViT`` with no pooling = a pre-norm ViT).

With no pooling, SlowFast's ``MultiScaleBlock`` is the standard ViT block: a fused ``qkv`` Linear with bias, ``proj``,
LayerNorm eps 1e-6, MLP ratio 4 with GELU, no layer scale. It is the package's shared :class:`TransformerLayer`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers import run_layers, transformer_layers
from .configuration_maskfeat import MaskFeatConfig

Grid = tuple[int, int, int]


class ViTEncoder(nn.Module):
    """A stack of pre-norm ViT layers; the token grid never changes."""

    def __init__(self, config: MaskFeatConfig, num_layers: int | None = None):
        super().__init__()
        num_layers = config.num_hidden_layers if num_layers is None else num_layers
        self.layers = transformer_layers(
            config, num_layers, config.hidden_size, config.num_attention_heads, int(config.hidden_size * config.mlp_ratio),
            qkv_bias="qkv" if config.qkv_bias else "none",
            drop_path_rate=config.drop_path_rate,
            drop_path_depth=config.num_hidden_layers,
            dropout=config.hidden_dropout_prob,
        )
        self.output_size = config.hidden_size
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        grid: Grid,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ):
        """``[N, 1 + L, D]`` tokens -> ``(tokens, grid, all_hidden_states, all_attentions)``; the grid never changes."""
        hidden_states, all_hidden, all_attentions = run_layers(
            self.layers, hidden_states, output_hidden_states, output_attentions
        )
        return hidden_states, grid, all_hidden, all_attentions


__all__ = ["ViTEncoder"]
