"""`evaluate` metric modules shipped with the package (no Hub download needed).

``evaluate.load(MEAN_AVERAGE_PRECISION)`` gives the AudioSet multi-label mAP, ``evaluate.load(ACCURACY)`` top-1
accuracy. :func:`load_metric` resolves these short names and passes anything else to ``evaluate.load``.
"""

from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
MEAN_AVERAGE_PRECISION = os.path.join(_HERE, "mean_average_precision")
ACCURACY = os.path.join(_HERE, "accuracy")
BUNDLED_METRICS = {
    "mean_average_precision": MEAN_AVERAGE_PRECISION,
    "map": MEAN_AVERAGE_PRECISION,
    "accuracy": ACCURACY,
}


def load_metric(name: str, **kwargs):
    """``evaluate.load`` of a bundled metric (``"accuracy"``, ``"mean_average_precision"``/``"map"``), or of any
    other metric id or path (e.g. ``"evaluate-metric/f1"``, which needs the Hub)."""
    import evaluate

    return evaluate.load(BUNDLED_METRICS.get(name, name), **kwargs)


__all__ = ["ACCURACY", "BUNDLED_METRICS", "MEAN_AVERAGE_PRECISION", "load_metric"]
