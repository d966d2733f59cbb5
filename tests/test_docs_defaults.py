"""The options tables of docs/training.md and docs/training_video.md agree with the scripts' argument parsers.

The parser is the source of truth: every table under a ``## `examples/NAME.py` `` heading whose header has a
``default`` column is read, each documented default is paired with its flag, and compared with what
``NAME.parse_args([])`` gives (``--random_init`` for the probes, which want an encoder; the example module is imported
by path; nothing is trained). No number is written here, so changing a parser default only asks for the matching docs
change.

Reading a row:

- the flags are the ``--name`` tokens of the option cell, in order (``--adam_beta1/2`` is ``--adam_beta1``,
  ``--adam_beta2``); the default cell is split at top-level ``,`` and `` / `` (not inside parentheses or
  backticks) into as many values, paired in order; a single value goes with the first flag;
- a value is compared when it is a number (``1e-3 == 0.001``; a trailing ``(note)`` is ignored; ``10 %`` is 0.1),
  a backticked literal (``str(default)``, a list default joined by spaces), ``none``/``—``/``-`` (the default is
  None or ``"none"``), ``off`` (False, None or 0) or ``on`` (True);
- anything else is prose (``config's``, ``per family (...)``, ``every epoch``, ``cores / local processes``,
  ``<model>`` placeholders) and an empty cell says nothing: both are not compared;
- a documented flag the parser does not have is an error, and so is a row whose values cannot be paired (write
  ``none / 10 %`` rather than ``10 %`` for ``--num_warmup_steps / --warmup_ratio``).

A table that documents an official recipe rather than defaults names that column so (``official recipe``), not
``default``, and is not compared.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "training.md", ROOT / "docs" / "training_video.md"]
SECTION = re.compile(r"^##+\s+`examples/(\w+)\.py`")
FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9_]*)(?:/(\d+))?")
NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
SKIP = object()
UNPAIRED: list[str] = []  # rows whose values cannot be paired with their flags


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _split_values(text: str) -> list[str]:
    """Top-level ``,`` and `` / `` separated values (not inside parentheses or backticks)."""
    values, current, depth, ticks, i = [], "", 0, False, 0
    while i < len(text):
        char = text[i]
        if char == "`":
            ticks = not ticks
        elif not ticks and char in "([":
            depth += 1
        elif not ticks and char in ")]":
            depth -= 1
        if not ticks and depth == 0 and (char == "," or text.startswith(" / ", i) or text.endswith(" /") and
                                          i == len(text) - 2 and text[i:] == " /"):
            values.append(current.strip())
            current = ""
            i += 3 if text.startswith(" / ", i) else (2 if char == " " else 1)
            continue
        current += char
        i += 1
    values.append(current.strip())
    return values


def _flags(option_cell: str) -> list[str]:
    flags = []
    for name, suffix in FLAG.findall(option_cell):
        flags.append(name)
        if suffix:  # --adam_beta1/2
            flags.append(re.sub(r"\d+$", suffix, name))
    return flags


def documented_defaults():
    """``(doc, line number, script, flag, documented value)`` for every comparable table cell."""
    rows = []
    for doc in DOCS:
        script, default_column = None, None
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("#"):
                match = SECTION.match(line)
                script = match.group(1) if match else (script if line.startswith("###") else None)
                continue
            if not line.startswith("|"):
                default_column = None
                continue
            cells = _cells(line)
            if default_column is None:  # a table's header row
                names = [c.lower() for c in cells]
                default_column = names.index("default") if "default" in names else -1
                if default_column >= 0:
                    assert script is not None, f"{doc.name}:{number}: a defaults table outside an examples/ section"
                continue
            if default_column < 0 or set(line) <= set("|-: "):
                continue
            flags = _flags(cells[0])
            if not flags:
                continue
            values = _split_values(cells[default_column])
            if len(values) == 1:
                values = values + [""] * (len(flags) - 1)
            if len(values) != len(flags):
                if all(_expected(v) is SKIP for v in values):
                    continue  # prose, e.g. "cores / local processes (on CPU)"
                UNPAIRED.append(
                    f"{doc.name}:{number}: {len(values)} default values {values} for the flags {flags}; write one per "
                    "flag (separated by ',' or ' / ')"
                )
                continue
            rows += [(doc.name, number, script, flag, value) for flag, value in zip(flags, values)]
    return rows


def _expected(value: str):
    """What a documented value means (a number, a string, None...), or SKIP when it is prose or empty."""
    text = value.strip()
    if text.startswith("**") and text.endswith("**"):
        text = text[2:-2].strip()
    if not text:
        return SKIP
    if text.startswith("`") and text.endswith("`") and text.count("`") == 2:
        literal = text[1:-1]
        return SKIP if "<" in literal else ("literal", literal)
    text = re.sub(r"\s*\([^()]*\)$", "", text).strip()  # "0 (official: 0.5)"
    lowered = text.lower()
    if lowered in ("none", "—", "-", "–"):
        return ("none",)
    if lowered == "off":
        return ("off",)
    if lowered == "on":
        return ("on",)
    if text.endswith("%") and NUMBER.match(text[:-1].strip()):
        return ("number", float(text[:-1]) / 100)
    if NUMBER.match(text):
        return ("number", float(text))
    return SKIP


def _matches(expected, default) -> bool:
    kind = expected[0]
    if kind == "number":
        return isinstance(default, (int, float)) and not isinstance(default, bool) and math.isclose(
            default, expected[1], rel_tol=1e-9, abs_tol=1e-12
        )
    if kind == "literal":
        if isinstance(default, (list, tuple)):
            return " ".join(map(str, default)) == expected[1]
        return default is not None and str(default) == expected[1]
    if kind == "none":
        return default is None or default == "none"
    if kind == "off":
        return default is None or default is False or default == 0
    return default is True


# the least a script needs to parse (the probes want an encoder: --random_init stands in for --model_name_or_path)
MINIMAL_ARGS = {"linear_probe": ["--random_init"], "linear_probe_video": ["--random_init"]}


@functools.lru_cache(maxsize=None)
def parser_defaults(script: str) -> dict:
    """``vars(parse_args(MINIMAL_ARGS or []))`` of ``examples/<script>.py`` (imported by path; ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"docs_defaults_{script}", ROOT / "examples" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module.parse_args(MINIMAL_ARGS.get(script, [])))


ROWS = documented_defaults()


def test_every_row_pairs_its_values_with_its_flags():
    assert not UNPAIRED, "\n".join(UNPAIRED)


def test_the_tables_are_found():
    scripts = {row[2] for row in ROWS}
    assert {"pretrain_audio", "finetune_audio", "pretrain_video", "pretrain_audiovisual", "finetune_video",
            "finetune_audiovisual"} <= scripts, scripts


@pytest.mark.parametrize("script", sorted({row[2] for row in ROWS}))
def test_documented_defaults_match_the_parser(script):
    defaults = parser_defaults(script)
    problems = []
    for doc, number, _, flag, value in (row for row in ROWS if row[2] == script):
        if flag not in defaults:
            problems.append(f"{doc}:{number}: --{flag} is documented but examples/{script}.py has no such option")
            continue
        expected = _expected(value)
        if expected is not SKIP and not _matches(expected, defaults[flag]):
            problems.append(f"{doc}:{number}: --{flag} documented default {value!r}, parser default {defaults[flag]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text, default, same",
    [("1e-3", 0.001, True), ("3e-3", 0.001, False), ("10 %", 0.1, True), ("none", None, True), ("—", None, True),
     ("off", False, True), ("`validation`", "validation", True), ("0 (official: 0.5)", 0.0, True),
     ("`audio_visual audio video`", ["audio_visual", "audio", "video"], True), ("1", True, False)],
)
def test_value_reading(text, default, same):
    assert _matches(_expected(text), default) is same


def test_value_splitting():
    assert _split_values("1, , 1") == ["1", "", "1"]
    assert _split_values("20 / ") == ["20", ""]
    assert _split_values("config's (0.6 tiny, 0.8 others)") == ["config's (0.6 tiny, 0.8 others)"]
    assert _split_values("none / 10 %") == ["none", "10 %"]
    assert _expected("per family (VideoMAE 12; MAE-ST 6)") is SKIP and _expected("`<model>-tiny`") is SKIP
