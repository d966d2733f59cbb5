"""VideoMAE fixtures (MCG-NJU/VideoMAE) and VideoMAE V2 fixtures (OpenGVLab/VideoMAEv2): pretraining (predictions,
targets, loss; V2 with dual masking and its seeded mask generators) and fine-tuning."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from hf_maskedav import MaskedAVVideoMAEForPreTraining, MaskedAVVideoMAEForVideoClassification, MaskedAVVideoMAEModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.videomae import config_from_official_kwargs, load_official_into
from hf_maskedav.layers import gather_tokens, ids_from_bool_mask, masked_mse, running_cell_mask, videomae_v2_masks

from . import compare, load_io


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") in ("MCG-NJU/VideoMAE", "OpenGVLab/VideoMAEv2")


def run(folder: Path, fixture: dict):
    kind = fixture.get("file", "").rsplit("/", 1)[-1]  # V2 keeps the files under models/
    if kind.startswith("modeling_pretrain.py"):
        if "decode_masked_pos" in fixture.get("io_tensors", {}):
            return _run_dual_masking(folder, fixture)
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


def _generator_ratio(fixture: dict, which: str) -> float:
    """``mask_ratio=`` of the encoder/decoder generator named in ``randomness.mask_generators``."""
    text = fixture["randomness"]["mask_generators"][which]
    return float(re.search(r"mask_ratio\s*=\s*([0-9.]+)", text).group(1))


def _run_dual_masking(folder: Path, fixture: dict):
    """VideoMAE V2: ``model(x, bool_masked_pos, decode_masked_pos)``, the engine's loss, and the seeded generators."""
    io = load_io(folder)
    decoder_ratio = _generator_ratio(fixture, "decoder")
    config = config_from_official_kwargs(fixture["constructor_kwargs"], decoder_mask_ratio=decoder_ratio)
    model = load_official_into(MaskedAVVideoMAEForPreTraining(config), _official_state_dict(folder, fixture)).eval()
    pixel_values = _pixel_values(io)
    mask, decode_mask = io["bool_masked_pos"], io["decode_masked_pos"]
    batch, length = mask.shape
    grid = model.videomae.embeddings.patch_embed.grid_size(*io["pixel_values"].shape[-3:])

    # the masks drawn again from the fixture's recipe (np.random.seed(s), then tube + running cell per sample)
    seed = int(re.search(r"np\.random\.seed\((\d+)\)", fixture["randomness"]["call_order"]).group(1))
    drawn_mask, drawn_decode = videomae_v2_masks(
        np.random.RandomState(seed), batch, grid, _generator_ratio(fixture, "encoder"), decoder_ratio
    )
    ids_decoded = ids_from_bool_mask(decode_mask).ids_keep  # reconstructed tokens, ascending
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=mask, decode_masked_pos=decode_mask)
        labels_no_norm = gather_tokens(model.reconstruction_target(pixel_values, normalize=False), ids_decoded)
        counted = torch.gather(mask, 1, ids_decoded)
        # decoder masking off (the official argparse default): V1 decoding, drawn-mask path and explicit-mask path
        v1 = model(pixel_values, bool_masked_pos=mask, decoder_mask_ratio=0.0)
        v1_explicit = model(pixel_values, bool_masked_pos=mask, decode_masked_pos=~mask)
        ids_masked = ids_from_bool_mask(~mask).ids_keep
        ours = {
            "logits": out.logits,
            "loss": out.loss.reshape(1),
            "encoder_output": out.last_hidden_state,
            "labels": gather_tokens(model.reconstruction_target(pixel_values, normalize=True), ids_decoded),
            "labels_no_norm": labels_no_norm,
            "cal_loss_mask": counted,
            "loss_no_norm_target": masked_mse(out.logits, labels_no_norm, counted).reshape(1),
            "logits_no_decoder_mask": v1.logits,
            "labels_no_decoder_mask": gather_tokens(model.reconstruction_target(pixel_values), ids_masked),
            "loss_no_decoder_mask": v1.loss.reshape(1),
            "encoder_pos_embed": model.videomae.embeddings.position_embeddings.table,
            "decoder_pos_embed": model.decoder.position_embeddings.table,
            "running_cell_all_mask_maps": running_cell_mask(torch.arange(4), grid, decoder_ratio).reshape(4, grid[0], -1),
        }
    comparisons = [compare(name, ours[name], io[name], fixture) for name in ours if name in io]
    comparisons += [
        compare("bool_masked_pos[videomae_v2_masks]", drawn_mask, mask, fixture, exact=True),
        compare("decode_masked_pos[videomae_v2_masks]", drawn_decode, decode_mask, fixture, exact=True),
        compare("decoder_mask[output]", out.decoder_mask.bool(), decode_mask, fixture, exact=True),
        compare("logits_no_decoder_mask[decode_masked_pos=~mask]", v1_explicit.logits, io["logits_no_decoder_mask"], fixture),
        compare("loss_no_decoder_mask[decode_masked_pos=~mask]", v1_explicit.loss.reshape(1), io["loss_no_decoder_mask"], fixture),
    ]
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
