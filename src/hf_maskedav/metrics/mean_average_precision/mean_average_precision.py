"""Mean average precision (mAP) for multi-label classification, the AudioSet convention, as an `evaluate` metric.

Load it with ``evaluate.load(hf_maskedav.metrics.MEAN_AVERAGE_PRECISION)`` (the path of this folder); it needs
nothing from the Hub. This file is self-contained (numpy, datasets, evaluate) because `evaluate` copies metric
scripts into its own module cache before importing them.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Macro-averaged average precision over classes, the metric reported for AudioSet (Audio-MAE, AST, PANNs...): for each
class, the average precision of ranking all clips by that class's score (area under the precision-recall curve,
computed as scikit-learn's `average_precision_score`, ties included), then the mean over classes. Classes without
any positive reference are left out of the mean (their AP is undefined) and counted in `num_classes_without_positives`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): one score per class per example (logits, sigmoid probabilities or any
        monotonic transform: only the ranking matters).
    references (`list` of `list` of `int` or `float`): multi-hot targets per example; values >= 0.5 count as positive.
    return_per_class (`bool`, defaults to `False`): also return the AP of every class (NaN where undefined).
Returns:
    mean_average_precision (`float`): mean AP over the classes that have at least one positive.
    num_classes_without_positives (`int`): classes left out.
    average_precision_per_class (`list` of `float`): only with `return_per_class=True`.
Examples:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8], [0.6, 0.7]], references=[[1, 0], [0, 1], [1, 1]])
    {'mean_average_precision': 1.0, 'num_classes_without_positives': 0}
"""

_CITATION = """
@inproceedings{gemmeke2017audioset,
  title={Audio Set: An ontology and human-labeled dataset for audio events},
  author={Gemmeke, Jort F. and Ellis, Daniel P. W. and Freedman, Dylan and Jansen, Aren and Lawrence, Wade and
          Moore, R. Channing and Plakal, Manoj and Ritter, Marvin},
  booktitle={ICASSP},
  year={2017}
}
"""


def average_precision(scores, targets) -> float:
    """AP of one class: sum over score thresholds of (recall gain) x (precision), NaN without positives."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64) >= 0.5
    positives = targets.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, targets = scores[order], targets[order]
    # one point per distinct score (ties share a threshold, as in scikit-learn)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(targets)[last_of_tie]
    predicted_positives = last_of_tie + 1
    precision = true_positives / predicted_positives
    recall = true_positives / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precision_per_class(scores, targets) -> np.ndarray:
    """``[num_classes]`` APs for ``[N, C]`` scores and multi-hot targets."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(
            f"predictions and references must both have shape (num_examples, num_classes); got {scores.shape} and "
            f"{targets.shape}"
        )
    return np.array([average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])])


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeanAveragePrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=["https://research.google.com/audioset/"],
        )

    def _compute(self, predictions, references, return_per_class=False):
        per_class = average_precision_per_class(predictions, references)
        defined = ~np.isnan(per_class)
        if not defined.any():
            raise ValueError("no class has a positive reference; mean average precision is undefined")
        result = {
            "mean_average_precision": float(per_class[defined].mean()),
            "num_classes_without_positives": int((~defined).sum()),
        }
        if return_per_class:
            result["average_precision_per_class"] = per_class.tolist()
        return result
