"""SlowFast fixtures: MaskFeat pre-training (``MaskMViT``, ViT image and MViTv2 video) and MViTv2 classifiers.

Everything is built from ``fixture.json``: the model config from ``cfg_yaml`` (the merged SlowFast config), the
checkpoint container key from ``checkpoint_container``, the call from the stored inputs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import torch
import yaml

from hf_maskedav import MaskFeatForImageClassification, MaskFeatForPreTraining, MaskFeatForVideoClassification
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.maskfeat import config_from_slowfast_cfg, load_official_into
from hf_maskedav.models.maskfeat.modeling_maskfeat import MaskFeatMaskGenerator, resize_mask

from . import compare, load_io


def _cfg(fixture: dict) -> dict:
    return yaml.safe_load(fixture.get("cfg_yaml", "")) or {}


def matches(fixture: dict) -> bool:
    if fixture.get("official_repo") != "facebookresearch/SlowFast" or "cfg_yaml" not in fixture:
        return False
    cfg = _cfg(fixture)
    # SlowFast's MaskMViT with MAE_ON is MAE-ST, not MaskFeat; other architectures are not MViT at all.
    return cfg.get("MODEL", {}).get("MODEL_NAME") in ("MaskMViT", "MViT") and not cfg.get("MASK", {}).get("MAE_ON")


def run(folder: Path, fixture: dict):
    cfg = _cfg(fixture)
    container = fixture.get("checkpoint_container", {}).get("key", "model_state")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))
    io = load_io(folder)
    if cfg.get("MASK", {}).get("ENABLE"):
        return _run_pretraining(fixture, cfg, state_dict, io)
    return _run_classifier(fixture, cfg, state_dict, io)


def _model_input(pixel_values: torch.Tensor, video: bool) -> torch.Tensor:
    # SlowFast feeds [N, C, T, H, W]; our models take transformers' [N, T, C, H, W].
    return pixel_values.permute(0, 2, 1, 3, 4) if video else pixel_values


def _run_pretraining(fixture, cfg, state_dict, io):
    config = config_from_slowfast_cfg(cfg)
    model = load_official_into(MaskFeatForPreTraining(config), state_dict).eval()
    pixel_values = _model_input(io["pixel_values"], config.is_video)
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=io["mask"])
        pixels = io["pixel_values"]
        if config.is_video:
            strided = pixels[:, :, :: config.patch_stride[0]]  # [N, C, T', H, W]
            hog_map = model.hog(strided.transpose(1, 2).flatten(0, 1))
            hog_map = hog_map.reshape(pixels.shape[0], strided.shape[2], *hog_map.shape[1:])
        else:
            hog_map = model.hog(pixels)
    mask_grid = io["mask"] if config.is_video else io["mask"][:, None]
    ours = {
        "pred": out.logits[out.mask],
        "target": out.hog_targets[out.mask],
        "loss": out.loss.reshape(1),
        "last_block_output": out.last_hidden_state,
        "pred_all_tokens": out.logits,
        "hog_target_all_tokens": out.hog_targets,
        "hog_map": hog_map,
        "bool_masked_pos": out.mask,
        "bool_masked_pos_embed": resize_mask(mask_grid, config.patch_grid).bool(),
    }
    comparisons = [compare(name, ours[name], io[name], fixture) for name in ours if name in io]

    # The loader's mask generator: the fixture states how python's `random` was seeded before drawing one mask per
    # sample; with that seed our generator must draw the same masks.
    seeding = re.search(r"random\.seed\(seed\s*\+\s*(\d+)\)", fixture.get("randomness", ""))
    if seeding and "seed" in fixture:
        rng = random.Random(int(fixture["seed"]) + int(seeding.group(1)))
        drawn = MaskFeatMaskGenerator(config).batch(io["mask"].shape[0], rng)
        comparisons.append(compare("mask_generator", drawn.to(io["mask"].dtype), io["mask"], fixture, exact=True))
    return comparisons


def _run_classifier(fixture, cfg, state_dict, io):
    config = config_from_slowfast_cfg(cfg)
    model_class = MaskFeatForVideoClassification if config.is_video else MaskFeatForImageClassification
    model = load_official_into(model_class(config), state_dict)
    pixel_values = _model_input(io["pixel_values"], config.is_video)
    activation = cfg.get("MODEL", {}).get("HEAD_ACT", "softmax")
    comparisons = []
    with torch.no_grad():
        model.train()  # the fixture's train-mode output (deterministic: no dropout or drop-path in these configs)
        train_logits = model(pixel_values).logits
        model.eval()
        logits = model(pixel_values).logits
        pooled = model.norm(model.maskfeat(pixel_values).last_hidden_state[:, 1:].mean(1))
    if "logits" in io:
        comparisons.append(compare("logits", train_logits, io["logits"], fixture))
    if "probs" in io:
        # the official head applies its activation in eval mode; ours returns logits
        probs = logits.softmax(dim=-1) if activation == "softmax" else logits.sigmoid() if activation == "sigmoid" else logits
        comparisons.append(compare("probs", probs, io["probs"], fixture))
    if "pooled_normed" in io and config.use_mean_pooling:
        comparisons.append(compare("pooled_normed", pooled, io["pooled_normed"], fixture))
    return comparisons
