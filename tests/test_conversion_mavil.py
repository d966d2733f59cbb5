"""Conversion of av-superb MAViL checkpoints: layout read from the keys, strict accounting, stored position tables."""

import os
import re
from pathlib import Path

import pytest
import torch

from hf_maskedav import MAViLForAudioVisualClassification, MAViLModel
from hf_maskedav.conversion import UnmappedKeysError
from hf_maskedav.conversion.mavil import (
    config_from_checkpoint,
    convert_official_checkpoint,
    describe_checkpoint,
    load_official_into,
    position_table_report,
    stack_depth,
)
from hf_maskedav.layers import sincos_2d_table, sincos_3d_table

FIXTURES = Path(os.environ.get("HF_MASKEDAV_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official"))

OURS_TO_OFFICIAL = [
    (r"^audio_embeddings\.patch_embed\.", "patch_embed."),
    (r"^audio_embeddings\.cls_token$", "cls_token"),
    (r"^audio_embeddings\.position_embeddings\.table$", "pos_embed"),
    (r"^video_embeddings\.patch_embed\.", "patch_embed_v."),
    (r"^video_embeddings\.cls_token$", "cls_token_v"),
    (r"^video_embeddings\.position_embeddings\.table$", "pos_embed_v"),
    (r"^audio_layers\.", "blocks."),
    (r"^video_layers\.", "blocks_v."),
    (r"^fusion_layers\.", "blocks_av."),
    (r"\.attention\.qkv_proj\.", ".attn.qkv."),
    (r"\.attention\.o_proj\.", ".attn.proj."),
]


def official_layout(depths=(2, 2, 3), heads=True, dim=32, audio=(256, 32), patch=4, frames=4, side=32, tubelet=(2, 8)):
    """An av-superb-style state dict (random values), written from the key names of the authors' code."""
    torch.manual_seed(0)
    sd = {
        "cls_token": torch.randn(1, 1, dim),
        "cls_token_v": torch.randn(1, 1, dim),
        "patch_embed.proj.weight": torch.randn(dim, 1, patch, patch),
        "patch_embed.proj.bias": torch.randn(dim),
        "patch_embed_v.proj.weight": torch.randn(dim, 3, tubelet[0], tubelet[1], tubelet[1]),
        "patch_embed_v.proj.bias": torch.randn(dim),
    }
    grid_a = (audio[0] // patch, audio[1] // patch)
    grid_v = (frames // tubelet[0], side // tubelet[1], side // tubelet[1])
    sd["pos_embed"] = sincos_2d_table(dim, *grid_a, cls_token=True)[None]
    sd["pos_embed_v"] = sincos_3d_table(dim, *grid_v, cls_token=True)[None]
    for prefix, depth in zip(("blocks", "blocks_v", "blocks_av"), depths):
        for i in range(depth):
            for name, shape in (
                ("norm1", (dim,)), ("attn.qkv", (3 * dim, dim)), ("attn.proj", (dim, dim)), ("norm2", (dim,)),
                ("mlp.fc1", (4 * dim, dim)), ("mlp.fc2", (dim, 4 * dim)),
            ):
                sd[f"{prefix}.{i}.{name}.weight"] = torch.randn(shape)
                sd[f"{prefix}.{i}.{name}.bias"] = torch.randn(shape[0])
    if heads:
        sd["fc_norm_av.weight"], sd["fc_norm_av.bias"] = torch.randn(2 * dim), torch.randn(2 * dim)
        sd["head_av.weight"], sd["head_av.bias"] = torch.randn(7, 2 * dim), torch.randn(7)
    return sd


def convert(sd, **kwargs):
    config = config_from_checkpoint(sd, audio_size=(256, 32), video_size=(4, 32, 32), num_attention_heads=4, **kwargs)
    model_class = MAViLForAudioVisualClassification if config.num_labels == 7 else MAViLModel
    return load_official_into(model_class(config), sd)


def test_layout_is_read_from_the_keys():
    sd = official_layout(depths=(2, 3, 2), heads=True)
    info = describe_checkpoint(sd)
    assert (info["audio_num_hidden_layers"], info["video_num_hidden_layers"], info["fusion_num_hidden_layers"]) == (2, 3, 2)
    # a 2-fusion-layer file with a head: av-superb's "'blocks_av.2' in key" rule would call it pretrained
    assert info["classifier_heads"] == ["audio_visual"] and info["num_labels"] == 7
    model = convert(sd)
    assert isinstance(model, MAViLForAudioVisualClassification) and model.config.classifier_heads == ["audio_visual"]
    assert len(model.mavil.fusion_layers) == 2 and len(model.mavil.video_layers) == 3
    pretrained = official_layout(depths=(2, 2, 2), heads=False)
    assert describe_checkpoint(pretrained)["classifier_heads"] == []
    assert isinstance(convert(pretrained), MAViLModel)
    # a key named like the substring rule's target does not fool the depth count
    assert stack_depth({"decoder_blocks_av.2.norm1.weight": torch.zeros(1), "blocks_av.0.norm1.weight": torch.zeros(1)}, "blocks_av") == 1
    with pytest.raises(ValueError, match="not contiguous"):
        stack_depth({"blocks_av.0.x": torch.zeros(1), "blocks_av.2.x": torch.zeros(1)}, "blocks_av")


def test_strict_key_accounting():
    sd = official_layout()
    with pytest.raises(UnmappedKeysError, match="decoder_embed.weight"):
        convert({**sd, "decoder_embed.weight": torch.zeros(2, 2)})
    missing = {k: v for k, v in sd.items() if k != "blocks_v.1.mlp.fc2.bias"}
    with pytest.raises(UnmappedKeysError, match="video_layers.1.mlp.fc2.bias"):
        convert(missing)
    incomplete = {k: v for k, v in sd.items() if k != "head_av.bias"}
    with pytest.raises(ValueError, match="incomplete audio_visual head"):
        convert(incomplete)
    # an explicit ignore list is the only way to drop keys: heads dropped when converting into the encoder
    config = config_from_checkpoint(sd, audio_size=(256, 32), video_size=(4, 32, 32), num_attention_heads=4)
    encoder = load_official_into(MAViLModel(config), sd, ignore=["fc_norm_av.weight", "fc_norm_av.bias", "head_av.weight", "head_av.bias"])
    assert len(encoder.fusion_layers) == 3


def test_every_tensor_lands_where_expected():
    sd = official_layout()
    model = convert(sd)
    ours = model.mavil.state_dict()
    for key, value in ours.items():
        official = key
        for pattern, replacement in OURS_TO_OFFICIAL:
            official = re.sub(pattern, replacement, official)
        torch.testing.assert_close(value, sd[official].reshape(value.shape), msg=key)
    torch.testing.assert_close(model.audio_visual_classifier.weight, sd["head_av.weight"])
    torch.testing.assert_close(model.audio_visual_norm.bias, sd["fc_norm_av.bias"])


def test_position_tables_are_stored_values_and_reported(tmp_path):
    sd = official_layout()
    sd["pos_embed_v"] = sd["pos_embed_v"] + 0.25  # a checkpoint whose table is not our sin-cos
    model = convert(sd)
    assert model.config.position_tables == "stored" and model.config.audio_position_table == "time_major"
    torch.testing.assert_close(model.mavil.video_embeddings.position_embeddings.table, sd["pos_embed_v"])
    report = position_table_report(sd, model.config)
    assert report["pos_embed"]["time_major"] == 0.0 and report["pos_embed"]["audiomae"] > 0.5
    assert abs(report["pos_embed_v"]["sincos_3d"] - 0.25) < 1e-6
    model.save_pretrained(tmp_path)
    reloaded = MAViLForAudioVisualClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.mavil.video_embeddings.position_embeddings.table, sd["pos_embed_v"])
    with pytest.raises(ValueError, match="audio_size"):
        config_from_checkpoint(sd, audio_size=(128, 32), video_size=(4, 32, 32))


def test_official_fixture_checkpoint():
    folder = FIXTURES / "mavil_avsuperb_tiny"
    if not (folder / "checkpoint.pth").is_file():
        pytest.skip(f"fixture folder {folder} not available (set HF_MASKEDAV_FIXTURES)")
    model, report = convert_official_checkpoint(
        folder / "checkpoint.pth", audio_size=(256, 32), video_size=(4, 32, 32), num_attention_heads=4
    )
    assert report["layout"]["fusion_num_hidden_layers"] == 2 and report["layout"]["classifier_heads"] == ["audio_visual"]
    # the fixture's tables are av-superb's get_2d_sincos_pos_embed_flexible / get_3d_sincos_pos_embed values
    assert report["position_tables"]["pos_embed"]["time_major"] < 1e-6
    assert report["position_tables"]["pos_embed_v"]["sincos_3d"] < 1e-6
    assert isinstance(model, MAViLForAudioVisualClassification)
