"""The pre-norm ViT transformer layer shared by every encoder and ViT decoder."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import SelfAttention


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample in training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep = 1.0 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.dim() - 1)
        return hidden_states * hidden_states.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class MLP(nn.Module):
    """``fc2(dropout(act(fc1(x))))``, as timm's ``Mlp``."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.act(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class TransformerLayer(GradientCheckpointingLayer):
    """Pre-norm ViT block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))`` (timm ``Block``).

    Args:
        config: model config (read for ``_attn_implementation``).
        hidden_size, num_heads, intermediate_size: widths.
        qkv_bias: see :class:`SelfAttention`.
        layer_norm_eps: epsilon of both LayerNorms.
        hidden_act: MLP activation name.
        drop_path: stochastic-depth probability of this layer.
        dropout, attention_dropout: dropout after the MLP/projection and on attention probabilities.
    """

    def __init__(
        self,
        config,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        qkv_bias: str = "qkv",
        layer_norm_eps: float = 1e-6,
        hidden_act: str = "gelu",
        drop_path: float = 0.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attention = SelfAttention(config, hidden_size, num_heads, qkv_bias, attention_dropout)
        self.norm2 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = MLP(hidden_size, intermediate_size, hidden_act, dropout)
        self.drop_path = DropPath(drop_path)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        attn_output, attn_weights = self.attention(self.norm1(hidden_states), attention_mask, output_attentions)
        hidden_states = residual + self.drop_path(self.dropout(attn_output))

        residual = hidden_states
        hidden_states = residual + self.drop_path(self.mlp(self.norm2(hidden_states)))
        return hidden_states, attn_weights


def run_layers(layers, hidden_states, output_hidden_states: bool = False, output_attentions: bool = False):
    """Run a stack of :class:`TransformerLayer` and collect the optional per-layer outputs.

    Returns ``(hidden_states, all_hidden_states or None, all_attentions or None)``; ``all_hidden_states`` holds the
    input of every layer and the final output, as transformers does.
    """
    all_hidden = (hidden_states,) if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        hidden_states, attn_weights = layer(hidden_states, None, output_attentions)
        if output_hidden_states:
            all_hidden = all_hidden + (hidden_states,)
        if output_attentions:
            all_attentions = all_attentions + (attn_weights,)
    return hidden_states, all_hidden, all_attentions


def transformer_layers(
    config,
    depth: int,
    hidden_size: int,
    num_heads: int,
    intermediate_size: int,
    *,
    qkv_bias: str = "qkv",
    drop_path_rate: float = 0.0,
    drop_path_depth: int | None = None,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
) -> nn.ModuleList:
    """The one builder of a stack of ``depth`` :class:`TransformerLayer` (encoders and ViT decoders alike).

    ``layer_norm_eps`` and ``hidden_act`` are read from ``config``; the rest is passed, so an encoder passes its
    config's dropouts and a decoder leaves them at 0 (the official decoders have none). Stochastic depth rises
    linearly from 0 to ``drop_path_rate`` over ``drop_path_depth`` layers (default ``depth``; the official ``dpr``
    list), of which the first ``depth`` are used.
    """
    rates = torch.linspace(0, drop_path_rate, drop_path_depth or depth, device="cpu").tolist() if depth else []
    return nn.ModuleList(
        TransformerLayer(
            config,
            hidden_size,
            num_heads,
            intermediate_size,
            qkv_bias=qkv_bias,
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
            drop_path=rates[i],
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        for i in range(depth)
    )
