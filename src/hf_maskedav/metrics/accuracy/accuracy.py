"""Top-1 accuracy as an `evaluate` metric that needs no download (``evaluate.load("accuracy")`` fetches its script
from the Hub). Load it with ``evaluate.load(hf_maskedav.metrics.ACCURACY)``; same inputs and output as the Hub one."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy: the fraction of examples whose predicted class equals the reference class.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class indices.
    references (`list` of `int`): reference class indices.
    normalize (`bool`, defaults to `True`): the fraction (True) or the number (False) of correct predictions.
    sample_weight (`list` of `float`, optional): per-example weights.
Returns:
    accuracy (`float`).
Examples:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1])
    {'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if predictions.shape != references.shape:
            raise ValueError(f"{predictions.shape[0]} predictions but {references.shape[0]} references")
        if predictions.size == 0:
            raise ValueError("accuracy of an empty set of predictions is undefined")
        correct = (predictions == references).astype(np.float64)
        weights = np.ones_like(correct) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        total = float((correct * weights).sum())
        return {"accuracy": total / float(weights.sum()) if normalize else total}
