"""Loading a pretraining checkpoint into a classifier (or a bare encoder) with a one-line summary.

``from_pretrained`` of transformers 5 logs a long ``LOAD REPORT`` (a warning of the ``transformers.modeling_utils``
logger) listing every checkpoint tensor the model does not use (``UNEXPECTED``) and every model tensor the checkpoint
lacks (``MISSING``). Fine-tuning from our pretraining output always gives the same, expected report: the decoder,
its mask token and the encoder's final norm (replaced by the pooling norm) are dropped, the classification head is
new. :func:`load_pretrained_quietly` says that in one line and keeps the full report for **real** mismatches:

- a tensor of the model's encoder (under its ``base_model_prefix``) missing from the checkpoint;
- checkpoint tensors the model does not use while the checkpoint is itself a classifier (its ``architectures``
  name a ``...Classification`` class), i.e. not a pretraining checkpoint whose pretraining-only parts are dropped;
- shape mismatches (``ignore_mismatched_sizes=True`` re-initialises them), conversion errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

REPORT_LOGGER = "transformers.modeling_utils"
REPORT_MARKER = "LOAD REPORT"


class _ReportCatcher(logging.Filter):
    """Holds back the LOAD REPORT records of one logger (everything else passes)."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if REPORT_MARKER in str(record.msg):
            self.records.append(record)
            return False
        return True


def _source_architectures(path, **kwargs) -> list[str]:
    from transformers import PretrainedConfig

    try:
        config_dict, _ = PretrainedConfig.get_config_dict(
            path, **{k: v for k, v in kwargs.items() if k in ("cache_dir", "token", "revision", "local_files_only")}
        )
    except (OSError, ValueError):
        return []
    return list(config_dict.get("architectures") or [])


def _groups(keys, prefix: str | None, limit: int = 4) -> str:
    counts: dict[str, int] = {}
    for key in keys:
        if prefix and key.startswith(prefix + "."):
            key = key[len(prefix) + 1 :]
        first = key.split(".")[0]
        counts[first] = counts.get(first, 0) + 1
    names = sorted(counts, key=lambda name: (-counts[name], name))  # the largest part first
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def classify_loading_info(model, info: dict, source_architectures: list[str]) -> dict:
    """Split ``from_pretrained``'s loading info into expected parts and real mismatches.

    Returns:
        ``{"dropped": [...], "new_head": [...], "problems": [...]}``: pretraining-only checkpoint tensors, newly
        initialised head tensors, and descriptions of real mismatches (empty when the load is as expected).
    """
    prefix = getattr(model, "base_model_prefix", "") or ""
    has_head = bool(prefix) and hasattr(model, prefix) and getattr(model, prefix) is not model
    missing = set(info.get("missing_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    new_head = sorted(k for k in missing if has_head and not k.startswith(prefix + "."))
    problems = []
    encoder_missing = sorted(missing - set(new_head))
    if encoder_missing:
        problems.append(f"{len(encoder_missing)} encoder tensors missing from the checkpoint ({encoder_missing[:3]})")
    from_classifier = any("Classification" in name for name in source_architectures)
    dropped = []
    if unexpected and from_classifier:
        problems.append(f"{len(unexpected)} checkpoint tensors unused by the model ({sorted(unexpected)[:3]})")
    else:
        dropped = sorted(unexpected)
    mismatched = list(info.get("mismatched_keys") or ())
    if mismatched:
        problems.append(f"{len(mismatched)} tensors with another shape ({[m[0] for m in mismatched][:3]})")
    if info.get("error_msgs") or info.get("conversion_errors"):
        problems.append("loading errors")
    return {"dropped": dropped, "new_head": new_head, "problems": problems}


def describe_load(path, classification: dict, prefix: str | None = None) -> str:
    """The one line said instead of an expected report."""
    parts = []
    dropped, new_head = classification["dropped"], classification["new_head"]
    if dropped:
        parts.append(f"dropped {len(dropped)} pretraining-only tensors ({_groups(dropped, prefix)})")
    if new_head:
        parts.append(f"new classification head ({len(new_head)} tensors: {_groups(new_head, prefix)})")
    return f"loaded the encoder of {path}" + (": " + ", ".join(parts) if parts else " (every tensor matched)")


def load_pretrained_quietly(model_class, path, *args, log: Callable[[str], None] | None = print, **kwargs):
    """``model_class.from_pretrained(path, *args, **kwargs)`` with transformers' LOAD REPORT replaced by one line
    (through ``log``) when the differences are the expected ones of loading a pretraining checkpoint into a
    classifier/encoder; the report is logged unchanged (plus a line naming the problem) otherwise.
    """
    kwargs.pop("output_loading_info", None)
    logger = logging.getLogger(REPORT_LOGGER)
    catcher = _ReportCatcher()
    logger.addFilter(catcher)
    try:
        model, info = model_class.from_pretrained(path, *args, output_loading_info=True, **kwargs)
    except BaseException:
        logger.removeFilter(catcher)
        for record in catcher.records:  # a failed load: show what transformers said
            logger.handle(record)
        raise
    logger.removeFilter(catcher)
    classification = classify_loading_info(model, info, _source_architectures(path, **kwargs))
    if classification["problems"]:
        for record in catcher.records:
            logger.handle(record)
        logger.warning(
            f"loading {path} into {type(model).__name__}: " + "; ".join(classification["problems"])
            + " (see the LOAD REPORT above)"
        )
    elif log is not None and (classification["dropped"] or classification["new_head"] or catcher.records):
        log(describe_load(path, classification, getattr(model, "base_model_prefix", None)))
    return model


__all__ = ["classify_loading_info", "describe_load", "load_pretrained_quietly"]
