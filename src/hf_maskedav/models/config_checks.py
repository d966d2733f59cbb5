"""The checks every family's ``validate_architecture`` makes, written once (same messages in every family).

* :func:`check_divisible` -- ``value_field % divisor_field == 0`` (widths by head counts, sizes by patch sizes).
* :func:`check_ranges` -- a table of ``(fields, test, "what they must be")`` rows, e.g. :data:`UNIT_INTERVAL` for mask
  ratios and probabilities, :data:`NON_NEGATIVE` for layer counts and loss weights, :data:`POSITIVE` for temperatures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

UNIT_INTERVAL = (lambda v: 0.0 <= v < 1.0, "in [0, 1)")
NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
POSITIVE = (lambda v: v > 0, "> 0")

Range = tuple[Callable[[float], bool], str]


def check_divisible(config, *pairs: tuple[str, str]) -> None:
    """Raise ``ValueError("hidden_size 30 is not divisible by num_attention_heads 4")`` for the first pair of field
    names ``(value, divisor)`` whose values do not divide."""
    for value_name, divisor_name in pairs:
        value, divisor = getattr(config, value_name), getattr(config, divisor_name)
        if value % divisor:
            raise ValueError(f"{value_name} {value} is not divisible by {divisor_name} {divisor}")


def check_ranges(config, table: Iterable[tuple[Iterable[str], Range]]) -> None:
    """Raise ``ValueError("mask_ratio must be in [0, 1), got 1.0")`` for the first field outside its range; ``table``
    holds ``(field names, (test, what the fields must be))`` rows."""
    for names, (valid, expected) in table:
        for name in names:
            if not valid(getattr(config, name)):
                raise ValueError(f"{name} must be {expected}, got {getattr(config, name)}")
