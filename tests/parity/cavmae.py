"""CAV-MAE fixtures made with the official YuanGongND/cav-mae ``CAVMAE`` (pretraining) and ``CAVMAEFT`` (fine-tuning).

Everything comes from ``fixture.json``: the architecture from ``constructor_kwargs``, the mask ratios and loss
weights from ``forward_call``; the checkpoint is the ``module.``-prefixed DataParallel state dict, converted through
``hf_maskedav.conversion.cavmae`` exactly as ``conversion/convert_cavmae.py --verify`` does.
"""

from __future__ import annotations

from pathlib import Path

from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import cavmae as conversion

from . import Comparison, tolerance


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "YuanGongND/cav-mae"


def run(folder: Path, fixture: dict):
    kwargs = fixture["constructor_kwargs"]
    model = conversion.build_model(kwargs, conversion.task_from_kwargs(kwargs), fixture=fixture)
    container = fixture.get("checkpoint_container", {}).get("key")
    containers = (container,) if container else ()
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=containers)
    conversion.load_official_into(model, state_dict)
    atol, rtol = tolerance(fixture)
    rows = conversion.verify_fixture(model, folder, fixture)
    return [Comparison(name, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, *_ in rows]
