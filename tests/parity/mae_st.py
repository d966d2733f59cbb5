"""MAE-ST fixtures (facebookresearch/mae_st): pretraining (mask, ids, latent, prediction, target, loss) and
fine-tuning (logits, last block output, pooled-then-normed features).

Model fixtures go through ``hf_maskedav.conversion.mae_st`` exactly as ``conversion/convert_mae_st.py --verify`` does.
"""

from __future__ import annotations

from pathlib import Path

from hf_maskedav import MAESTForPreTraining, MAESTForVideoClassification, MAESTModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import mae_st as conversion

from . import Comparison, load_io, tolerance


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "facebookresearch/mae_st"


def run(folder: Path, fixture: dict):
    kind = fixture.get("file", "")
    if kind.startswith("models_mae.py"):
        return _run_pretraining(folder, fixture)
    if kind.startswith("models_vit.py"):
        return _run_finetuning(folder, fixture)
    raise NotImplementedError(f"unknown MAE-ST fixture file {kind!r}")


def _official_state_dict(folder: Path, fixture: dict):
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    return unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))


def _rows(model, folder: Path, fixture: dict, rename: str = ""):
    """The conversion's own check (``conversion/convert_mae_st.py --verify``) as comparisons."""
    atol, rtol = tolerance(fixture)
    rows = conversion.verify_fixture(model, folder, fixture)
    return [Comparison(name + rename, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, *_ in rows]


def _run_pretraining(folder: Path, fixture: dict):
    config = conversion.config_from_official_kwargs(fixture["constructor_kwargs"])
    model = conversion.load_official_into(MAESTForPreTraining(config), _official_state_dict(folder, fixture))
    comparisons = _rows(model, folder, fixture)
    if "encoder_output_with_cls" in load_io(folder):  # the same checkpoint converted into the bare encoder
        encoder = conversion.load_official_into(MAESTModel(config), _official_state_dict(folder, fixture))
        comparisons += _rows(encoder, folder, fixture, rename="[bare encoder]")
    return comparisons


def _run_finetuning(folder: Path, fixture: dict):
    config = conversion.config_from_official_kwargs(fixture["constructor_kwargs"])
    model = conversion.load_official_into(MAESTForVideoClassification(config), _official_state_dict(folder, fixture))
    return _rows(model, folder, fixture)
