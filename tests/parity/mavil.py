"""MAViL fixtures made with the MAViL authors' encoder code (roger-tseng/av-superb ``VisionTransformerMM``).

Everything goes through ``hf_maskedav.conversion.mavil`` exactly as ``conversion/convert_mavil.py --verify`` does:
layout and heads from the checkpoint keys, sizes from the recorded input shapes, the attention head count and frame
count from ``constructor_kwargs``, the fine-tuning mask probabilities from ``forward_call``.
"""

from __future__ import annotations

from pathlib import Path

from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import mavil as conversion

from . import Comparison


def matches(fixture: dict) -> bool:
    return conversion.is_mavil_fixture(fixture)


def run(folder: Path, fixture: dict):
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))
    task = conversion.task_from_checkpoint(state_dict)
    model = conversion.build_model(fixture["constructor_kwargs"], task, fixture=fixture, state_dict=state_dict)
    conversion.load_official_into(model, state_dict)
    rows = conversion.verify_fixture(model, folder, fixture)
    return [Comparison(name, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, atol, rtol in rows]
