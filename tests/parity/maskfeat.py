"""SlowFast fixtures: MaskFeat pre-training (``MaskMViT``, ViT image and MViTv2 video) and MViTv2 classifiers.

Model outputs go through ``hf_maskedav.conversion.maskfeat`` exactly as ``conversion/convert_maskfeat.py --verify``
does (config from the fixture's ``cfg_yaml``, strict conversion of ``checkpoint.pth`` from the container named in
``checkpoint_container``, the pinned inputs). The adapter adds the data loader's mask generator, which is not a model
output.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import yaml

from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import maskfeat as conversion
from hf_maskedav.models.maskfeat.modeling_maskfeat import MaskFeatMaskGenerator

from . import Comparison, compare, load_io


def matches(fixture: dict) -> bool:
    return conversion.is_maskfeat_fixture(fixture)


def run(folder: Path, fixture: dict):
    cfg = yaml.safe_load(fixture["cfg_yaml"])
    model = conversion.build_model(cfg, conversion.task_from_kwargs(cfg), fixture=fixture)
    container = fixture.get("checkpoint_container", {}).get("key", "model_state")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))
    conversion.load_official_into(model, state_dict)
    rows = conversion.verify_fixture(model, folder, fixture)
    comparisons = [
        Comparison(name, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, atol, rtol in rows
    ]

    # The loader's mask generator: the fixture states how python's `random` was seeded before drawing one mask per
    # sample; with that seed our generator must draw the same masks.
    seeding = re.search(r"random\.seed\(seed\s*\+\s*(\d+)\)", fixture.get("randomness", ""))
    if cfg.get("MASK", {}).get("ENABLE") and seeding and "seed" in fixture:
        io = load_io(folder)
        rng = random.Random(int(fixture["seed"]) + int(seeding.group(1)))
        drawn = MaskFeatMaskGenerator(model.config).batch(io["mask"].shape[0], rng)
        comparisons.append(compare("mask_generator", drawn.to(io["mask"].dtype), io["mask"], fixture, exact=True))
    return comparisons
