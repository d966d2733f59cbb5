"""``--config_overrides "k=v,k2=v2"``: change config fields of a preset or a loaded config from the command line.

As transformers' ``run_mae.py`` option, with values read as JSON where possible (``decoder_window_size=[5,4]``,
``norm_pix_loss=false``, ``name="x"``), then as Python literals (``True``, ``None``, ``(2, 8, 8)``), else kept as
strings. Commas inside brackets, braces, parentheses or quotes do not separate items. The new config is built again
from its fields, so the config class validates it (e.g. a ``max_length`` the token grid does not divide), and a key
that is not a field of the config is an error naming it.
"""

from __future__ import annotations

import ast
import json

_CLOSING = {"[": "]", "{": "}", "(": ")"}


def _split_items(text: str) -> list[str]:
    items, current, stack, quote = [], [], [], None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in _CLOSING:
            stack.append(_CLOSING[char])
        elif stack and char == stack[-1]:
            stack.pop()
        elif char == "," and not stack:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if stack or quote:
        raise ValueError(f"--config_overrides {text!r}: unbalanced brackets or quotes")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return list(value) if isinstance(value, tuple) else value


def parse_config_overrides(text: str | None) -> dict:
    """``'a=1,b=false,c=[4,4],d=sdpa'`` -> ``{"a": 1, "b": False, "c": [4, 4], "d": "sdpa"}``."""
    overrides = {}
    for item in _split_items(text or ""):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--config_overrides: {item!r} is not KEY=VALUE (items are separated by commas)")
        overrides[key.strip()] = _parse_value(value.strip())
    return overrides


def config_fields(config) -> set[str]:
    """The fields a config can be given (what it serialises)."""
    return set(config.to_dict()) | set(getattr(type(config), "__dataclass_fields__", {}))


def apply_config_overrides(config, overrides: dict | str | None, what: str = "--config_overrides"):
    """A new config: ``config`` with ``overrides`` (a dict or the ``k=v,...`` text), validated by its class.

    Raises:
        ValueError: a key that is not a field of the config (named, with the fields), or a value the config refuses.
    """
    if isinstance(overrides, str) or overrides is None:
        overrides = parse_config_overrides(overrides)
    if not overrides:
        return config
    known = config_fields(config)
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        public = sorted(k for k in known if not k.startswith("_"))
        raise ValueError(f"{what}: unknown config field(s) {unknown} for {type(config).__name__}; its fields are {public}")
    fields = config.to_dict()
    fields.update(overrides)
    try:
        return type(config).from_dict(fields)
    except Exception as error:
        if "max_length" in overrides and hasattr(config, "max_length"):
            from .clip_length import invalid_max_length_message

            raise ValueError(f"{what}: " + invalid_max_length_message(config, overrides["max_length"], error)) from error
        raise


def config_for_script(config, config_overrides: str | None = None, clip_seconds: float | None = None, log=print,
                      **fields):
    """The config a script trains: ``fields`` (its own options, None values ignored), then ``--config_overrides``,
    then ``--clip_seconds`` (``max_length`` rounded up to an accepted length, logged), each validated."""
    overrides = {k: v for k, v in fields.items() if v is not None}
    overrides.update(parse_config_overrides(config_overrides))
    config = apply_config_overrides(config, overrides)
    if clip_seconds is not None:
        from .clip_length import describe_rounding, max_length_for_seconds

        requested, accepted = max_length_for_seconds(config, clip_seconds)
        log(describe_rounding(config, clip_seconds, requested, accepted))
        config = apply_config_overrides(config, {"max_length": accepted}, what="--clip_seconds")
    return config


def add_config_overrides_argument(group) -> None:
    """``--config_overrides`` (every script that builds a config)."""
    group.add_argument(
        "--config_overrides",
        default=None,
        help="config fields to change, applied to the preset or loaded config: 'k=v,k2=v2' with values read as JSON "
        "(e.g. 'mask_ratio=0.7,decoder_window_size=[5,4]'); unknown keys are an error",
    )


__all__ = [
    "add_config_overrides_argument",
    "apply_config_overrides",
    "config_fields",
    "config_for_script",
    "parse_config_overrides",
]
