"""VideoMAE fixtures (MCG-NJU/VideoMAE) and VideoMAE V2 fixtures (OpenGVLab/VideoMAEv2): pretraining (predictions,
targets, loss; V2 with dual masking and its seeded mask generators) and fine-tuning.

Model fixtures go through ``hf_maskedav.conversion.videomae`` / ``videomae_v2`` exactly as the conversion scripts'
``--verify`` does; the V2 adapter adds the seeded generators and the explicit-mask paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from hf_maskedav import MaskedAVVideoMAEForPreTraining, MaskedAVVideoMAEForVideoClassification, MaskedAVVideoMAEModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import videomae as conversion
from hf_maskedav.conversion import videomae_v2 as conversion_v2
from hf_maskedav.layers import videomae_v2_masks

from . import Comparison, compare, load_io, tolerance


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


def _rows(module, model, folder: Path, fixture: dict, rename: str = ""):
    """The conversion's own check (``conversion/convert_videomae*.py --verify``) as comparisons."""
    atol, rtol = tolerance(fixture)
    rows = module.verify_fixture(model, folder, fixture)
    return [Comparison(name + rename, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, *_ in rows]


def _bare_encoder_rows(config, folder: Path, fixture: dict):
    """The same checkpoint converted into the bare encoder (decoder dropped on purpose)."""
    if "encoder_output" not in load_io(folder):
        return []
    encoder = conversion.load_official_into(MaskedAVVideoMAEModel(config), _official_state_dict(folder, fixture))
    return _rows(conversion, encoder, folder, fixture, rename="[bare encoder]")


def _run_pretraining(folder: Path, fixture: dict):
    config = conversion.config_from_official_kwargs(fixture["constructor_kwargs"])
    model = conversion.load_official_into(MaskedAVVideoMAEForPreTraining(config), _official_state_dict(folder, fixture))
    return _rows(conversion, model, folder, fixture) + _bare_encoder_rows(config, folder, fixture)


def _generator_ratio(fixture: dict, which: str) -> float:
    """``mask_ratio=`` of the encoder/decoder generator named in ``randomness.mask_generators``."""
    text = fixture["randomness"]["mask_generators"][which]
    return float(re.search(r"mask_ratio\s*=\s*([0-9.]+)", text).group(1))


def _run_dual_masking(folder: Path, fixture: dict):
    """VideoMAE V2: the conversion's check, then the seeded mask generators and the explicit-mask paths."""
    io = load_io(folder)
    decoder_ratio = _generator_ratio(fixture, "decoder")
    config = conversion.config_from_official_kwargs(fixture["constructor_kwargs"], decoder_mask_ratio=decoder_ratio)
    model = conversion.load_official_into(MaskedAVVideoMAEForPreTraining(config), _official_state_dict(folder, fixture))
    comparisons = _rows(conversion_v2, model, folder, fixture)

    pixel_values = io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]
    mask, decode_mask = io["bool_masked_pos"], io["decode_masked_pos"]
    grid = model.videomae.embeddings.patch_embed.grid_size(*io["pixel_values"].shape[-3:])
    # the masks drawn again from the fixture's recipe (np.random.seed(s), then tube + running cell per sample)
    seed = int(re.search(r"np\.random\.seed\((\d+)\)", fixture["randomness"]["call_order"]).group(1))
    drawn_mask, drawn_decode = videomae_v2_masks(
        np.random.RandomState(seed), mask.shape[0], grid, _generator_ratio(fixture, "encoder"), decoder_ratio
    )
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=mask, decode_masked_pos=decode_mask)
        v1_explicit = model(pixel_values, bool_masked_pos=mask, decode_masked_pos=~mask)
    comparisons += [
        compare("bool_masked_pos[videomae_v2_masks]", drawn_mask, mask, fixture, exact=True),
        compare("decode_masked_pos[videomae_v2_masks]", drawn_decode, decode_mask, fixture, exact=True),
        compare("decoder_mask[output]", out.decoder_mask.bool(), decode_mask, fixture, exact=True),
        compare("logits_no_decoder_mask[decode_masked_pos=~mask]", v1_explicit.logits, io["logits_no_decoder_mask"], fixture),
        compare("loss_no_decoder_mask[decode_masked_pos=~mask]", v1_explicit.loss.reshape(1), io["loss_no_decoder_mask"], fixture),
    ]
    return comparisons + _bare_encoder_rows(config, folder, fixture)


def _run_finetuning(folder: Path, fixture: dict):
    config = conversion.config_from_official_kwargs(fixture["constructor_kwargs"])
    model = conversion.load_official_into(MaskedAVVideoMAEForVideoClassification(config), _official_state_dict(folder, fixture))
    return _rows(conversion, model, folder, fixture)
