"""MAE-ST fixtures (facebookresearch/mae_st): pretraining (mask, ids, latent, prediction, target, loss) and
fine-tuning (logits, last block output, pooled-then-normed features)."""

from __future__ import annotations

from pathlib import Path

import torch

from hf_maskedav import MAESTForPreTraining, MAESTForVideoClassification, MAESTModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.mae_st import config_from_official_kwargs, load_official_into

from . import call_arguments, compare, load_io


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


def _pixel_values(io) -> torch.Tensor:
    return io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]


def _run_pretraining(folder: Path, fixture: dict):
    io = load_io(folder)
    config = config_from_official_kwargs(fixture["constructor_kwargs"])
    model = load_official_into(MAESTForPreTraining(config), _official_state_dict(folder, fixture)).eval()
    ratio = call_arguments(fixture).get("mask_ratio")
    pixel_values = _pixel_values(io)
    with torch.no_grad():
        out = model(pixel_values, noise=io["noise"], mask_ratio=ratio)
        encoded = model.mae_st(pixel_values, noise=io["noise"], mask_ratio=ratio)
        ours = {
            "loss": out.loss.reshape(1),
            "pred": out.logits,
            "mask": out.mask,
            "ids_restore": out.ids_restore,
            "ids_keep": encoded.ids_keep,
            "latent": out.last_hidden_state[:, 1:],
            "encoder_output_with_cls": out.last_hidden_state,
            "target": model.reconstruction_target(pixel_values),
            "target_frame_indices": model.target_frame_indices(pixel_values.shape[1]),
        }
    comparisons = [compare(name, ours[name], io[name], fixture) for name in ours if name in io]
    if "encoder_output_with_cls" in io:  # the same checkpoint converted into the bare encoder (decoder dropped)
        encoder = load_official_into(MAESTModel(config), _official_state_dict(folder, fixture)).eval()
        with torch.no_grad():
            hidden = encoder(pixel_values, noise=io["noise"], mask_ratio=ratio).last_hidden_state
        comparisons.append(compare("encoder_output_with_cls[bare encoder]", hidden, io["encoder_output_with_cls"], fixture))
    return comparisons


def _run_finetuning(folder: Path, fixture: dict):
    io = load_io(folder)
    config = config_from_official_kwargs(fixture["constructor_kwargs"])
    model = load_official_into(MAESTForVideoClassification(config), _official_state_dict(folder, fixture)).eval()
    pixel_values = _pixel_values(io)
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True)
        encoded, _ = model.mae_st.encode(pixel_values)
        ours = {
            "logits": out.logits,
            "last_block_output": out.hidden_states[-1],
            "pooled_normed": model.mae_st.norm(encoded.last_hidden_state[:, 1:].mean(dim=1)),
        }
    return [compare(name, ours[name], io[name], fixture) for name in ours if name in io]
