"""Helpers shared by the models' heads (not layers: they know about configs and labels)."""

from __future__ import annotations

import os

import torch
from torch import nn

# "1": check the values of model inputs on every device; "0": never; unset: only CPU tensors (see check_model_input).
CHECK_FINITE_ENV = "HF_MASKEDAV_CHECK_FINITE_INPUTS"


def _value_checks_enabled(tensor: torch.Tensor) -> bool:
    """Whether value checks (NaN/Inf, label range) run on ``tensor``: never while compiling, tracing or capturing a
    CUDA graph (they read a value back from the device); by default only for CPU tensors, where that is free."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    if tensor.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    setting = os.environ.get(CHECK_FINITE_ENV, "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return tensor.device.type == "cpu"


def check_model_input(tensor: torch.Tensor, name: str, hint: str = "") -> None:
    """Shared checks of a model input after the family's own shape/dtype checks: a non-empty batch and finite values.

    The NaN/Inf check reads a value back from the device, so by default it runs for CPU tensors only (free there);
    ``HF_MASKEDAV_CHECK_FINITE_INPUTS=1`` runs it on every device, ``=0`` never. It never runs inside
    ``torch.compile``/tracing. On accelerators a non-finite input otherwise gives non-finite outputs, which the
    training loops' non-finite-loss guard (``hf_maskedav.training.faults``) catches.

    Raises:
        ValueError: an empty batch, or NaN/Inf values (the message names ``name`` and what to do).
    """
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(tensor.shape)}); give at least one sample")
    # One reduction first (a NaN/Inf makes the sum non-finite; a huge finite input may overflow it, hence the exact
    # check only then): about 10x cheaper than the element-wise mask on every forward.
    if (
        _value_checks_enabled(tensor)
        and not bool(torch.isfinite(tensor.sum()))
        and not bool(torch.isfinite(tensor).all())
    ):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or Inf value(s); the input is corrupt (check the source file or the array you "
            f"built{hint}). The processors reject non-finite audio/pixels with the clip named."
        )


def check_head_matches_labels(config, logits: torch.Tensor, head: str = "classifier") -> None:
    """Raise a clear ``ValueError`` when a classification head's size disagrees with ``config.id2label``.

    Happens when ``config.id2label`` is replaced after the model was built (the pipelines would then look up labels
    that the head does not produce, or never show some of its classes).
    """
    labels = len(config.id2label) if config.id2label else config.num_labels
    if logits.shape[-1] != labels:
        raise ValueError(
            f"the {head} outputs {logits.shape[-1]} classes but config.id2label has {labels} labels; give an id2label "
            f"with exactly {logits.shape[-1]} entries, or build a new head for {labels} classes (e.g. "
            f"from_pretrained(..., num_labels={labels}, id2label=..., ignore_mismatched_sizes=True)) and fine-tune it"
        )


def check_class_indices(labels: torch.Tensor, num_labels: int, ignore_index: int = -100) -> None:
    """Single-label targets must be class indices in ``[0, num_labels)`` (or ``ignore_index``). Runs where
    :func:`check_model_input` runs its value checks (an out-of-range target on a GPU is a device-side assert)."""
    if labels.numel() == 0 or not _value_checks_enabled(labels):
        return
    valid = (labels == ignore_index) | ((labels >= 0) & (labels < num_labels))
    if not bool(valid.all()):
        wrong = sorted({int(v) for v in labels[~valid].tolist()})[:5]
        raise ValueError(
            f"labels must be class indices in [0, {num_labels - 1}] (or {ignore_index} to ignore a sample); got "
            f"{wrong}. Check the label column against config.id2label ({num_labels} labels)."
        )


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
        check_class_indices(labels, num_labels)
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
