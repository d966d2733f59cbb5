"""VideoMAE fixtures (MCG-NJU/VideoMAE): pretraining (masked-token predictions, targets, loss) and fine-tuning."""

from __future__ import annotations

from pathlib import Path

import torch

from hf_maskedav import MaskedAVVideoMAEForPreTraining, MaskedAVVideoMAEForVideoClassification, MaskedAVVideoMAEModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.videomae import config_from_official_kwargs, load_official_into
from hf_maskedav.layers import gather_tokens

from . import compare, load_io


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "MCG-NJU/VideoMAE"


def run(folder: Path, fixture: dict):
    kind = fixture.get("file", "")
    if kind.startswith("modeling_pretrain.py"):
        return _run_pretraining(folder, fixture)
    if kind.startswith("modeling_finetune.py"):
        return _run_finetuning(folder, fixture)
    raise NotImplementedError(f"unknown VideoMAE fixture file {kind!r}")


def _official_state_dict(folder: Path, fixture: dict):
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    return unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))


def _pixel_values(io) -> torch.Tensor:
    return io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]


def _run_pretraining(folder: Path, fixture: dict):
    io = load_io(folder)
    config = config_from_official_kwargs(fixture["constructor_kwargs"])
    model = load_official_into(MaskedAVVideoMAEForPreTraining(config), _official_state_dict(folder, fixture)).eval()
    pixel_values = _pixel_values(io)
    mask = io["bool_masked_pos"]
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=mask)
        ids_masked = torch.argsort(mask.long() * mask.shape[1] + torch.arange(mask.shape[1]), dim=1)[:, -int(mask[0].sum()) :]
        ours = {
            "logits": out.logits,
            "loss": out.loss.reshape(1),
            "encoder_output": out.last_hidden_state,
            "labels": gather_tokens(model.reconstruction_target(pixel_values, normalize=True), ids_masked),
            "labels_no_norm": gather_tokens(model.reconstruction_target(pixel_values, normalize=False), ids_masked),
            "encoder_pos_embed": model.videomae.embeddings.position_embeddings.table,
            "decoder_pos_embed": model.decoder.position_embeddings.table,
        }
    comparisons = [compare(name, ours[name], io[name], fixture) for name in ours if name in io]
    if "encoder_output" in io:  # the same checkpoint converted into the bare encoder (decoder dropped on purpose)
        encoder = load_official_into(MaskedAVVideoMAEModel(config), _official_state_dict(folder, fixture)).eval()
        with torch.no_grad():
            hidden = encoder(pixel_values, bool_masked_pos=mask).last_hidden_state
        comparisons.append(compare("encoder_output[bare encoder]", hidden, io["encoder_output"], fixture))
    return comparisons


def _run_finetuning(folder: Path, fixture: dict):
    io = load_io(folder)
    config = config_from_official_kwargs(fixture["constructor_kwargs"])
    model = load_official_into(MaskedAVVideoMAEForVideoClassification(config), _official_state_dict(folder, fixture))
    model.eval()
    pixel_values = _pixel_values(io)
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True)
        hidden = model.videomae(pixel_values).last_hidden_state  # no final norm under mean pooling
        ours = {
            "logits": out.logits,
            "last_block_output": out.hidden_states[-1],
            "pooled_normed": model.fc_norm(hidden.mean(dim=1)) if model.fc_norm is not None else hidden[:, 0],
            "pos_embed": model.videomae.embeddings.position_embeddings.table,
        }
    return [compare(name, ours[name], io[name], fixture) for name in ours if name in io]
