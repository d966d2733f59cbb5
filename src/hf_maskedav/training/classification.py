"""Classification targets and loss for the fine-tuning scripts: one-hot targets with label smoothing, batch
mixup / cutmix (on pixels, on spectrograms, or on both modalities with one weight), and the loss for class indices, soft
(mixed or smoothed) targets, or multi-label targets.
"""

from __future__ import annotations

import numpy as np
import torch


def one_hot_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Class indices ``[N]`` or multi-hot ``[N, C]`` -> float targets with label smoothing (timm convention:
    ``on = 1 - smoothing + smoothing / C``, ``off = smoothing / C``)."""
    if labels.dim() == 1:
        targets = torch.nn.functional.one_hot(labels.long(), num_classes).float()
    else:
        targets = labels.float()
    if smoothing > 0:
        off = smoothing / num_classes
        targets = targets * (1.0 - smoothing) + off
    return targets


def mix_batch(
    rng: np.random.Generator,
    pixel_values: torch.Tensor | None,
    targets: torch.Tensor,
    input_values: torch.Tensor | None = None,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
):
    """Batch mixup / cutmix (timm's ``Mixup`` in ``"batch"`` mode, used by the official video fine-tuning recipes:
    mixup 0.8, cutmix 1.0, prob 1.0, switch 0.5): every sample is mixed with the batch flipped, with one ``lam``.

    Cutmix pastes the same box on every frame of the clip and sets ``lam`` to the pasted area; audio-visual batches
    (``input_values`` given) always use mixup, on both modalities with the same ``lam``. ``targets`` (float
    ``[N, C]``, e.g. from :func:`one_hot_targets`) are mixed alike.

    Returns:
        ``(pixel_values, input_values, targets, lam)`` (new tensors; ``lam = 1`` when nothing was mixed).
    """
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or rng.random() >= prob:
        return pixel_values, input_values, targets, 1.0
    use_cutmix = pixel_values is not None and input_values is None and cutmix_alpha > 0 and (
        mixup_alpha <= 0 or rng.random() < switch_prob)
    if use_cutmix:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        height, width = pixel_values.shape[-2:]
        cut = np.sqrt(1.0 - lam)
        ch, cw = int(height * cut), int(width * cut)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = np.clip(cy - ch // 2, 0, height), np.clip(cy + ch // 2, 0, height)
        left, right = np.clip(cx - cw // 2, 0, width), np.clip(cx + cw // 2, 0, width)
        mixed = pixel_values.clone()
        mixed[..., top:bottom, left:right] = pixel_values.flip(0)[..., top:bottom, left:right]
        lam = 1.0 - float((bottom - top) * (right - left)) / (height * width)
        pixel_values = mixed
    else:
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        if pixel_values is not None:
            pixel_values = pixel_values * lam + pixel_values.flip(0) * (1.0 - lam)
        if input_values is not None:
            input_values = input_values * lam + input_values.flip(0) * (1.0 - lam)
    targets = targets * lam + targets.flip(0) * (1.0 - lam)
    return pixel_values, input_values, targets, lam


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """BCE with logits for multi-label targets; else cross-entropy with class indices ``[N]`` or with soft targets
    ``[N, C]`` (mixup, label smoothing: :func:`one_hot_targets`, :func:`mix_batch`).

    The scripts' loss, beside the heads' own (:func:`hf_maskedav.modeling_utils.classification_loss`, chosen by
    ``config.problem_type``): a head given float ``[N, C]`` labels reads them as multi-label, so soft single-label
    targets are scored here, with the kind of task said explicitly (``multi_label``)."""
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if labels.dim() == 2:  # soft targets
        return torch.sum(-labels.to(logits.dtype) * torch.log_softmax(logits, dim=-1), dim=-1).mean()
    return torch.nn.functional.cross_entropy(logits, labels)


__all__ = ["classification_loss", "mix_batch", "one_hot_targets"]
