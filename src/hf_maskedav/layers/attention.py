"""Multi-head self-attention through the transformers attention interface (eager / sdpa / flash)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """Reference attention: ``softmax(q k^T * scaling + mask) v``. Inputs ``[N, H, L, d]``, output ``[N, L, H, d]``."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class SelfAttention(nn.Module):
    """Self-attention with one fused ``qkv_proj`` and an output ``o_proj``.

    Args:
        config: the model config; only ``config._attn_implementation`` is read, so ``attn_implementation=`` works as
            in transformers.
        hidden_size: token width.
        num_heads: number of heads (``hidden_size`` must be divisible by it).
        qkv_bias: ``"qkv"`` (one bias for q, k and v), ``"qv"`` (VideoMAE: learned ``q_bias`` and ``v_bias``, k has
            none) or ``"none"``.
        attention_dropout: dropout on the attention probabilities in training.
    """

    def __init__(self, config, hidden_size: int, num_heads: int, qkv_bias: str = "qkv", attention_dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden size {hidden_size} is not divisible by the number of heads {num_heads}")
        if qkv_bias not in ("qkv", "qv", "none"):
            raise ValueError(f"qkv_bias must be 'qkv', 'qv' or 'none', got {qkv_bias!r}")
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = attention_dropout
        self.is_causal = False
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias == "qkv")
        if qkv_bias == "qv":
            self.q_bias = nn.Parameter(torch.zeros(hidden_size))
            self.v_bias = nn.Parameter(torch.zeros(hidden_size))
        else:
            self.q_bias = self.v_bias = None
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, width = hidden_states.shape
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
            qkv = nn.functional.linear(hidden_states, self.qkv_proj.weight, bias)
        else:
            qkv = self.qkv_proj(hidden_states)
        # [N, L, 3*D] -> 3 x [N, H, L, d]
        query, key, value = qkv.view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

        implementation = self.config._attn_implementation
        attention_interface: Callable = eager_attention_forward
        if implementation != "eager" and not output_attentions:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        attn_output = self.o_proj(attn_output.reshape(batch, length, width))
        return attn_output, (attn_weights if output_attentions else None)
