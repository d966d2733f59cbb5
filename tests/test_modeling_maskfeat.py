"""MaskFeat: ViT (image and video) and MViTv2 backbones, HOG targets, masks, errors, processors and pipelines."""

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_maskedav import (
    MaskFeatConfig,
    MaskFeatForImageClassification,
    MaskFeatForPreTraining,
    MaskFeatForVideoClassification,
    MaskFeatImageProcessor,
    MaskFeatMaskGenerator,
    MaskFeatModel,
    MaskFeatVideoProcessor,
)
from hf_maskedav.conversion import UnmappedKeysError
from hf_maskedav.conversion.maskfeat import config_from_slowfast_cfg, convert_state_dict, load_pretrained_encoder
from hf_maskedav.layers import cube_masking
from hf_maskedav.layers.hog import HOGLayer, hog_token_targets
from hf_maskedav.models.maskfeat.modeling_mvit import mvit_layer_specs

from common import ModelTesterMixin

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official"
LABELS = dict(num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})


def vit_image_config(**overrides):
    fields = dict(image_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, **LABELS)
    fields.update(overrides)
    return MaskFeatConfig(**fields)


def vit_video_config(**overrides):
    fields = dict(
        image_size=32, num_frames=4, patch_kernel_size=[2, 16, 16], patch_stride=[2, 16, 16], patch_padding=[0, 0, 0],
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, separate_position_embeddings=True,
        mask_window_size=[2, 2, 2], image_mean=[0.45] * 3, image_std=[0.225] * 3, **LABELS,
    )
    fields.update(overrides)
    return MaskFeatConfig(**fields)


def mvit_config(**overrides):
    """MViTv2 in miniature: 3 blocks, width 8 -> 16 -> 32, heads 1 -> 2 -> 4, one query pooling (2x2)."""
    fields = dict(
        backbone="mvit", image_size=32, num_frames=4,
        patch_kernel_size=[3, 7, 7], patch_stride=[2, 4, 4], patch_padding=[1, 3, 3],
        hidden_size=8, num_hidden_layers=3, num_attention_heads=1,
        dim_mul=[[1, 2.0], [2, 2.0]], head_mul=[[1, 2.0], [2, 2.0]],
        pool_q_stride=[[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1]], pool_kv_stride_adaptive=[1, 4, 4],
        pool_kernel_size=[3, 3, 3], use_absolute_position_embeddings=False,
        rel_pos_spatial=True, rel_pos_temporal=True, residual_pooling=True,
        image_mean=[0.45] * 3, image_std=[0.225] * 3, **LABELS,
    )
    fields.update(overrides)
    return MaskFeatConfig(**fields)


def pixel_values(config, batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if config.is_video:
        return torch.randn(batch, config.num_frames, 3, config.image_size, config.image_size, generator=gen)
    return torch.randn(batch, 3, config.image_size, config.image_size, generator=gen)


class MaskFeatTestBase(ModelTesterMixin):
    def get_inputs(self, model_class):
        config = self.get_config()
        inputs = {"pixel_values": pixel_values(config)}
        if model_class is MaskFeatForPreTraining:
            inputs["bool_masked_pos"] = MaskFeatMaskGenerator(config).batch(2, random.Random(0))
        if model_class in (MaskFeatForImageClassification, MaskFeatForVideoClassification):
            inputs["labels"] = torch.tensor([0, 2])
        return inputs


class TestMaskFeatViTImage(MaskFeatTestBase):
    all_model_classes = (MaskFeatModel, MaskFeatForPreTraining, MaskFeatForImageClassification)

    def get_config(self):
        return vit_image_config()


class TestMaskFeatViTVideo(MaskFeatTestBase):
    all_model_classes = (MaskFeatForPreTraining, MaskFeatForVideoClassification)

    def get_config(self):
        return vit_video_config()


class TestMaskFeatMViT(MaskFeatTestBase):
    all_model_classes = (MaskFeatModel, MaskFeatForPreTraining, MaskFeatForVideoClassification)

    def get_config(self):
        return mvit_config()


# ---------------------------------------------------------------------------------------------------------------------
# HOG
# ---------------------------------------------------------------------------------------------------------------------
def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_hog_on_a_device_batch_equals_hog_per_sample(device):
    images = torch.randn(5, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    hog = HOGLayer().to(device)
    batched = hog(images.to(device)).cpu()
    assert batched.shape == (5, 3, 9, 4, 6)
    single = torch.cat([HOGLayer()(image[None]) for image in images])  # CPU, one image at a time
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    # and the video targets of the model: one batched call == per-clip calls
    model = MaskFeatForPreTraining(mvit_config()).to(device)
    clips = pixel_values(model.config, batch=3).to(device)
    batched_targets = model.hog_targets(clips).cpu()
    per_clip = torch.cat([model.hog_targets(clip[None]).cpu() for clip in clips])
    torch.testing.assert_close(batched_targets, per_clip, atol=1e-5, rtol=1e-5)


def test_hog_of_a_horizontal_ramp_is_one_bin():
    """I(y, x) = x: Sobel gx = I(x-1) - I(x+1) (x3 rows, weights 1-2-1) = -8, gy = 0 -> atan2(-8, 0) = -pi/2 ->
    floor(-4.5) = -5 -> bin -5 mod 9 = 4. Edge columns have zero gradient (reflect padding), so every cell holds
    only bin 4, which normalises to 1."""
    ramp = torch.arange(16.0).expand(16, 16)
    image = ramp.expand(1, 3, 16, 16).contiguous()
    out = HOGLayer()(image)
    expected = torch.zeros(1, 3, 9, 2, 2)
    expected[:, :, 4] = 1.0
    torch.testing.assert_close(out, expected)


def test_hog_token_target_layout():
    """Per token: index ((channel * bins + bin) * k + cell_row) * k + cell_col (official element order)."""
    hog_map = torch.arange(2 * 3 * 9 * 4 * 6, dtype=torch.float32).reshape(2, 3, 9, 4, 6)
    targets = hog_token_targets(hog_map, (2, 3))  # 2x2 cells per token
    assert targets.shape == (2, 6, 108)
    n, token, c, b, cy, cx = 1, 4, 2, 7, 1, 0
    ty, tx = divmod(token, 3)
    value = hog_map[n, c, b, ty * 2 + cy, tx * 2 + cx]
    assert targets[n, token, ((c * 9 + b) * 2 + cy) * 2 + cx] == value
    with pytest.raises(ValueError, match="cannot be split"):
        hog_token_targets(hog_map, (3, 3))


def test_hog_rejects_sizes_it_cannot_take():
    with pytest.raises(ValueError, match="divisible by the cell size"):
        HOGLayer()(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="batch, 3, height, width"):
        HOGLayer()(torch.randn(3, 32, 32))


# ---------------------------------------------------------------------------------------------------------------------
# Masking and the pre-training objective
# ---------------------------------------------------------------------------------------------------------------------
def test_mask_generators_follow_the_official_counts():
    image = MaskFeatMaskGenerator(vit_image_config(image_size=224))  # 14x14 grid, round(196 * 0.4) = 78
    assert image.grid == (14, 14) and image.num_masking_patches == 78 and image.min_num_patches == 15
    masks = image.batch(8, random.Random(0))
    counts = masks.flatten(1).sum(1)
    assert (counts <= 78).all() and (counts > 39).all()
    video = MaskFeatMaskGenerator(MaskFeatConfig.from_preset("mvitv2-small-16x4-pretrain"))
    assert video.grid == (8, 7, 7) and video.num_masking_patches == 157
    assert (video.min_num_patches, video.max_num_patches) == (9, 49)
    cubes = video.batch(4, random.Random(0))
    assert cubes.shape == (4, 8, 7, 7) and (cubes.flatten(1).sum(1) <= 157).all()
    assert not torch.equal(cubes[0], cubes[1])  # one draw per sample
    torch.testing.assert_close(video.batch(4, random.Random(0)), cubes)


def test_cube_masking_accepts_a_cube_up_to_the_remaining_count():
    """Official MaskingGenerator3D: a cube may add up to the count still missing, even beyond one frame's area."""
    counts = [int(cube_masking((8, 7, 7), 157, 9, 49, rng=random.Random(s)).sum()) for s in range(20)]
    assert max(counts) > 49 and all(c <= 157 for c in counts)


@pytest.mark.parametrize("make_config", [vit_image_config, vit_video_config, mvit_config])
def test_loss_is_the_mse_over_masked_tokens(make_config):
    config = make_config()
    model = MaskFeatForPreTraining(config).eval()
    x = pixel_values(config)
    with torch.no_grad():
        out = model(x, bool_masked_pos=MaskFeatMaskGenerator(config).batch(2, random.Random(3)))
    length = math.prod(config.prediction_grid)
    assert out.logits.shape == out.hog_targets.shape == (2, length, config.hog_target_size)
    assert out.mask.shape == (2, length) and out.mask.dtype == torch.bool
    expected = ((out.logits - out.hog_targets)[out.mask] ** 2).mean()
    torch.testing.assert_close(out.loss, expected)


def test_masked_patches_only_enter_as_the_mask_token():
    """Every token is encoded, but a masked patch's pixels are replaced by the mask token before the encoder."""
    config = vit_image_config()
    model = MaskFeatForPreTraining(config).eval()
    x = pixel_values(config)
    mask = torch.tensor([[True, False], [False, False]]).expand(2, 2, 2)
    changed = x.clone()
    changed[:, :, :16, :16] += 5.0  # the top-left (masked) patch only
    with torch.no_grad():
        a, b = model(x, bool_masked_pos=mask), model(changed, bool_masked_pos=mask)
    torch.testing.assert_close(a.logits, b.logits)  # the encoder never saw those pixels
    assert not torch.allclose(a.hog_targets[:, 0], b.hog_targets[:, 0])  # but the target did change
    assert a.last_hidden_state.shape == (2, 1 + 4, 32)  # cls + every token


def test_mask_forms_agree_and_mask_is_drawn_when_absent():
    config = mvit_config()
    model = MaskFeatForPreTraining(config).eval()
    x = pixel_values(config)
    grid = MaskFeatMaskGenerator(config).batch(2, random.Random(5))  # [2, 2, 2, 2] window
    pred_grid = torch.nn.functional.interpolate(grid.float(), size=config.prediction_grid[1:]).bool()
    patch_grid = torch.nn.functional.interpolate(grid.float(), size=config.patch_grid[1:]).bool()
    with torch.no_grad():
        reference = model(x, bool_masked_pos=grid)
        for form in (pred_grid, pred_grid.flatten(1), patch_grid.flatten(1)):
            torch.testing.assert_close(model(x, bool_masked_pos=form).loss, reference.loss)
        torch.manual_seed(7)
        drawn = model(x)
        torch.manual_seed(7)
        again = model(x)
    assert drawn.mask.any() and torch.equal(drawn.mask, again.mask)
    torch.testing.assert_close(drawn.loss, again.loss)


def test_pretraining_stops_at_pretrain_depth():
    config = mvit_config(pretrain_depth=1)
    model = MaskFeatForPreTraining(config)
    assert len(model.maskfeat.encoder.layers) == 2
    assert config.prediction_grid == (2, 4, 4) and config.hog_target_size == 27
    assert model.head.projection.in_features == 32


def test_base_model_rejects_a_mask_without_mask_token():
    config = vit_image_config()
    with pytest.raises(ValueError, match="no mask token"):
        MaskFeatModel(config)(pixel_values(config), bool_masked_pos=torch.ones(2, 2, 2, dtype=torch.bool))
    out = MaskFeatModel(config, use_mask_token=True)(pixel_values(config), bool_masked_pos=torch.ones(2, 4))
    assert out.last_hidden_state.shape == (2, 5, 32)


# ---------------------------------------------------------------------------------------------------------------------
# MViTv2 geometry
# ---------------------------------------------------------------------------------------------------------------------
def test_mvit_small_geometry_matches_the_official_model():
    config = MaskFeatConfig.from_preset("mvitv2-small-16x4")
    specs = mvit_layer_specs(config)
    assert [s.dim_out for s in specs][::3] == [192, 384, 384, 384, 384, 768]
    assert (specs[0].dim_in, specs[0].num_heads, specs[-1].dim_out, specs[-1].num_heads) == (96, 1, 768, 8)
    assert config.patch_grid == (8, 56, 56) and config.layer_grids()[-1] == (8, 7, 7)
    assert specs[0].kv_stride == (1, 8, 8) and specs[1].kv_stride == (1, 4, 4) and specs[3].kv_stride == (1, 2, 2)
    pretrain = MaskFeatConfig.from_preset("mvitv2-small-16x4-pretrain")
    assert pretrain.prediction_grid == (8, 14, 14) and pretrain.hog_target_size == 108
    assert pretrain.mask_grid == (8, 7, 7)
    vit = MaskFeatConfig.from_preset("vit-base-in1k")
    assert vit.prediction_grid == (1, 14, 14) and vit.hog_target_size == 108 and vit.mask_grid == (14, 14)


def test_mvit_attention_pools_queries_keys_and_values():
    model = MaskFeatModel(mvit_config())
    out = model(pixel_values(model.config), output_hidden_states=True, output_attentions=True)
    assert [h.shape[1] for h in out.hidden_states] == [1 + 128, 1 + 128, 1 + 32, 1 + 32]
    # block 0: 2x8x8 queries attend to keys pooled by (1, 4, 4) -> 2x2x2 (+ cls)
    assert out.attentions[0].shape == (2, 1, 1 + 128, 1 + 8)
    assert out.last_hidden_state.shape == (2, 33, 32)


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_config, shape, message",
    [
        (vit_image_config, (2, 3, 48, 48), "32x32 images"),
        (vit_image_config, (2, 1, 32, 32), "channels"),
        (vit_image_config, (2, 4, 3, 32, 32), "takes images"),
        (mvit_config, (2, 8, 3, 32, 32), "clips of 4 frames"),
        (mvit_config, (2, 3, 4, 32, 32), "permute"),
        (mvit_config, (2, 3, 32, 32), "takes video"),
    ],
)
def test_inputs_the_backbone_cannot_take_get_clear_errors(make_config, shape, message):
    config = make_config()
    with pytest.raises(ValueError, match=message):
        MaskFeatForPreTraining(config)(torch.randn(*shape))


@pytest.mark.parametrize(
    "make_config, overrides, message",
    [
        (vit_image_config, dict(image_size=40), "multiple of 16"),
        (vit_image_config, dict(hidden_size=30), "divisible"),
        (vit_image_config, dict(rel_pos_spatial=True), "MViTv2 options"),
        (vit_image_config, dict(num_frames=4), "num_frames=1"),
        (mvit_config, dict(image_size=20), "query stride"),
        (mvit_config, dict(patch_kernel_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], num_frames=1), "video"),
        (mvit_config, dict(pool_q_stride=[[5, 1, 2, 2]]), "pool_q_stride entries"),
        (vit_video_config, dict(mask_ratio=1.0), "mask_ratio"),
    ],
)
def test_configs_the_model_cannot_be_built_with(make_config, overrides, message):
    with pytest.raises(Exception, match=message):
        make_config(**overrides)


def test_pretraining_config_errors():
    with pytest.raises(ValueError, match="HOG cells"):
        MaskFeatForPreTraining(vit_image_config(hog_cell_size=6))
    with pytest.raises(ValueError, match="time steps"):
        MaskFeatForPreTraining(mvit_config(mask_window_size=[4, 2, 2]))
    with pytest.raises(ValueError, match="too small"):
        MaskFeatForPreTraining(vit_video_config(mask_window_size=None))  # default window (2, 1, 1) on a 2x2 grid


def test_bad_masks_get_clear_errors():
    config = mvit_config()
    model = MaskFeatForPreTraining(config)
    x = pixel_values(config)
    with pytest.raises(ValueError, match="masks no token"):
        model(x, bool_masked_pos=torch.zeros(2, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="flat bool_masked_pos"):
        model(x, bool_masked_pos=torch.ones(2, 31, dtype=torch.bool))
    with pytest.raises(ValueError, match="time steps"):
        model(x, bool_masked_pos=torch.ones(2, 3, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="samples"):
        model(x, bool_masked_pos=torch.ones(3, 2, 2, 2, dtype=torch.bool))


def test_classifier_kind_must_match_the_config():
    with pytest.raises(ValueError, match="MaskFeatForVideoClassification"):
        MaskFeatForImageClassification(mvit_config())
    with pytest.raises(ValueError, match="MaskFeatForImageClassification"):
        MaskFeatForVideoClassification(vit_image_config())


def test_cls_pooling_uses_the_normed_cls_token():
    config = vit_image_config(use_mean_pooling=False)
    model = MaskFeatForImageClassification(config).eval()
    x = pixel_values(config)
    with torch.no_grad():
        hidden = model.maskfeat(x).last_hidden_state
        torch.testing.assert_close(model(x).logits, model.classifier(model.norm(hidden)[:, 0]))


# ---------------------------------------------------------------------------------------------------------------------
# Conversion (official key layout)
# ---------------------------------------------------------------------------------------------------------------------
def _official_checkpoint(name):
    path = FIXTURES / name / "checkpoint.pth"
    if not path.is_file():
        pytest.skip(f"official fixture {name} not available (set up ../shared/fixtures)")
    from hf_maskedav.conversion import load_official_checkpoint

    return load_official_checkpoint(path)


def test_conversion_is_strict_and_loads_pretraining_into_a_classifier():
    checkpoint = _official_checkpoint("maskfeat_mvit_video_tiny")
    state_dict = checkpoint["model_state"]
    config = config_from_slowfast_cfg(checkpoint["cfg"])
    model = MaskFeatForPreTraining(config)
    with pytest.raises(UnmappedKeysError, match="blocks.0.attn.surprise"):
        convert_state_dict({**state_dict, "blocks.0.attn.surprise": torch.zeros(1)}, model)
    with pytest.raises(UnmappedKeysError, match="does not fill"):
        convert_state_dict({k: v for k, v in state_dict.items() if k != "mask_token"}, model)
    broken = dict(state_dict)
    broken["hogs.0.weight_x"] = -broken["hogs.0.weight_x"]
    with pytest.raises(ValueError, match="Sobel"):
        convert_state_dict(broken, model)
    classifier = MaskFeatForVideoClassification(config_from_slowfast_cfg(checkpoint["cfg"], for_classification=True))
    load_pretrained_encoder(classifier, state_dict)
    torch.testing.assert_close(classifier.maskfeat.embeddings.cls_token, state_dict["cls_token"])


def test_unsupported_slowfast_options_are_named():
    checkpoint = _official_checkpoint("maskfeat_vit_image_tiny")
    import yaml

    cfg = yaml.safe_load(checkpoint["cfg"])
    cfg["MVIT"]["SEPARATE_QKV"] = True
    with pytest.raises(NotImplementedError, match="SEPARATE_QKV"):
        config_from_slowfast_cfg(cfg)


# ---------------------------------------------------------------------------------------------------------------------
# Processors, Auto classes and pipelines
# ---------------------------------------------------------------------------------------------------------------------
def _frames(count, height=40, width=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_processors_use_the_official_statistics():
    image = MaskFeatImageProcessor()
    assert list(image.image_mean) == [0.485, 0.456, 0.406] and image.crop_size["height"] == 224
    video = MaskFeatVideoProcessor()
    assert list(video.image_mean) == [0.45] * 3 and list(video.image_std) == [0.225] * 3
    assert (video.num_frames, video.frame_sampling_rate, video.size["shortest_edge"]) == (16, 4, 256)
    out = MaskFeatVideoProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}, num_frames=4)(
        _frames(20), return_tensors="pt"
    )
    assert out["pixel_values"].shape == (1, 4, 3, 32, 32)


def test_auto_classes_and_pipelines(tmp_path):
    from PIL import Image
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModel,
        AutoModelForImageClassification,
        AutoModelForPreTraining,
        AutoModelForVideoClassification,
        AutoVideoProcessor,
        pipeline,
    )

    video_dir, image_dir = tmp_path / "video", tmp_path / "image"
    MaskFeatForVideoClassification(mvit_config()).save_pretrained(video_dir)
    MaskFeatVideoProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}, num_frames=4,
                           frame_sampling_rate=2).save_pretrained(video_dir)
    MaskFeatForImageClassification(vit_image_config()).save_pretrained(image_dir)
    MaskFeatImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}).save_pretrained(image_dir)

    assert isinstance(AutoConfig.from_pretrained(video_dir), MaskFeatConfig)
    assert isinstance(AutoModel.from_pretrained(video_dir), MaskFeatModel)
    assert isinstance(AutoModelForPreTraining.from_pretrained(video_dir), MaskFeatForPreTraining)
    assert isinstance(AutoModelForVideoClassification.from_pretrained(video_dir), MaskFeatForVideoClassification)
    assert isinstance(AutoModelForImageClassification.from_pretrained(image_dir), MaskFeatForImageClassification)
    assert isinstance(AutoVideoProcessor.from_pretrained(video_dir), MaskFeatVideoProcessor)
    assert isinstance(AutoImageProcessor.from_pretrained(image_dir), MaskFeatImageProcessor)

    video_scores = pipeline("video-classification", model=str(video_dir))(np.stack(_frames(10)), top_k=3)
    assert sorted(s["label"] for s in video_scores) == ["a", "b", "c"]
    assert abs(sum(s["score"] for s in video_scores) - 1) < 1e-4
    image = Image.fromarray(_frames(1)[0])
    image_scores = pipeline("image-classification", model=str(image_dir))(image, top_k=3)
    assert sorted(s["label"] for s in image_scores) == ["a", "b", "c"]
