"""``--validation_split_percentage``: evaluate on a seeded, label-stratified part of the training rows.

As in transformers' examples, for the fine-tuning scripts (``finetune_audio.py``, ``finetune_video.py``,
``finetune_audiovisual.py``):

- given explicitly (``--validation_split_percentage N``, 0 < N < 100): N % of the training rows (after row filters
  such as ``speaker=george,jackson``) are held out for evaluation and best-model selection, whatever ``--eval_split``
  says, and the model trains on the rest;
- not given: the ``--eval_split`` is used when the data has it; when it does not, 10 % of the training rows are held
  out instead (said in the log), so a dataset with only train/test splits fine-tunes as it is;
- ``0``: never hold out (a missing ``--eval_split`` then means no evaluation); ``--eval_split none`` without an
  explicit percentage trains without evaluation.

The held-out rows depend on ``--seed`` and the labels only (:func:`hf_maskedav.data.splits.carve_validation`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

DEFAULT_VALIDATION_PERCENTAGE = 10.0
SPLIT_MISSING_ERRORS = (ValueError, KeyError, FileNotFoundError)


def _percentage(text: str) -> float:
    value = float(text)
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"must be in [0, 100), got {text}")
    return value


def add_validation_split_argument(group) -> None:
    group.add_argument(
        "--validation_split_percentage", type=_percentage, default=None,
        help="hold out this %% of the training rows (seeded by --seed, stratified by label) for evaluation and "
        f"best-model selection instead of --eval_split; by default {DEFAULT_VALIDATION_PERCENTAGE:g} %% when "
        "--eval_split is missing from the data; 0: never",
    )


def resolve_evaluation(args, train_source, open_eval: Callable[[str], object], log: Callable[[str], None] = print):
    """``(train_source, eval_source)`` as the command line asks (``eval_source`` None: no evaluation).

    ``open_eval(split)`` opens an evaluation split; a split the data does not have raises one of
    ``SPLIT_MISSING_ERRORS`` (a mistyped row filter raises ``SplitFilterError``, which is not caught).
    """
    from ..data.splits import carve_validation

    percentage = getattr(args, "validation_split_percentage", None)

    def carve(value: float, why: str):
        train, held = carve_validation(train_source, value, args.seed)
        log(f"{why}: evaluating on {held.description}; training on the other {len(train.data)} rows")
        return train, held

    if percentage:
        return carve(percentage, f"--validation_split_percentage {percentage:g}")
    if args.eval_split == "none":
        return train_source, None
    try:
        return train_source, open_eval(args.eval_split)
    except SPLIT_MISSING_ERRORS as error:
        if percentage == 0:
            log(f"no evaluation: the data has no split {args.eval_split!r} ({error}) and --validation_split_percentage "
                "is 0")
            return train_source, None
        return carve(
            DEFAULT_VALIDATION_PERCENTAGE,
            f"the data has no evaluation split {args.eval_split!r}, so {DEFAULT_VALIDATION_PERCENTAGE:g} % of the "
            "training rows are held out (--validation_split_percentage; --eval_split none trains without evaluation)",
        )


__all__ = ["DEFAULT_VALIDATION_PERCENTAGE", "add_validation_split_argument", "resolve_evaluation"]
