"""Helpers shared by the models' heads (not layers: they know about configs and labels)."""

from __future__ import annotations

import torch
from torch import nn


def classification_loss(config, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss of a classification head, chosen by ``config.problem_type`` as in transformers.

    ``problem_type`` is inferred when unset: one label -> regression (MSE); integer labels -> single-label
    cross-entropy; float labels with several classes -> multi-label BCE with logits (AudioSet convention).
    """
    num_labels = logits.shape[-1]
    labels = labels.to(logits.device)
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return nn.functional.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
    if config.problem_type == "single_label_classification":
        if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
            raise ValueError(
                f"single-label classification expects labels of shape (batch,) with class indices, got "
                f"{tuple(labels.shape)}; for one-hot or multi-hot targets set problem_type='multi_label_classification'"
            )
        return nn.functional.cross_entropy(logits, labels)
    if labels.shape != logits.shape:
        raise ValueError(
            f"multi-label classification expects labels of shape {tuple(logits.shape)} (multi-hot), got "
            f"{tuple(labels.shape)}"
        )
    return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
