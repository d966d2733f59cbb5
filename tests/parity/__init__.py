"""Parity adapters: one module per model family, each able to run the fixtures made by that family's official code.

An adapter module defines

* ``matches(fixture: dict) -> bool`` -- whether it handles a fixture (decided from ``fixture.json`` alone), and
* ``run(folder: Path, fixture: dict) -> list[Comparison]`` -- build our model from ``fixture.json``, load the
  official checkpoint through ``hf_maskedav.conversion``, feed the pinned inputs and return what to compare.

Nothing about a fixture may be hard-coded in an adapter: shapes, sizes and call arguments come from the fixture.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file



@dataclass
class Comparison:
    """One output to compare: ``ours`` against the official ``reference``."""

    name: str
    ours: torch.Tensor
    reference: torch.Tensor
    atol: float
    rtol: float
    exact: bool = False


def find_adapter(fixture: dict):
    for module in ADAPTER_MODULES:
        if module.matches(fixture):
            return module
    return None


def load_fixture(folder: Path) -> dict:
    return json.loads((folder / "fixture.json").read_text())


# The fixture's files, tolerance and call arguments are read here rather than through hf_maskedav.conversion.utils
# (fixture_io, forward_call_arguments), which do the same for `convert --verify`: the harness's tolerance must not
# depend on the code under test.
def load_io(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "io.safetensors"))


def tolerance(fixture: dict) -> tuple[float, float]:
    tol = fixture.get("suggested_tolerance", {})
    return float(tol.get("atol", 1e-5)), float(tol.get("rtol", 1e-4))


def call_arguments(fixture: dict) -> dict[str, float]:
    """Numeric keyword arguments of the official call, parsed from ``forward_call`` (e.g. ``mask_ratio=0.8``)."""
    found = re.findall(r"(\w+)\s*=\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)", fixture.get("forward_call", ""))
    return {name: float(value) for name, value in found}


def compare(name, ours, reference, fixture, exact=None) -> Comparison:
    """A :class:`Comparison` with the fixture's tolerance; integer and bool tensors compare exactly."""
    atol, rtol = tolerance(fixture)
    if exact is None:
        exact = not reference.is_floating_point()
    return Comparison(name, ours.detach().cpu(), reference.cpu(), atol, rtol, exact)


# Discovered last, so that adapters can import the helpers above.
ADAPTER_MODULES = [
    importlib.import_module(f"{__name__}.{info.name}")
    for info in pkgutil.iter_modules(__path__)
    if not info.name.startswith("_")
]
