"""Parity with the official research code, one test per fixture folder under ``$HF_MASKEDAV_FIXTURES``.

Each folder's ``fixture.json`` says which official class made it; the adapter of that family (``tests/parity/``)
builds our model from it, loads the official checkpoint and compares every output that has a counterpart.
Folders of families the package does not support yet are reported as skipped, by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from parity import find_adapter, load_fixture

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HF_MASKEDAV_FIXTURES", REPO.parent / "shared" / "fixtures" / "official"))


def _fixture_folders():
    if not FIXTURES.is_dir():
        return []
    return sorted(p for p in FIXTURES.iterdir() if (p / "fixture.json").is_file())


FOLDERS = _fixture_folders()


def test_fixtures_present():
    """Without fixtures nothing below runs: fail in CI (HF_MASKEDAV_REQUIRE_FIXTURES=1), skip elsewhere."""
    if not FOLDERS:
        message = f"no parity fixtures found under {FIXTURES} (set HF_MASKEDAV_FIXTURES)"
        if os.environ.get("HF_MASKEDAV_REQUIRE_FIXTURES"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_official_parity(folder: Path, record_property):
    fixture = load_fixture(folder)
    adapter = find_adapter(fixture)
    if adapter is None:
        pytest.skip(
            f"{folder.name}: family not supported yet ({fixture.get('official_repo')}, {fixture.get('class')})"
        )
    torch.manual_seed(0)
    comparisons = adapter.run(folder, fixture)
    assert comparisons, f"{folder.name}: the adapter compared nothing"
    failures = []
    for c in comparisons:
        if c.ours.shape != c.reference.shape:
            failures.append(f"{c.name}: shape {tuple(c.ours.shape)} vs official {tuple(c.reference.shape)}")
            continue
        if c.exact:
            ok = torch.equal(c.ours.to(c.reference.dtype), c.reference)
            error = float((c.ours.double() - c.reference.double()).abs().max()) if c.ours.numel() else 0.0
        else:
            ours, ref = c.ours.double(), c.reference.double()
            error = float((ours - ref).abs().max()) if ours.numel() else 0.0
            ok = torch.allclose(ours, ref, atol=c.atol, rtol=c.rtol)
        record_property(f"max_abs_error[{c.name}]", error)
        print(f"{folder.name} {c.name}: max abs error {error:.3e}")
        if not ok:
            failures.append(f"{c.name}: max abs error {error:.3e} (atol {c.atol}, rtol {c.rtol}, exact={c.exact})")
    assert not failures, f"{folder.name}: " + "; ".join(failures)
