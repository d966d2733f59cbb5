"""MAE-ST: common model checks, masking, target frames, position interpolation, bad input, sizes, and the
official checkpoint layouts (mae_st separate q/k/v, SlowFast fused qkv, containers)."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from hf_maskedav import MAESTConfig, MAESTForPreTraining, MAESTForVideoClassification, MAESTModel
from hf_maskedav.conversion import UnmappedKeysError
from hf_maskedav.conversion.mae_st import (
    config_from_official_kwargs,
    convert_state_dict,
    load_official_checkpoint_file,
    load_official_into,
)

from common import ModelTesterMixin

# 4 frames of 16x16, tubelets 2x8x8 -> a 2x2x2 token grid (L = 8); 2 target frames (one per token)
TINY = dict(
    image_size=16, patch_size=8, num_frames=4, tubelet_size=2,
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2, decoder_intermediate_size=32,
    pred_t_dim=2, mask_ratio=0.5, num_labels=3,
)


def tiny_config(**overrides):
    return MAESTConfig(**{**TINY, **overrides})


def video(batch=2, frames=4, height=16, width=16, seed=0):
    return torch.randn(batch, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


class TestMAEST(ModelTesterMixin):
    all_model_classes = (MAESTModel, MAESTForPreTraining, MAESTForVideoClassification)

    def get_config(self):
        return tiny_config()

    def get_inputs(self, model_class):
        inputs = {"pixel_values": video()}
        if model_class is MAESTForPreTraining:
            inputs["noise"] = torch.rand(2, 8, generator=torch.Generator().manual_seed(1))
        if model_class is MAESTForVideoClassification:
            inputs["labels"] = torch.tensor([0, 2])
        return inputs


def test_pretraining_draws_the_mask_by_itself_and_noise_pins_it():
    model = MAESTForPreTraining(tiny_config()).eval()
    x = video()
    out = model(x)
    assert out.mask.sum(1).eq(8 - int(8 * (1 - 0.5))).all()
    assert out.logits.shape == (2, 8, 1 * 8 * 8 * 3) and out.last_hidden_state.shape == (2, 1 + 4, 32)
    noise = torch.rand(2, 8)
    a, b = model(x, noise=noise), model(x, noise=noise)
    torch.testing.assert_close(a.loss, b.loss)
    kept = torch.argsort(noise, dim=1)[:, :4]  # smallest noise kept
    assert (a.mask.gather(1, kept) == 0).all()
    # the same mask given as bool_masked_pos gives the same loss (kept tokens merely in another order)
    torch.testing.assert_close(model(x, bool_masked_pos=a.mask.bool()).loss, a.loss, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="noise must have shape"):
        model(x, noise=torch.rand(2, 4))
    with pytest.raises(ValueError, match="not both"):
        model(x, noise=noise, bool_masked_pos=a.mask.bool())


def test_target_uses_the_official_frames_and_per_token_normalisation():
    model = MAESTForPreTraining(tiny_config(num_frames=16, pred_t_dim=8, image_size=8)).eval()
    assert model.target_frame_indices(16).tolist() == [0, 2, 4, 6, 8, 10, 12, 15]  # linspace(...).long() truncates
    assert model.target_frame_indices(32).tolist() == torch.linspace(0, 31, 16).long().tolist()  # 32-frame clips
    x = video(frames=16, height=8, width=8)
    target = model.reconstruction_target(x, normalize=False)
    frames = x[:, [0, 2, 4, 6, 8, 10, 12, 15]]  # [N, 8, C, H, W], one predicted frame per token
    torch.testing.assert_close(target, frames.permute(0, 1, 3, 4, 2).reshape(2, 8, 192))
    normalised = model.reconstruction_target(x)
    expected = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    torch.testing.assert_close(normalised, expected)


def test_other_frame_counts_and_resolutions_interpolate_the_positions():
    config = tiny_config()
    classifier = MAESTForVideoClassification(config).eval()
    pretrain = MAESTForPreTraining(config).eval()
    for frames, height, width in ((8, 16, 16), (32, 16, 16), (4, 24, 32), (4, 8, 32)):
        x = video(frames=frames, height=height, width=width)
        assert classifier(x).logits.shape == (2, 3)
        out = pretrain(x)
        tokens = (frames // 2) * (height // 8) * (width // 8)
        assert out.logits.shape == (2, tokens, 192) and torch.isfinite(out.loss)
    positions = classifier.mae_st.embeddings.position_embeddings
    # a 1x4 grid has as many cells as the configured 2x2 one, but is still resized (not reinterpreted)
    resized = positions(num_frames=2, grid_hw=(1, 4))
    assert not torch.allclose(resized, positions(num_frames=2, grid_hw=(2, 2))[:, :4].repeat(1, 2, 1))


def test_bad_input_gets_clear_errors():
    model = MAESTForVideoClassification(tiny_config()).eval()
    with pytest.raises(ValueError, match="cannot be cut into tubelets of 2 frames"):
        model(video(frames=7))
    with pytest.raises(ValueError, match="Grey-scale frames must be expanded to RGB"):
        model(torch.randn(2, 4, 1, 16, 16))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        model(video(width=12))
    with pytest.raises(ValueError, match=r"\(batch, frames, channels, height, width\)"):
        model(torch.randn(2, 3, 4, 16))
    with pytest.raises(StrictDataclassClassValidationError, match="pred_t_dim"):
        tiny_config(pred_t_dim=3)


def test_classifier_pools_patch_tokens_then_applies_the_encoder_norm(tmp_path):
    pretrain = MAESTForPreTraining(tiny_config())
    with torch.no_grad():
        pretrain.mae_st.norm.weight.mul_(3.0)
    pretrain.save_pretrained(tmp_path)
    classifier = MAESTForVideoClassification.from_pretrained(tmp_path).eval()
    # as official fine-tuning: the pretrained encoder norm becomes the norm of the pooled vector
    torch.testing.assert_close(classifier.mae_st.norm.weight, pretrain.mae_st.norm.weight)
    x = video()
    encoded, _ = classifier.mae_st.encode(x)
    pooled = torch.nn.functional.layer_norm(
        encoded.last_hidden_state[:, 1:].mean(1), (32,), classifier.mae_st.norm.weight, classifier.mae_st.norm.bias, 1e-6
    )
    torch.testing.assert_close(classifier(x).logits, classifier.classifier(pooled))


@pytest.mark.parametrize(
    "size,fields,millions",
    [
        ("base", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072), 87),
        ("large", dict(), 304),
        ("huge", dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120), 632),
    ],
)
def test_released_sizes_are_expressible(size, fields, millions):
    with torch.device("meta"):
        model = MAESTModel(MAESTConfig(**fields))
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - millions) / millions < 0.02, f"{size}: {count:.1f}M parameters, SlowFast README {millions}M"


# --------------------------------------------------------------------------------------- official checkpoints


def _official_names(model: MAESTForPreTraining | MAESTForVideoClassification, fused: bool) -> dict:
    """Our weights under the official names: mae_st (separate q/k/v) or SlowFast (fused qkv, head.projection)."""
    ours = model.state_dict()
    out = {}
    rename = {
        "mae_st.embeddings.patch_embed.proj": "patch_embed.proj",
        "mae_st.embeddings.cls_token": "cls_token",
        "mae_st.embeddings.position_embeddings.spatial": "pos_embed_spatial",
        "mae_st.embeddings.position_embeddings.temporal": "pos_embed_temporal",
        "mae_st.embeddings.position_embeddings.cls": "pos_embed_class",
        "mae_st.norm": "norm",
        "classifier": "head.projection" if fused else "head",
        "mae_st.layers": "blocks",
        "decoder.layers": "decoder_blocks",
        "decoder.decoder_embed": "decoder_embed",
        "decoder.mask_token": "mask_token",
        "decoder.cls_token": "decoder_cls_token",
        "decoder.position_embeddings.spatial": "decoder_pos_embed_spatial",
        "decoder.position_embeddings.temporal": "decoder_pos_embed_temporal",
        "decoder.position_embeddings.cls": "decoder_pos_embed_class",
        "decoder.norm": "decoder_norm",
        "decoder.pred": "decoder_pred",
    }
    for key, tensor in ours.items():
        for src, dst in rename.items():
            if key.startswith(src):
                key = dst + key[len(src) :]
                break
        key = key.replace("attention.o_proj", "attn.proj")
        if "attention.qkv_proj" in key:
            if fused:
                out[key.replace("attention.qkv_proj", "attn.qkv")] = tensor
            else:
                for name, part in zip("qkv", tensor.chunk(3)):
                    out[key.replace("attention.qkv_proj", f"attn.{name}")] = part
            continue
        out[key] = tensor
    return out


def test_mae_st_and_slowfast_layouts_convert(tmp_path):
    torch.manual_seed(0)
    x = video()
    source = MAESTForVideoClassification(tiny_config()).eval()
    with torch.no_grad():
        source.classifier.weight.normal_()
        expected = source(x).logits
    for fused in (False, True):
        state = _official_names(source, fused)
        container = {"model_state": state, "cfg": "MODEL:\n  ARCH: maskmvit\n"} if fused else {"model": state}
        torch.save(container, tmp_path / "checkpoint.pth")
        converted = load_official_into(MAESTForVideoClassification(tiny_config()), load_official_checkpoint_file(tmp_path / "checkpoint.pth"))
        with torch.no_grad():
            torch.testing.assert_close(converted.eval()(x).logits, expected)


def test_pretraining_checkpoints_convert_strictly():
    source = MAESTForPreTraining(tiny_config()).eval()
    x, noise = video(), torch.rand(2, 8)
    state = _official_names(source, fused=False)
    model = load_official_into(MAESTForPreTraining(tiny_config()), state).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x, noise=noise).loss, source(x, noise=noise).loss)
    # a pretraining checkpoint into the encoder: decoder keys dropped on purpose, encoder identical
    encoder = load_official_into(MAESTModel(tiny_config()), state).eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(x).last_hidden_state, source.mae_st(x).last_hidden_state)
    # SlowFast MaskMViT pretraining: its decoder is a different design, so only the encoder converts
    slowfast = {k: v for k, v in _official_names(source, fused=True).items() if not k.startswith(("decoder", "mask_token"))}
    slowfast["pred_head.transforms.0.0.norm1.weight"] = torch.ones(16)
    slowfast["decoder_pos_embed"] = torch.zeros(1, 9, 16)
    with pytest.raises(NotImplementedError, match="MaskMViT"):
        convert_state_dict(slowfast, MAESTForPreTraining(tiny_config()))
    load_official_into(MAESTModel(tiny_config()), slowfast)
    # strict accounting: a missing and an unknown key are both reported
    broken = dict(state)
    broken.pop("blocks.1.mlp.fc1.bias")
    broken["blocks.0.attn.rel_pos_h"] = torch.zeros(3, 8)
    with pytest.raises(UnmappedKeysError) as error:
        convert_state_dict(broken, MAESTForPreTraining(tiny_config()))
    assert "rel_pos_h" in str(error.value) and "layers.1.mlp.fc1.bias" in str(error.value)


def test_config_from_official_kwargs():
    kwargs = dict(img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16, decoder_embed_dim=512,
                  decoder_depth=4, decoder_num_heads=16, num_frames=16, t_patch_size=2, pred_t_dim=8,
                  norm_pix_loss=True, sep_pos_embed=True, cls_embed=True)
    config = config_from_official_kwargs(kwargs)
    assert (config.frames_per_prediction, config.decoder_intermediate_size, config.norm_pix_loss) == (1, 2048, True)
    with pytest.raises(NotImplementedError, match="cls_embed"):
        config_from_official_kwargs({**kwargs, "cls_embed": False})
    finetune = config_from_official_kwargs(dict(num_frames=16, t_patch_size=2, embed_dim=768, depth=12, num_heads=12,
                                                 num_classes=400, dropout=0.3))
    assert (finetune.num_labels, finetune.classifier_dropout) == (400, 0.3)
