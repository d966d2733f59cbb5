"""conversion/convert_maskfeat.py and convert_mavil.py beyond the fixture round trip of tests/test_conversion.py:
presets against the official shapes, architectures read from the checkpoint (SlowFast's stored cfg, MAViL's keys),
encoder-only MAViL files like the released one, fine-tuning from converted folders, clear errors."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import hf_maskedav  # noqa: F401
from hf_maskedav import MaskFeatConfig, MAViLForAudioVisualClassification, MAViLModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.cli import convert, render_model_card
from hf_maskedav.conversion.maskfeat import config_from_slowfast_cfg, task_from_kwargs

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HF_MASKEDAV_FIXTURES", REPO.parent / "shared" / "fixtures" / "official"))


def _spec(name: str):
    path = REPO / "conversion" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPEC


MASKFEAT, MAVIL = _spec("convert_maskfeat"), _spec("convert_mavil")


def _fixture(name: str) -> Path:
    folder = FIXTURES / name
    if not (folder / "checkpoint.pth").is_file():
        pytest.skip(f"{name} fixture not available")
    return folder


# ---------------------------------------------------------------------------------------------------------------------
# MaskFeat

PRESET_SHAPES = {
    "maskfeat-vit-base-in1k-pretrained": "vit-base-in1k",
    "maskfeat-vit-large-in1k-pretrained": "vit-large-in1k",
    "maskfeat-mvitv2-small-16x4-k400-pretrained": "mvitv2-small-16x4-pretrain",
    "maskfeat-mvitv2-large-16x4-k400-pretrained": "mvitv2-large-16x4-pretrain",
}
ARCHITECTURE_FIELDS = (
    "backbone", "image_size", "num_frames", "num_channels", "patch_kernel_size", "patch_stride", "patch_padding",
    "hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "qkv_bias", "use_absolute_position_embeddings",
    "separate_position_embeddings", "dim_mul", "head_mul", "pool_q_stride", "pool_kv_stride_adaptive", "pool_kernel_size",
    "residual_pooling", "rel_pos_spatial", "rel_pos_temporal", "image_mean", "image_std",
)


def test_maskfeat_presets_are_the_official_shapes():
    """The presets' SlowFast configs give the shapes checked against the official classes (docs/maskfeat.md)."""
    assert sorted(MASKFEAT.presets) == sorted(PRESET_SHAPES)
    for name, shape in PRESET_SHAPES.items():
        preset = MASKFEAT.presets[name]
        ours = config_from_slowfast_cfg(preset.official_kwargs)
        official = MaskFeatConfig.from_preset(shape)
        for field in ARCHITECTURE_FIELDS:
            assert getattr(ours, field) == getattr(official, field), (name, field)
        assert ours.pretrain_layer == ours.num_hidden_layers - 1 and ours.mask_ratio == 0.4
        assert task_from_kwargs(preset.official_kwargs) == preset.task
        assert preset.url.startswith("https://dl.fbaipublicfiles.com/pyslowfast/masked_models/")
        assert preset.license == "apache-2.0" and preset.results
    video = config_from_slowfast_cfg(MASKFEAT.presets["maskfeat-mvitv2-small-16x4-k400-pretrained"].official_kwargs)
    assert video.prediction_grid == (8, 14, 14) and video.mask_grid == (8, 7, 7) and video.hog_target_size == 108


def test_maskfeat_architecture_read_from_the_checkpoints_stored_cfg(tmp_path):
    folder = _fixture("maskfeat_mvit_video_tiny")
    out = convert(MASKFEAT, ["--checkpoint", str(folder / "checkpoint.pth"), "--verify", "--reference", str(folder),
                             "--output_dir", str(tmp_path / "out")])
    record = json.loads((out / "conversion.json").read_text())
    assert record["task"] == "video-pretraining" and record["verification"]["status"] == "passed"

    # a .pyth without its cfg: a clear error saying how to describe the architecture
    checkpoint = load_official_checkpoint(folder / "checkpoint.pth")
    torch.save({"model_state": checkpoint["model_state"]}, tmp_path / "no_cfg.pyth")
    with pytest.raises(ValueError, match="no SlowFast config.*--preset"):
        convert(MASKFEAT, ["--checkpoint", str(tmp_path / "no_cfg.pyth"), "--output_dir", str(tmp_path / "o2")])


def test_maskfeat_preset_refuses_a_checkpoint_of_another_architecture(tmp_path):
    folder = _fixture("maskfeat_vit_image_tiny")
    mismatch = r"(?s)shape mismatches: .*embeddings\.projection\.weight: checkpoint \(32, 3, 16, 16\) vs model \(768"
    with pytest.raises(KeyError, match=mismatch):
        convert(MASKFEAT, ["--preset", "maskfeat-vit-base-in1k-pretrained", "--checkpoint", str(folder / "checkpoint.pth"),
                           "--output_dir", str(tmp_path / "o")])


def test_maskfeat_pretrained_video_folder_fine_tunes_with_the_official_pooling(tmp_path):
    """The model card's recipe: a classifier from a converted pre-training folder, last stage pooled as in fine-tuning."""
    from transformers import AutoModelForPreTraining, AutoModelForVideoClassification

    folder = _fixture("maskfeat_mvit_video_tiny")
    out = convert(MASKFEAT, ["--official_kwargs", str(folder / "fixture.json"), "--output_dir", str(tmp_path / "out")])
    pretraining = AutoModelForPreTraining.from_pretrained(out)
    strides = [list(s) for s in pretraining.config.pool_q_stride]
    strides[-1] = [strides[-1][0], 1, 2, 2]  # 4x4 -> 2x2 in the last stage, as the official FT yaml does
    classifier = AutoModelForVideoClassification.from_pretrained(out, num_labels=3, pool_q_stride=strides).eval()
    assert classifier.config.layer_grids()[-1] == (2, 2, 2) != pretraining.config.prediction_grid
    ours, theirs = classifier.maskfeat.state_dict(), pretraining.maskfeat.state_dict()
    assert set(ours) == set(theirs) - {"embeddings.mask_token"}
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], msg=key)
    frames = torch.randn(1, *[pretraining.config.num_frames, 3, pretraining.config.image_size, pretraining.config.image_size])
    assert classifier(frames).logits.shape == (1, 3)


def test_maskfeat_preset_cards_parse():
    for preset in MASKFEAT.presets.values():
        card = render_model_card(MASKFEAT, preset, preset.task, {"status": "unverified", "reason": "no outputs"},
                                 preset.url, f"org/{preset.name}")
        parsed = ModelCard(str(card))
        assert parsed.data.license == "apache-2.0" and parsed.data.pipeline_tag == MASKFEAT.pipeline_tag[preset.task]
        assert [r.metric_value for r in parsed.data.eval_results] == [r["metric_value"] for r in preset.results]
        assert "fine-tuning" in str(card) and "unverified" in str(card)


# ---------------------------------------------------------------------------------------------------------------------
# MAViL

def _encoder_only_checkpoint(tmp_path: Path) -> Path:
    """The av-superb fixture without its head: the layout of the released MAViL-Base file."""
    folder = _fixture("mavil_avsuperb_tiny")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=("model",))
    encoder = {k: v for k, v in state_dict.items() if not k.startswith(("fc_norm_av.", "head_av."))}
    assert len(encoder) < len(state_dict)
    path = tmp_path / "mavil_encoder.pth"
    torch.save({"model": encoder}, path)
    return path


def test_mavil_encoder_file_converts_to_the_encoder_and_fine_tunes(tmp_path):
    from transformers import AutoModel

    folder = _fixture("mavil_avsuperb_tiny")
    fixture = json.loads((folder / "fixture.json").read_text())
    kwargs = {"num_heads": 4, "n_frm": 4, "audio_size": [256, 32], "video_size": [4, 32, 32]}
    out = convert(MAVIL, ["--checkpoint", str(_encoder_only_checkpoint(tmp_path)), "--official_kwargs", json.dumps(kwargs),
                          "--verify", "--reference", str(folder), "--output_dir", str(tmp_path / "out")])
    record = json.loads((out / "conversion.json").read_text())
    assert record["task"] == "encoder" and record["verification"]["status"] == "passed"
    assert {"audio_hidden_states", "video_hidden_states", "fusion_hidden_states", "fusion_feats[:-1]"} <= set(
        record["verification"]["outputs"]
    )
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "feature-extraction"

    model = AutoModel.from_pretrained(out)
    assert type(model) is MAViLModel and model.config.position_tables == "stored"
    for name, ours, ref, atol, rtol in MAVIL.verify_fixture(model, folder, fixture):
        torch.testing.assert_close(ours, ref, atol=atol, rtol=rtol, msg=name)

    # the card's fine-tuning recipe: a new A+V head on the converted encoder
    classifier = MAViLForAudioVisualClassification.from_pretrained(out, num_labels=3, classifier_heads=["audio_visual"])
    torch.testing.assert_close(classifier.mavil.fusion_layers[0].mlp.fc1.weight, model.fusion_layers[0].mlp.fc1.weight)
    torch.testing.assert_close(
        classifier.mavil.audio_embeddings.position_embeddings.table, model.audio_embeddings.position_embeddings.table
    )


def test_mavil_task_comes_from_the_keys_and_a_preset_of_another_task_is_refused(tmp_path):
    folder = _fixture("mavil_avsuperb_tiny")
    with pytest.raises(ValueError, match="'classification' checkpoint .* preset 'mavil-base-avsuperb-pretrained'"):
        convert(MAVIL, ["--preset", "mavil-base-avsuperb-pretrained", "--checkpoint", str(folder / "checkpoint.pth"),
                        "--output_dir", str(tmp_path / "o")])
    # the released architecture (ViT-B, 12 + 12 blocks) does not fit the tiny file: the error names keys and shapes
    with pytest.raises(ValueError, match=r"cls_token: checkpoint \(1, 1, 32\) vs embed_dim=768.*blocks\.\{i\}\.\*: "
                                         r"checkpoint 2 blocks vs depth=12"):
        convert(MAVIL, ["--preset", "mavil-base-avsuperb-pretrained", "--checkpoint", str(_encoder_only_checkpoint(tmp_path)),
                        "--output_dir", str(tmp_path / "o2")])


def test_mavil_preset_card_says_unofficial_and_what_we_chose():
    preset = MAVIL.presets["mavil-base-avsuperb-pretrained"]
    assert "160pJQDQGlNwIb5xWlSc73A713I4uXCtg" in preset.url and preset.task == "encoder"
    card = render_model_card(MAVIL, preset, preset.task, {"status": "unverified", "reason": "no outputs"}, preset.url,
                             "org/mavil-base")
    parsed = ModelCard(str(card))
    assert parsed.data.license == "cc-by-nc-4.0" and parsed.data.pipeline_tag == "feature-extraction"
    assert len(parsed.data.eval_results) == len(preset.results) == 9
    text = str(card)
    for phrase in ("Not an official Meta release", "roger-tseng/av-superb", "Chosen by us", "AudioSet statistics",
                   "per-clip", "Licence", "do not re-host"):
        assert phrase in text, phrase
