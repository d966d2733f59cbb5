"""Split arguments of the training scripts: a split name, ``datasets`` slice syntax, or a row filter.

Besides ``"train"``, ``"validation"`` or ``"train[:80%]"``, a split may be a **row filter** on the dataset's only split
(or its ``train`` split when it has several):

- ``COLUMN=VALUE[,VALUE...]``: the rows whose ``COLUMN`` is one of the values;
- ``COLUMN!=VALUE[,VALUE...]``: the rows whose ``COLUMN`` is none of them.

Values are compared as strings (``str(value)``; for a ``ClassLabel`` column the class name matches too), e.g.
``speaker=george,jackson`` or ``official_split=test``. A filter naming a missing column, or selecting no row, is an
error (:class:`SplitFilterError`) that lists the columns. Split names and slices never contain ``=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_FILTER_RE = re.compile(r"^\s*([^=!\[\]]+?)\s*(!=|=)\s*(.+?)\s*$")


class SplitFilterError(LookupError):
    """A row-filter split that cannot be applied (missing column, no row selected, no split to filter).

    Not a ``ValueError``/``KeyError``: the scripts treat those as "the dataset has no such split" for optional
    evaluation splits, and a mistyped filter must not silently skip the evaluation.
    """


@dataclass(frozen=True)
class RowFilter:
    """``column`` in (or, with ``exclude``, not in) ``values``, compared as strings."""

    column: str
    values: tuple[str, ...]
    exclude: bool = False

    def __str__(self) -> str:
        return f"{self.column}{'!=' if self.exclude else '='}{','.join(self.values)}"

    def keep(self, value, class_names: list[str] | None = None) -> bool:
        texts = {str(value)}
        if class_names is not None and isinstance(value, int) and 0 <= value < len(class_names):
            texts.add(class_names[value])
        return bool(texts & set(self.values)) != self.exclude


def parse_row_filter(split: str | None) -> RowFilter | None:
    """The :class:`RowFilter` a split argument describes, or None for a split name / slice."""
    if not isinstance(split, str) or "=" not in split:
        return None
    match = _FILTER_RE.match(split)
    if match is None:
        raise SplitFilterError(f"cannot read the split {split!r}: expected COLUMN=VALUE[,VALUE...] or COLUMN!=VALUE[,...]")
    column, operator, values = match.groups()
    values = tuple(v.strip() for v in values.split(",") if v.strip())
    if not values:
        raise SplitFilterError(f"the split filter {split!r} names no value")
    return RowFilter(column, values, operator == "!=")


def is_row_filter(split: str | None) -> bool:
    return isinstance(split, str) and "=" in split


def _base_split(whole, description: str):
    """The dataset's only split, or its ``train`` split."""
    if not hasattr(whole, "keys"):  # already one split
        return whole
    names = list(whole.keys())
    if len(names) == 1:
        return whole[names[0]]
    if "train" in names:
        return whole["train"]
    raise SplitFilterError(
        f"{description} has the splits {names}: a COLUMN=VALUE split filters the dataset's only split or its 'train' "
        "split; give a split name instead"
    )


def apply_row_filter(data, row_filter: RowFilter, description: str = "the dataset"):
    """``data`` (a ``datasets.Dataset`` or ``IterableDataset``) restricted to the rows ``row_filter`` keeps."""
    import datasets

    features = data.features
    columns = sorted(features) if features is not None else None
    if columns is not None and row_filter.column not in features:
        raise SplitFilterError(
            f"split filter {str(row_filter)!r}: {description} has no column {row_filter.column!r}; its columns are "
            f"{columns}"
        )
    feature = features[row_filter.column] if features is not None else None
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None

    def keep(values):
        return [row_filter.keep(v, names) for v in values]

    if isinstance(data, datasets.IterableDataset):  # a stream: filtered lazily, its size is unknown
        return data.filter(keep, batched=True, input_columns=[row_filter.column])
    selected = data.filter(keep, batched=True, input_columns=[row_filter.column], keep_in_memory=True)
    if len(selected) == 0:
        seen = sorted({str(v) for v in data[row_filter.column]})
        shown = ", ".join(seen[:20]) + (", ..." if len(seen) > 20 else "")
        raise SplitFilterError(
            f"split filter {str(row_filter)!r} selects no row of {description} ({len(data)} rows); the values of "
            f"{row_filter.column!r} are: {shown}; its columns are {columns}"
        )
    return selected


def load_split(load: Callable[[str | None], object], split: str, description: str = "the dataset"):
    """Open ``split`` with ``load(split_name)`` (e.g. a ``datasets.load_dataset`` call): a split name or slice is
    passed through; a row filter loads every split (``load(None)``), takes the only one (or ``train``) and filters it.

    Returns:
        ``(data, description)`` with the filter and the row count added to the description.
    """
    row_filter = parse_row_filter(split)
    if row_filter is None:
        return load(split), f"{description} ({split})"
    data = apply_row_filter(_base_split(load(None), description), row_filter, description)
    size = f", {len(data)} rows" if hasattr(data, "__len__") else ""
    return data, f"{description} ({row_filter}{size})"


__all__ = ["RowFilter", "SplitFilterError", "apply_row_filter", "is_row_filter", "load_split", "parse_row_filter"]
