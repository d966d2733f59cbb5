"""Losses shared by the model families."""

from __future__ import annotations

import torch
from torch import nn


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE averaged over the value dimension, then over the masked tokens only (MAE ``forward_loss``).

    Computed in float32 whatever the inputs' precision (as the official code under autocast, where ``pow`` runs in
    float32): a bf16 mean over millions of values would lose the loss's precision.

    Args:
        pred, target: ``[N, L, K]``.
        mask: ``[N, L]``, 1 for tokens that count.
    """
    per_token = (pred.float() - target.float()).pow(2).mean(dim=-1)  # [N, L]
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float, symmetric: bool = True) -> torch.Tensor:
    """InfoNCE between two ``[N, D]`` batches where row ``i`` of each is a positive pair.

    Features are l2-normalised; logits are cosine similarities divided by ``temperature``. With ``symmetric`` the
    loss is the mean of both directions.
    """
    query = nn.functional.normalize(query, dim=-1)
    keys = nn.functional.normalize(keys, dim=-1)
    logits = query @ keys.t() / temperature
    labels = torch.arange(logits.shape[0], device=logits.device)
    loss = nn.functional.cross_entropy(logits, labels)
    if symmetric:
        loss = 0.5 * (loss + nn.functional.cross_entropy(logits.t(), labels))
    return loss
