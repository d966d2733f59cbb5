"""Evaluation metrics for the training scripts.

The metrics themselves are `evaluate` modules shipped in :mod:`hf_maskedav.metrics` (loadable offline with
``evaluate.load(path)``); this module re-exports them and offers plain functions for code that does not want an
``evaluate`` object.
"""

from __future__ import annotations

import numpy as np

from ..metrics import ACCURACY, MEAN_AVERAGE_PRECISION, load_metric
from ..metrics.mean_average_precision.mean_average_precision import average_precision, average_precision_per_class


def mean_average_precision(scores, targets) -> float:
    """AudioSet mAP of ``[N, C]`` scores against multi-hot targets: mean over the classes with a positive."""
    per_class = average_precision_per_class(scores, targets)
    if np.isnan(per_class).all():
        raise ValueError("no class has a positive target; mean average precision is undefined")
    return float(np.nanmean(per_class))


def accuracy(predictions, references) -> float:
    """Fraction of equal class indices."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.shape != references.shape or predictions.size == 0:
        raise ValueError(f"need as many predictions as references, got {predictions.shape} and {references.shape}")
    return float((predictions == references).mean())


__all__ = [
    "ACCURACY",
    "MEAN_AVERAGE_PRECISION",
    "accuracy",
    "average_precision",
    "average_precision_per_class",
    "load_metric",
    "mean_average_precision",
]
