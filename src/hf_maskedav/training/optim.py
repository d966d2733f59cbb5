"""Optimizer parameter groups (weight-decay exclusions, layer-wise learning-rate decay) and the LR schedule."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch

# Parameters that official MAE recipes never decay (timm's ``no_weight_decay()``), in addition to every 1-D
# parameter (biases, norms) which is excluded by shape.
NO_WEIGHT_DECAY_NAMES = ("cls_token", "mask_token", "pos_embed", "position_embeddings", "tau")

_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def default_layer_id(name: str, num_layers: int) -> int:
    """Layer index of a parameter for layer-wise LR decay, as the official ``lr_decay.get_layer_id_for_vit``.

    Embeddings (patch/tubelet projection, cls token, position tables) are layer 0, encoder block ``i`` is ``i + 1``,
    everything after the blocks (final norms, pooling norm, the head) is ``num_layers + 1``. Decoder parameters
    (``decoder.*``) are also ``num_layers + 1``: they get the full learning rate.
    """
    if name.startswith("decoder.") or ".decoder." in name:
        return num_layers + 1
    match = _LAYER_RE.search(name)
    if match:
        return int(match.group(1)) + 1
    if "embeddings" in name or "cls_token" in name or "patch_embed" in name:
        return 0
    return num_layers + 1


def parameter_groups(
    model: torch.nn.Module,
    weight_decay: float,
    layer_decay: float | None = None,
    num_layers: int | None = None,
    layer_id: Callable[[str, int], int] = default_layer_id,
    no_weight_decay_names: tuple[str, ...] = NO_WEIGHT_DECAY_NAMES,
) -> list[dict]:
    """AdamW parameter groups: no weight decay on 1-D parameters and ``no_weight_decay_names``; with
    ``layer_decay``, every group also carries ``lr_scale = layer_decay ** (num_layers + 1 - layer_id)`` (the
    official Audio-MAE/MAE fine-tuning recipe), which :func:`cosine_schedule_with_warmup` multiplies into the
    learning rate.

    Args:
        model: the (unwrapped) model.
        weight_decay: decay of the decayed groups.
        layer_decay: e.g. 0.75; None or 1.0 for no layer-wise decay.
        num_layers: encoder depth (``config.num_hidden_layers`` when the model has a config).
        layer_id: maps a parameter name to its layer index (see :func:`default_layer_id`); other model families pass
            their own.
    """
    if num_layers is None:
        num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", 0)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or any(key in name for key in no_weight_decay_names)
        layer = layer_id(name, num_layers) if layer_decay not in (None, 1.0) else num_layers + 1
        key = (layer, no_decay)
        if key not in groups:
            scale = layer_decay ** (num_layers + 1 - layer) if layer_decay not in (None, 1.0) else 1.0
            groups[key] = {"params": [], "weight_decay": 0.0 if no_decay else weight_decay, "lr_scale": scale}
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def cosine_schedule_with_warmup(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
    progress: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 then half-cosine to ``min_lr_ratio`` of the peak, per optimizer step (official MAE
    ``adjust_learning_rate``, per iteration). Each group's ``lr_scale`` multiplies its learning rate.

    The scheduler is meant to be stepped once per optimizer update (not per micro-batch, not once per process).

    Args:
        progress: optional callable giving another measure of the run's progress in [0, 1] (e.g.
            :meth:`~hf_maskedav.training.budget.TimeBudget.progress`, the fraction of a wall-clock budget spent).
            The schedule then follows whichever runs out first: it is evaluated at the (fractional) step
            ``max(step, progress() * total_steps)``, warm-up included.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)

    def factor(step: int) -> float:
        if progress is not None:
            step = max(step, progress() * total_steps)
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        fraction = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))

    scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [lambda s, k=k: factor(s) * k for k in scales])


_MAVIL_LAYER = re.compile(r"(?:^|\.)(audio_layers|video_layers|fusion_layers)\.(\d+)\.")


def mavil_layer_id(config):
    """``layer_id(name, num_layers)`` for MAViL: embeddings 0, modality layer ``i`` -> ``i + 1``, fusion layer ``j``
    -> ``depth + j + 1`` (``depth`` = the deeper modality stack), heads ``num_layers + 1``. Use with
    ``num_layers = mavil_num_layers(config)``."""
    depth = max(config.audio_num_hidden_layers, config.video_num_hidden_layers)

    def layer_id(name: str, num_layers: int) -> int:
        match = _MAVIL_LAYER.search(name)
        if match:
            index = int(match.group(2))
            return depth + index + 1 if match.group(1) == "fusion_layers" else index + 1
        if "embeddings" in name:
            return 0
        return num_layers + 1

    return layer_id


def mavil_num_layers(config) -> int:
    return max(config.audio_num_hidden_layers, config.video_num_hidden_layers) + config.fusion_num_hidden_layers


__all__ = [
    "NO_WEIGHT_DECAY_NAMES",
    "cosine_schedule_with_warmup",
    "default_layer_id",
    "mavil_layer_id",
    "mavil_num_layers",
    "parameter_groups",
]

