"""Shared conversion helpers: safe checkpoint loading and strict key tables ("conversion as data")."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

# Globals the official pickles need besides tensors (weights_only=True refuses anything else).
SAFE_GLOBALS = [argparse.Namespace]


def fixture_io(folder: str | Path, fixture: Mapping) -> tuple[dict[str, torch.Tensor], float, float]:
    """A parity fixture's ``io.safetensors`` tensors (inputs and the official outputs) and its suggested
    ``(atol, rtol)`` (defaults ``1e-5``, ``1e-4``): the start of every family's ``verify_fixture``."""
    from safetensors.torch import load_file

    io = load_file(str(Path(folder) / "io.safetensors"))
    tol = fixture.get("suggested_tolerance", {})
    return io, float(tol.get("atol", 1e-5)), float(tol.get("rtol", 1e-4))


def forward_call_arguments(fixture: Mapping) -> dict[str, float]:
    """Numeric keyword arguments of the official call a fixture recorded in ``forward_call`` (``mask_ratio=0.8``): the
    per-call options to pass to our forward the same way."""
    found = re.findall(r"(\w+)\s*=\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)", fixture.get("forward_call", ""))
    return {name: float(value) for name, value in found}


class UnmappedKeysError(KeyError):
    """A checkpoint and a model disagree: lists every unmapped, missing, unexpected or mis-shaped key."""

    def __str__(self) -> str:  # KeyError quotes its message; show it as written
        return str(self.args[0])


def load_official_checkpoint(path: str | Path, extra_safe_globals: Iterable = ()) -> dict:
    """Load a ``.pth``/``.pyth`` file with ``weights_only=True`` and an explicit allow-list of globals.

    A pickle that references anything else (for example a function to call while unpickling) is refused with
    ``pickle.UnpicklingError``; nothing in the file is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with torch.serialization.safe_globals([*SAFE_GLOBALS, *extra_safe_globals]):
        return torch.load(path, map_location="cpu", weights_only=True)


def unwrap_state_dict(checkpoint: Mapping, containers=("model", "module", "model_state", "state_dict")) -> dict:
    """Return the state dict inside an official container (the first of ``containers`` present) or the dict itself.

    A leading ``module.`` (saved from ``DataParallel``/DDP) is stripped from every key.
    """
    state_dict = checkpoint
    for name in containers:
        if isinstance(checkpoint, Mapping) and name in checkpoint and isinstance(checkpoint[name], Mapping):
            state_dict = checkpoint[name]
            break
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(
            f"no state dict found in checkpoint (looked for containers {containers}); top-level keys: "
            f"{sorted(checkpoint)[:10]}"
        )
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    return dict(state_dict)


# A timm ``Block``'s parts -> ours (layers.TransformerLayer), for the families ported from timm ViTs (Audio-MAE, CAV-MAE,
# MAViL); each appends ``.weight``/``.bias`` under its own block prefixes.
TIMM_BLOCK_PARTS = {
    "norm1": "norm1",
    "attn.qkv": "attention.qkv_proj",
    "attn.proj": "attention.o_proj",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


class KeyTable:
    """A declarative mapping from official keys to ours.

    Args:
        rules: ``{official_pattern: our_pattern}``; ``{}`` stands for a layer index and is carried over, e.g.
            ``{"blocks.{}.attn.qkv.weight": "audiomae.layers.{}.attention.qkv_proj.weight"}``.
        ignore: official keys (or patterns with ``{}``) that are known and deliberately not loaded, with the reason
            given by the caller's documentation (e.g. fixed tables rebuilt by the model).
    """

    def __init__(self, rules: Mapping[str, str], ignore: Iterable[str] = ()):
        self.rules = [(self._compile(src), dst) for src, dst in rules.items()]
        self.ignore = [self._compile(p) for p in ignore]

    @staticmethod
    def _compile(pattern: str) -> re.Pattern:
        return re.compile("^" + re.escape(pattern).replace(r"\{\}", r"(\d+)") + "$")

    def map_key(self, key: str) -> str | None:
        for regex, dst in self.rules:
            match = regex.match(key)
            if match:
                out = dst
                for group in match.groups():
                    out = out.replace("{}", group, 1)
                return out
        return None

    def is_ignored(self, key: str) -> bool:
        return any(regex.match(key) for regex in self.ignore)

    def convert(self, state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Map every key and check the result against ``model``; raise :class:`UnmappedKeysError` on any mismatch.

        Every official key must be mapped or ignored, every model parameter/persistent buffer must be filled, and
        shapes must agree. The error names all offending keys at once.
        """
        expected = model.state_dict()
        converted, unmapped = {}, []
        for key, tensor in state_dict.items():
            target = self.map_key(key)
            if target is None:
                if not self.is_ignored(key):
                    unmapped.append(key)
                continue
            converted[target] = tensor
        unexpected = sorted(k for k in converted if k not in expected)
        missing = sorted(k for k in expected if k not in converted)
        mismatched = sorted(
            f"{k}: checkpoint {tuple(converted[k].shape)} vs model {tuple(expected[k].shape)}"
            for k in converted
            if k in expected and converted[k].shape != expected[k].shape
        )
        problems = []
        if unmapped:
            problems.append(f"official keys nobody maps: {unmapped}")
        if unexpected:
            problems.append(f"mapped keys the model does not have: {unexpected}")
        if missing:
            problems.append(f"model keys the checkpoint does not fill: {missing}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if problems:
            raise UnmappedKeysError(
                "checkpoint does not match the model architecture:\n  " + "\n  ".join(problems)
            )
        return converted
