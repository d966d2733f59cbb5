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


# ---------------------------------------------------------------------------------------------------------------------
# A validation set carved out of the training rows (--validation_split_percentage)
# ---------------------------------------------------------------------------------------------------------------------


def stratified_holdout(keys, percentage: float, seed: int) -> tuple[list[int], list[int]]:
    """Split the row positions ``0..len(keys)-1`` into ``(train, held_out)``, stratified by ``keys`` (one label per
    row), about ``percentage`` % held out, chosen by ``seed`` alone (the same on every process and every run).

    The held-out count is ``round(n * percentage / 100)`` (at least 1), shared among the classes in proportion to
    their sizes (largest remainders; ties go to the classes in sorted order), and a class keeps at least one training
    row when it has more than one. Both lists are sorted.
    """
    import numpy as np

    keys = list(keys)
    count = len(keys)
    if not 0 < percentage < 100:
        raise ValueError(f"the validation percentage must be between 0 and 100 (exclusive), got {percentage}")
    if count < 2:
        raise ValueError(f"cannot hold out a validation set from {count} training row(s)")
    groups: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(repr(key), []).append(position)
    order = sorted(groups)
    target = min(count - 1, max(1, round(count * percentage / 100)))
    exact = {key: len(groups[key]) * percentage / 100 for key in order}
    cap = {key: len(groups[key]) - 1 if len(groups[key]) > 1 else 1 for key in order}
    quota = {key: min(cap[key], int(exact[key])) for key in order}
    for key in sorted(order, key=lambda k: (-(exact[k] - int(exact[k])), order.index(k))):
        if sum(quota.values()) >= target:
            break
        if quota[key] < cap[key]:
            quota[key] += 1
    for key in order:  # still short (small classes capped): take from the classes with room, largest first
        while sum(quota.values()) < target and quota[key] < cap[key] and len(groups[key]) > 1:
            quota[key] += 1
    rng = np.random.default_rng(seed)
    held_out = []
    for key in order:
        members = groups[key]
        chosen = rng.permutation(len(members))[: quota[key]]
        held_out += [members[i] for i in chosen]
    held = set(held_out)
    return [i for i in range(count) if i not in held], sorted(held)


def row_label_keys(data, label_column: str) -> list:
    """One stratification key per row of ``data`` without decoding the media: the row's label (the first label of a
    multi-label row)."""
    import datasets

    if hasattr(data, "labels_of"):  # the built-in demo datasets: labels without rendering anything
        values = [data.labels_of(i) for i in range(len(data))]
    elif isinstance(data, datasets.Dataset):
        values = data[label_column]
    else:
        values = [data[i][label_column] for i in range(len(data))]
    return [(sorted(map(str, v))[0] if len(v) else None) if isinstance(v, (list, tuple)) else v for v in values]


class RowSubset:
    """The rows ``indices`` of a map-style dataset that is not a ``datasets.Dataset`` (the demo datasets)."""

    def __init__(self, data, indices):
        self.data, self.indices = data, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.data[self.indices[index]]

    def labels_of(self, index: int):
        return self.data.labels_of(self.indices[index])

    def __getattr__(self, name):  # the wrapped dataset's other attributes (class names, split...)
        if name in ("data", "indices"):
            raise AttributeError(name)
        return getattr(self.data, name)


def select_rows(data, indices):
    """``data`` restricted to ``indices`` (``Dataset.select`` for a ``datasets.Dataset``)."""
    import datasets

    if isinstance(data, datasets.Dataset):
        return data.select(indices)
    return RowSubset(data, indices)


def carve_validation(source, percentage: float, seed: int):
    """``(train_source, validation_source)``: a seeded, label-stratified ``percentage`` % of ``source``'s rows held
    out for evaluation, the rest for training. ``source`` is an opened audio or video source (a dataclass with
    ``data``, ``labels`` and ``description``), already row-filtered; the class order (``labels``) is shared.
    """
    import dataclasses

    if getattr(source, "streaming", False) or not hasattr(source.data, "__len__"):
        raise ValueError("a validation set cannot be carved out of streamed training data; give an evaluation split")
    column = source.labels.column if source.labels is not None else None
    keys = row_label_keys(source.data, column) if column is not None else [None] * len(source.data)
    train_rows, held_rows = stratified_holdout(keys, percentage, seed)
    train = dataclasses.replace(
        source, data=select_rows(source.data, train_rows),
        description=f"{source.description} minus a held-out {percentage:g} % ({len(train_rows)} rows)",
    )
    held = dataclasses.replace(
        source, data=select_rows(source.data, held_rows),
        description=f"{percentage:g} % of {source.description} held out (seed {seed}, stratified by label, "
        f"{len(held_rows)} rows)",
    )
    return train, held


__all__ = [
    "RowFilter",
    "RowSubset",
    "SplitFilterError",
    "apply_row_filter",
    "carve_validation",
    "is_row_filter",
    "load_split",
    "parse_row_filter",
    "row_label_keys",
    "select_rows",
    "stratified_holdout",
]
