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


@torch.no_grad()
def init_mae_weights(module: nn.Module) -> bool:
    """The official MAE initialisation of the shared building blocks; returns whether ``module`` was handled.

    Linear layers: xavier-uniform weights, zero bias. Patch/tubelet convolutions: xavier-uniform on the flattened
    ``[D, C*k*k]`` view (as the MAE code). LayerNorm: ones/zeros. Fixed position tables and the window-attention
    buffers are rebuilt (``from_pretrained`` materialises non-persistent buffers as empty tensors). VideoMAE-style
    ``q_bias``/``v_bias`` start at zero. Every call goes through ``transformers.initialization``, which leaves weights
    loaded from a checkpoint untouched. Model-specific parameters (cls/mask tokens...) are the caller's.
    """
    from transformers import initialization as init

    from .layers import FixedPositionTable, SelfAttention, ShiftedWindowLayer, WindowCosineAttention
    from .layers.window_attention import relative_log_coordinates, shifted_window_mask

    if isinstance(module, nn.Linear):
        init.xavier_uniform_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.Conv2d, nn.Conv3d)):
        fan_out, fan_in = module.weight.shape[0], module.weight[0].numel()
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        init.uniform_(module.weight, -bound, bound)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            init.ones_(module.weight)
            init.zeros_(module.bias)
    elif isinstance(module, FixedPositionTable):
        init.copy_(module.table, module.build())
    elif isinstance(module, WindowCosineAttention):
        init.ones_(module.tau)
        init.copy_(module.relative_coordinates_log, relative_log_coordinates(module.window_size))
    elif isinstance(module, ShiftedWindowLayer):
        if module.attn_mask is not None:
            init.copy_(module.attn_mask, shifted_window_mask(module.grid, module.window_size, module.shift_size))
    elif isinstance(module, SelfAttention):
        if module.q_bias is not None:
            init.zeros_(module.q_bias)
            init.zeros_(module.v_bias)
    else:
        return False
    return True
