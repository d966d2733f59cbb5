"""Presets at full size against the official architecture (issue #17, item 2 of the issue), without the official code.

``src/hf_maskedav/conversion/manifests/<family>/`` (package data: the model cards read it) holds, per distinct official architecture among the family's presets, the key ->
shape table of the official model built at full size by the official code with the preset's ``official_kwargs``
(``conversion/official_manifests.py``; facts, not code). Here each preset's config builds our model with its
parameters on the meta device, and the family's strict key table must account for every official key with the right
shape and fill every key of our model (:meth:`KeyTable.convert`). Families with manifests so far: VideoMAE (18
presets), CAV-MAE (12 presets), MAE-ST (the 6 mae_st releases, not the 3 PySlowFast ones), Audio-MAE (2 presets) and
VideoMAE V2 (9 presets), MAViL (1 preset) and MaskFeat (4 presets); AV-MAE is listed as not done.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

from common import load_script

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "src" / "hf_maskedav" / "conversion" / "manifests"
DONE = ("videomae", "cavmae", "mae_st", "audiomae", "videomae_v2", "mavil", "maskfeat", "avmae")
NOT_DONE = ()
# presets of a done family that have no manifest (none left)
SKIPPED = {}
# where the released files keep the weights, per task: VideoMAE's save_model writes {"model": ...}, its DeepSpeed
# fine-tuning {"module": ...}; CAV-MAE saves the bare state dict of nn.DataParallel (keys prefixed "module.")
# official keys a family's key table drops on purpose; any other official key must land in our model
IGNORABLE = {
    "videomae": None,  # nothing
    "videomae_v2": None,
    "mavil": None,
    # MaskFeat: the HOG target's fixed Sobel filters (buffers; our model builds them, their values are compared with
    # check_sobel_buffers when a real file is converted)
    "maskfeat": re.compile(r"^hogs\.\d+\.weight_[xy]$"),
    # CAV-MAE: the modality-specific norms of blocks that only ever run one branch (the official forward never uses
    # them), and the fixed sin-cos tables of pretraining models (our model rebuilds them; their values are compared
    # when a real file is converted, not here)
    "cavmae": re.compile(r"^((blocks_[av]|decoder_blocks)\.\d+\.norm[12]_[av]\.(weight|bias)|(decoder_)?pos_embed_[av])$"),
    # MAE-ST "encoder" presets: the released pretraining file's decoder (mae_st's: checked separately below;
    # PySlowFast MaskMViT's: decoder_embed, decoder_pos_embed, mask_token, pred_head)
    "mae_st": re.compile(r"^(decoder_|mask_token$|pred_head\.)"),
    # Audio-MAE: the fixed sin-cos tables our model rebuilds (their shapes are compared below, their values when a
    # real file is converted)
    "audiomae": re.compile(r"^(decoder_)?pos_embed$"),
    # AV-MAE: the bottleneck tokens mbt.MBT creates for a one-modality model, whose forward never reads them
    "avmae": re.compile(r"^bottleneck$"),
}
CONTAINERS = {
    "videomae": {"pretraining": "model", "classification": "module"},
    "cavmae": {"pretraining": "bare, keys prefixed module.", "classification": "bare, keys prefixed module."},
    "mae_st": {"encoder": "model"},
    "audiomae": {"pretraining": "model", "classification": "model"},
    "videomae_v2": {"pretraining": "model", "classification": "module"},
    "mavil": {"encoder": "model"},
    "maskfeat": {"image-pretraining": "model_state", "video-pretraining": "model_state"},
    "avmae": {"pretraining": "Flax msgpack train state, params", "classification": "Flax msgpack train state, params"},
}


def _cases():
    for family in DONE:
        index = json.loads((MANIFESTS / family / "index.json").read_text())
        for preset in sorted(index):
            yield pytest.param(family, preset, index[preset], id=preset)


@pytest.mark.parametrize("family", DONE)
def test_every_preset_of_the_family_has_a_manifest(family):
    presets = importlib.import_module(f"hf_maskedav.conversion.{family}").PRESETS
    index = json.loads((MANIFESTS / family / "index.json").read_text())
    skipped = SKIPPED.get(family)
    assert sorted(index) == sorted(p for p in presets if skipped is None or not skipped.search(p))
    assert {p.name for p in (MANIFESTS / family).glob("*.json")} == {f"{a}.json" for a in index.values()} | {"index.json"}


def test_families_without_manifests_are_the_listed_ones():
    assert sorted(p.name for p in MANIFESTS.iterdir() if p.is_dir()) == sorted(DONE)
    assert not set(DONE) & set(NOT_DONE)
    converters = sorted(p.stem[len("convert_"):] for p in (REPO / "conversion").glob("convert_*.py"))
    assert sorted(DONE + NOT_DONE) == converters  # every family is either done or listed as not done


@pytest.mark.parametrize("family,preset,architecture", list(_cases()))
def test_preset_matches_the_official_key_and_shape_table(family, preset, architecture):
    from accelerate import init_empty_weights

    conversion = importlib.import_module(f"hf_maskedav.conversion.{family}")
    spec = conversion.PRESETS[preset]
    manifest = json.loads((MANIFESTS / family / f"{architecture}.json").read_text())
    assert manifest["official_kwargs"] == dict(spec.official_kwargs)  # the manifest is of this preset's architecture
    assert manifest["task"] == spec.task
    # the container the official scripts save under, and that our loader opens
    expected = CONTAINERS[family][spec.task]
    if family == "mae_st" and "slowfast" in preset:  # PySlowFast's checkpoints: {"model_state": ...}
        expected = "model_state"
        assert manifest["official_config"].startswith("configs/masked_ssl/") and "_MAE_PT" in manifest["official_config"]
        assert manifest["preset_vs_official_config"] == []  # the preset's arguments are the yaml's
    assert manifest["container"] == expected
    if family == "mae_st":
        assert manifest["container"] in conversion.OFFICIAL_CONTAINERS
    if family in ("videomae", "videomae_v2"):
        assert manifest["container"] in conversion.OFFICIAL_CONTAINERS

    official = {key: torch.empty(shape, device="meta") for key, shape in manifest["state_dict"].items()}
    if family == "avmae":
        return _check_avmae(conversion, spec, manifest, official)
    with init_empty_weights(include_buffers=False):
        if family == "mavil":  # MAViL's layout is read from the checkpoint's keys; which sin-cos variant its stored
            # position tables are is read from their values (not an architecture question: zeros stand in here)
            layout = {k: torch.zeros(v.shape) if "pos_embed" in k else v for k, v in official.items()}
            model = conversion.build_model(spec.official_kwargs, spec.task, state_dict=layout)
        else:
            model = conversion.build_model(spec.official_kwargs, spec.task)
    table, official = _key_table(family, conversion, model, spec.task), _preprocess(family, conversion, official)
    converted = table.convert(_kept(family, official, model), model)  # raises naming every unmapped/missing/mis-shaped key
    assert converted.keys() == model.state_dict().keys()
    # official keys the table drops on purpose (CAV-MAE: norms the official forward never uses, fixed sin-cos tables
    # our model rebuilds; MAE-ST encoder presets: the decoder); everything else of the official model is in ours
    ignored = sorted(key for key in official if table.map_key(key) is None)
    pattern = IGNORABLE[family]
    assert all(pattern is not None and pattern.match(key) for key in ignored), ignored
    if family == "audiomae":
        tables = {"pos_embed": model.audiomae.embeddings.position_embeddings}
        if hasattr(model, "decoder"):
            tables["decoder_pos_embed"] = model.decoder.position_embeddings
        assert sorted(tables) == ignored
        for key, table_module in tables.items():
            assert tuple(table_module.build().shape) == tuple(official[key].shape), key
    ours = sum(v.numel() for v in model.state_dict().values())
    dropped = sum(official[key].numel() for key in ignored)
    assert ours == manifest["num_parameters"] - dropped, (ours, manifest["num_parameters"], dropped)

    extra = manifest.get("official_extra_arguments")
    if extra and family == "mae_st":  # MAE-ST: the whole released layout (encoder + decoder) against our pretraining model, nothing ignored
        with init_empty_weights(include_buffers=False):
            full = conversion.build_model({**spec.official_kwargs, **extra}, "pretraining")
        converted = conversion.convert_state_dict(
            {key: torch.empty(shape, device="meta") for key, shape in manifest["state_dict"].items()}, full)
        assert converted.keys() == full.state_dict().keys()
        assert sum(v.numel() for v in full.state_dict().values()) == manifest["num_parameters"]
    if family == "mae_st" and "slowfast" in preset:  # the MaskMViT decoder is not ours: refused, not mis-mapped
        assert conversion.is_slowfast_decoder(manifest["state_dict"])
        with init_empty_weights(include_buffers=False):
            full = conversion.build_model(spec.official_kwargs, "pretraining")
        with pytest.raises(NotImplementedError, match="MaskMViT"):
            conversion.convert_state_dict(official, full)


def _check_avmae(conversion, spec, manifest, official):
    """AV-MAE (Flax parameter trees): the architecture is read from the tree's shapes, as for a real checkpoint, and
    its strict accounting (every leaf used, every weight of ours filled, shapes equal) must pass; the preset's values
    the weights cannot tell must be the official config's."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = conversion.build_model(spec.official_kwargs, spec.task, state_dict=official)
    converted = conversion.convert_params(official, model)  # raises naming every unmapped/missing/mis-shaped key
    assert converted.keys() == model.state_dict().keys()
    config, kwargs, inputs = model.config, spec.official_kwargs, manifest["inputs"]
    scenic = conversion.SCENIC_KEYS
    assert sorted(scenic[m] for m in config.modalities) == sorted(inputs)  # the release's modalities
    if "spectrogram" in inputs:
        assert kwargs["max_length"] == inputs["spectrogram"][1] and config.num_mel_bins == inputs["spectrogram"][2]
    if "rgb" in inputs:
        assert kwargs["num_frames"] == inputs["rgb"][1] and config.image_size == inputs["rgb"][2]
    values = manifest["official_config_values"]
    if spec.task == "pretraining":
        for name, ratio in values["token_mask_probability_dict"].items():
            assert kwargs[{"spectrogram": "audio_mask_ratio", "rgb": "video_mask_ratio"}[name]] == ratio
    else:
        assert kwargs["bottleneck_fusion_layer"] == values["fusion_layer"]
        assert config.num_labels == values["num_classes"]
        if len(config.modalities) > 1:
            assert config.num_bottleneck_tokens == values["n_bottlenecks"]
    # the only leaf left out: the bottleneck of a one-modality MBT (IGNORABLE); parameter counts add up
    ignored = ["bottleneck"] if spec.task == "classification" and len(config.modalities) == 1 else []
    assert all(IGNORABLE["avmae"].match(key) for key in ignored)
    ours = sum(v.numel() for v in model.state_dict().values())
    assert ours == manifest["num_parameters"] - sum(official[key].numel() for key in ignored)


def _key_table(family, conversion, model, task):
    """The family's strict key table (the architecture part of its conversion: no tensor values are compared)."""
    if family == "cavmae":
        return conversion.key_table(model.config, task)
    if family == "mae_st":
        return conversion.key_table(model.config, encoder_only=task == "encoder")
    if family == "mavil":
        return conversion.key_table(model.config, "" if task == "encoder" else "mavil.")
    if family == "maskfeat":
        return conversion.key_table(model.config, "maskfeat.")
    if family == "videomae_v2":  # V2's conversion is V1's key table after stripping torch.compile's prefix
        return importlib.import_module("hf_maskedav.conversion.videomae").key_table(model.config)
    return conversion.key_table(model.config)


def _preprocess(family, conversion, official):
    """What the family's conversion does to the official keys before its table (MAE-ST: fuse separate q/k/v)."""
    return conversion.fuse_separate_qkv(official) if family == "mae_st" else official


def _kept(family, official, model):
    """The official keys the conversion hands to the table for ``model`` (MAE-ST encoder: the decoder is dropped)."""
    if family == "mae_st" and not hasattr(model, "decoder"):
        return {k: v for k, v in official.items() if not IGNORABLE["mae_st"].match(k)}
    return official

def _script_spec(family):
    path = Path(__file__).resolve().parents[1] / "conversion" / f"convert_{family}.py"
    return load_script(path, f"manifest_convert_{family}").SPEC


def test_model_card_says_what_is_and_is_not_verified():
    from hf_maskedav.conversion.cli import render_model_card

    unverified = {"status": "unverified", "reason": "no official outputs available"}
    spec = _script_spec("videomae")
    preset = spec.presets["videomae-base-k400-800ep-finetuned"]
    card = " ".join(str(render_model_card(spec, preset, preset.task, unverified, "file", "org/x")).split())
    assert "Architecture: **verified at full size against the official code.**" in card
    assert "`modeling_finetune.VisionTransformer` (MCG-NJU/VideoMAE @ `14ef8d8`)" in card
    assert "162 state-dict keys (86.5M" in card and "container `module`" in card
    assert "Not verified: the released file itself" in card and "**unverified**" in card
    card = str(render_model_card(spec, None, "classification", unverified, "file", "org/x"))
    assert "Architecture: not checked at full size against the official code." in card


def test_mae_st_model_cards_say_what_is_and_is_not_verified():
    from hf_maskedav.conversion.cli import render_model_card

    spec = _script_spec("mae_st")
    for name, verified in (("mae-st-large-k400-pretrained", True), ("mae-st-large-k400-slowfast-pretrained", False)):
        # verified: the mae_st release; False: the PySlowFast release (verified too, against MaskMViT)
        preset = spec.presets[name]
        card = " ".join(str(render_model_card(spec, preset, preset.task, {"status": "unverified"}, "f", "o/x")).split())
        assert "Architecture: **verified at full size against the official code.**" in card
        assert "Architecture: not checked" not in card
        if verified:
            assert "`mae_st.models_mae.MaskedAutoencoderViT` (facebookresearch/mae_st @ `c5dec1b`)" in card
            assert "467 state-dict keys (317.7M values, container `model`)" in card
        else:  # the PySlowFast release
            assert "`slowfast.models.masked.MaskMViT` (facebookresearch/SlowFast @ `287ec00`)" in card
            assert "`configs/masked_ssl/k400_VIT_L_16x4_MAE_PT.yaml`" in card
            assert "352 state-dict keys (318.4M values, container `model_state`)" in card


def test_maskfeat_presets_are_the_official_yaml():
    index = json.loads((MANIFESTS / "maskfeat" / "index.json").read_text())
    for architecture in set(index.values()):
        manifest = json.loads((MANIFESTS / "maskfeat" / f"{architecture}.json").read_text())
        # the official model was built from the official yaml, and the preset's sections agree with it
        assert manifest["official_config"].startswith("configs/masked_ssl/")
        assert manifest["preset_vs_official_config"] == []


CARD_FACTS = {  # family: (preset, what its card must say besides "verified at full size")
    "cavmae": ("cavmae-scale-plus-as2m-finetuned", [
        "`models.cav_mae.CAVMAEFT` (YuanGongND/cav-mae @ `68fe8c2`)", "saved bare, keys prefixed module.",
        "Not verified: the released file itself"]),
    "audiomae": ("audiomae-base-as2m-pretrained", [
        "`models_mae.MaskedAutoencoderViT` (facebookresearch/AudioMAE @ `bd60e29`",
        "430 state-dict keys (137.0M values, container `model`)"]),
    "videomae_v2": ("videomaev2-base-k710-distilled", [
        "`models.modeling_finetune.VisionTransformer` (OpenGVLab/VideoMAEv2 @ `29eab1e`)",
        "162 state-dict keys (86.8M values, container `module`)"]),
    "mavil": ("mavil-base-avsuperb-pretrained", [
        "`mavil.models_vitmm.VisionTransformerMM` (roger-tseng/av-superb @ `696e269`",
        "320 state-dict keys (186.7M values, container `model`)"]),
    "maskfeat": ("maskfeat-mvitv2-small-16x4-k400-pretrained", [
        "`slowfast.models.masked.MaskMViT` (facebookresearch/SlowFast @ `287ec00`)",
        "400 state-dict keys (36.3M values, container `model_state`)"]),
    "avmae": ("avmae-vit-large-as2m-selfsup-audiovisual-finetuned-audio", [
        "`scenic.projects.av_mae.mbt.MBT` (google-research/scenic @ `4a38d47`)", "`configs/audioset/finetune.py`",
        "391 parameters in its tree (303.1M values", "Not verified: the released file itself", "**unverified**"]),
}


@pytest.mark.parametrize("family", sorted(CARD_FACTS))
def test_family_model_card_says_what_is_and_is_not_verified(family):
    from hf_maskedav.conversion.cli import render_model_card

    spec = _script_spec(family)
    name, facts = CARD_FACTS[family]
    preset = spec.presets[name]
    card = " ".join(str(render_model_card(spec, preset, preset.task, {"status": "unverified"}, "f", "o/x")).split())
    assert "Architecture: **verified at full size against the official code.**" in card
    for fact in facts:
        assert fact in card, fact


def test_readme_counts_the_presets_checked_at_full_size():
    readme = " ".join((REPO / "README.md").read_text().split())
    checked = sum(len(json.loads((MANIFESTS / family / "index.json").read_text())) for family in DONE)
    total = sum(len(importlib.import_module(f"hf_maskedav.conversion.{family}").PRESETS) for family in DONE + NOT_DONE)
    assert f"{total} released checkpoints are presets" in readme
    assert (f"All {checked} of them are checked at full size" if checked == total else f"{checked} of them") in readme
