"""VideoMAE: common model checks, masking, position-table interpolation, bad input, sizes, and equivalence with
transformers' own VideoMAE (loss and logits for the same bool_masked_pos)."""

import pytest
import torch
import transformers

from hf_maskedav import (
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEForPreTraining,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEModel,
)
from hf_maskedav.conversion import UnmappedKeysError
from hf_maskedav.conversion.videomae import (
    config_from_transformers,
    convert_transformers_state_dict,
    load_transformers_videomae,
)

from common import ModelTesterMixin

# 4 frames of 16x16, tubelets 2x8x8 -> a 2x2x2 token grid (L = 8, 4 spatial cells)
TINY = dict(
    image_size=16, patch_size=8, num_frames=4, tubelet_size=2,
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2, decoder_intermediate_size=32,
    mask_ratio=0.5, num_labels=3,
)


def tiny_config(**overrides):
    return MaskedAVVideoMAEConfig(**{**TINY, **overrides})


def video(batch=2, frames=4, height=16, width=16, seed=0):
    return torch.randn(batch, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


class TestVideoMAE(ModelTesterMixin):
    all_model_classes = (MaskedAVVideoMAEModel, MaskedAVVideoMAEForPreTraining, MaskedAVVideoMAEForVideoClassification)

    def get_config(self):
        return tiny_config()

    def get_inputs(self, model_class):
        inputs = {"pixel_values": video()}
        if model_class is MaskedAVVideoMAEForPreTraining:
            inputs["noise"] = torch.rand(2, 4, generator=torch.Generator().manual_seed(1))  # one per spatial cell
        if model_class is MaskedAVVideoMAEForVideoClassification:
            inputs["labels"] = torch.tensor([0, 2])
        return inputs


def test_pretraining_draws_a_tube_mask_by_itself():
    config = tiny_config(image_size=32, mask_ratio=0.75)  # 2 x 4 x 4 grid
    model = MaskedAVVideoMAEForPreTraining(config).eval()
    out = model(video(height=32, width=32))  # no mask, no noise: drawn inside
    mask = out.mask.view(2, 2, 16)
    assert torch.equal(mask[:, 0], mask[:, 1]), "tube masking: the same cells in every time slice"
    assert mask.sum(-1).eq(int(0.75 * 16)).all()
    assert out.logits.shape == (2, 2 * 12, 3 * 2 * 8 * 8)
    assert out.last_hidden_state.shape == (2, 2 * 4, 32)
    assert torch.isfinite(out.loss)


def test_noise_pins_the_mask_and_matches_bool_masked_pos():
    model = MaskedAVVideoMAEForPreTraining(tiny_config()).eval()
    x, noise = video(), torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.8, 0.3, 0.4, 0.7]])
    out = model(x, noise=noise)
    expected = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool).repeat(1, 2)  # largest noise masked
    assert torch.equal(out.mask.bool(), expected)
    torch.testing.assert_close(model(x, bool_masked_pos=expected).loss, out.loss)
    random = MaskedAVVideoMAEForPreTraining(tiny_config(mask_type="random")).eval()
    assert random(x).mask.sum(1).eq(4).all()
    with pytest.raises(ValueError, match="noise must have shape"):
        model(x, noise=torch.rand(2, 8))
    with pytest.raises(ValueError, match="not both"):
        model(x, noise=noise, bool_masked_pos=expected)
    with pytest.raises(ValueError, match="same number"):
        model(x, bool_masked_pos=torch.tensor([[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one"):
        model(x, bool_masked_pos=torch.zeros(2, 8, dtype=torch.bool))


def test_loss_is_mse_on_per_channel_normalised_masked_tubelets():
    model = MaskedAVVideoMAEForPreTraining(tiny_config()).eval()
    x = video()
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool).repeat(1, 2)
    out = model(x, bool_masked_pos=mask)
    # independent computation of the official target (engine_for_pretraining.py)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    frames = (x * std + mean).view(2, 2, 2, 3, 2, 8, 2, 8).permute(0, 1, 4, 6, 2, 5, 7, 3).reshape(2, 8, 128, 3)
    target = (frames - frames.mean(-2, keepdim=True)) / (frames.var(-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    labels = target.reshape(2, 8, 384)[mask].reshape(2, 4, 384)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits, labels))


@pytest.mark.parametrize("mode", ["regenerate", "trilinear"])
def test_other_frame_counts_and_resolutions_follow_the_position_table(mode):
    config = tiny_config(position_interpolation=mode)
    classifier = MaskedAVVideoMAEForVideoClassification(config).eval()
    pretrain = MaskedAVVideoMAEForPreTraining(config).eval()
    table = classifier.videomae.embeddings.position_embeddings
    for frames, height, width in ((8, 16, 16), (4, 24, 32), (8, 32, 16)):
        x = video(frames=frames, height=height, width=width)
        assert classifier(x).logits.shape == (2, 3)
        grid = (frames // 2, height // 8, width // 8)
        out = pretrain(x)
        assert out.mask.shape == (2, grid[0] * grid[1] * grid[2])
        assert table.for_grid(*grid).shape == (1, grid[0] * grid[1] * grid[2], 32)
    if mode == "regenerate":  # official fine-tuning code: the 1-D table for the new token count
        assert torch.equal(table.for_grid(4, 2, 2)[:, :8], table.table)
    else:  # resized over (t, h, w): the corners of a doubled time axis keep the end values
        assert table.for_grid(4, 2, 2).shape == (1, 16, 32)
        assert not torch.equal(table.for_grid(4, 2, 2)[:, :8], table.table)


def test_bad_input_gets_clear_errors():
    model = MaskedAVVideoMAEForVideoClassification(tiny_config()).eval()
    with pytest.raises(ValueError, match="cannot be cut into tubelets of 2 frames"):
        model(video(frames=5))
    with pytest.raises(ValueError, match="cannot be cut into tubelets"):
        model(video(frames=1))
    with pytest.raises(ValueError, match="Grey-scale frames must be expanded to RGB"):
        model(torch.randn(2, 4, 1, 16, 16))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        model(video(height=20))
    with pytest.raises(ValueError, match=r"\(batch, frames, channels, height, width\)"):
        model(torch.randn(4, 3, 16, 16))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(2, 4, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="bool_masked_pos must have shape"):
        MaskedAVVideoMAEModel(tiny_config())(video(), bool_masked_pos=torch.zeros(2, 5, dtype=torch.bool))


def test_encoder_sees_only_visible_tokens_and_classifier_pools_all_tokens():
    config = tiny_config()
    encoder = MaskedAVVideoMAEModel(config).eval()
    mask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool).repeat(1, 2)
    assert encoder(video(), bool_masked_pos=mask).last_hidden_state.shape == (2, 4, 32)
    assert encoder(video()).last_hidden_state.shape == (2, 8, 32)
    classifier = MaskedAVVideoMAEForVideoClassification(config)
    assert classifier.videomae.norm is None and classifier.fc_norm is not None  # official mean pooling
    cls_pooling = MaskedAVVideoMAEForVideoClassification(tiny_config(use_mean_pooling=False))
    assert cls_pooling.videomae.norm is not None and cls_pooling.fc_norm is None


def test_pretrained_encoder_loads_into_the_classifier(tmp_path):
    pretrain = MaskedAVVideoMAEForPreTraining(tiny_config())
    pretrain.save_pretrained(tmp_path)
    classifier = MaskedAVVideoMAEForVideoClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(
        classifier.videomae.layers[1].mlp.fc2.weight, pretrain.videomae.layers[1].mlp.fc2.weight
    )
    assert classifier.classifier.weight.abs().max() < 0.01  # fresh head, scaled by head_init_scale


@pytest.mark.parametrize(
    "size,fields,millions",
    [
        ("small", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536), 22),
        ("base", dict(), 87),
        ("large", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096), 305),
        ("huge", dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120), 633),
        ("v2-giant", dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=16, intermediate_size=6144, patch_size=14), 1013),
    ],
)
def test_released_sizes_are_expressible(size, fields, millions):
    with torch.device("meta"):
        model = MaskedAVVideoMAEModel(MaskedAVVideoMAEConfig(**fields))
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - millions) / millions < 0.02, f"{size}: {count:.1f}M parameters, paper/model zoo {millions}M"


# ------------------------------------------------------------------------------------- transformers' VideoMAE


def _hf_config(**overrides):
    fields = dict(
        image_size=16, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2,
        decoder_intermediate_size=32, num_labels=3,
    )
    fields.update(overrides)
    return transformers.VideoMAEConfig(**fields)


def _perturbed(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():  # non-trivial biases and LayerNorm affines
            param.add_(torch.randn_like(param) * 0.05)
    return model.eval()


MASK = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool).repeat(1, 2)


@pytest.mark.parametrize("use_mean_pooling", [False, True], ids=["hub-pretrain-config", "mean-pooling-config"])
@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_transformers_pretraining_checkpoint_gives_same_loss_and_logits(tmp_path, use_mean_pooling, norm_pix_loss):
    hf = _perturbed(transformers.VideoMAEForPreTraining(_hf_config(use_mean_pooling=use_mean_pooling, norm_pix_loss=norm_pix_loss)))
    x = video()
    with torch.no_grad():
        expected = hf(x, bool_masked_pos=MASK)
        ours = load_transformers_videomae(hf)  # in-memory names (query.bias / value.bias)
        out = ours(x, bool_masked_pos=MASK)
    assert isinstance(ours, MaskedAVVideoMAEForPreTraining)
    assert ours.config.layer_norm_eps == 1e-12 and ours.config.head_layer_norm_eps == 1e-5
    assert (ours.videomae.norm is None) == use_mean_pooling
    torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.loss, expected.loss, atol=1e-6, rtol=1e-5)
    hf.save_pretrained(tmp_path)  # on-disk names: q_bias / v_bias, as the Hub's MCG-NJU/videomae-* files
    with torch.no_grad():
        reloaded = load_transformers_videomae(tmp_path)(x, bool_masked_pos=MASK)
    torch.testing.assert_close(reloaded.logits, expected.logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("use_mean_pooling", [True, False])
def test_transformers_classifier_gives_same_logits(tmp_path, use_mean_pooling):
    hf = _perturbed(transformers.VideoMAEForVideoClassification(_hf_config(use_mean_pooling=use_mean_pooling)))
    x, labels = video(), torch.tensor([1, 2])
    with torch.no_grad():
        expected = hf(x, labels=labels)
        hf.save_pretrained(tmp_path)
        ours = load_transformers_videomae(tmp_path)
        out = ours(x, labels=labels)
    assert isinstance(ours, MaskedAVVideoMAEForVideoClassification)
    torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.loss, expected.loss, atol=1e-6, rtol=1e-5)
    # the converted model saves and reloads in our own format
    ours.save_pretrained(tmp_path / "ours")
    again = MaskedAVVideoMAEForVideoClassification.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x).logits, out.logits)


def test_transformers_conversion_is_strict():
    hf = transformers.VideoMAEForVideoClassification(_hf_config())
    ours = MaskedAVVideoMAEForVideoClassification(config_from_transformers(hf.config))
    state = dict(hf.state_dict())
    state.pop("videomae.encoder.layer.1.output.dense.bias")
    state["videomae.encoder.layer.0.surprise.weight"] = torch.zeros(1)
    with pytest.raises(UnmappedKeysError) as error:
        convert_transformers_state_dict(state, ours)
    assert "surprise" in str(error.value) and "layers.1.mlp.fc2.bias" in str(error.value)


def test_bare_encoders_convert_from_every_layout(tmp_path):
    x = video()
    hf = _perturbed(transformers.VideoMAEModel(_hf_config(use_mean_pooling=False)))
    with torch.no_grad():
        expected = hf(x, bool_masked_pos=MASK).last_hidden_state
        ours = load_transformers_videomae(hf)
        assert isinstance(ours, MaskedAVVideoMAEModel)
        torch.testing.assert_close(ours(x, bool_masked_pos=MASK).last_hidden_state, expected, atol=1e-5, rtol=1e-4)
        # the encoder of a transformers pretraining checkpoint (decoder dropped on purpose)
        pretrain = _perturbed(transformers.VideoMAEForPreTraining(_hf_config(use_mean_pooling=False)))
        encoder = load_transformers_videomae(pretrain, model_class=MaskedAVVideoMAEModel)
        torch.testing.assert_close(
            encoder(x).last_hidden_state, pretrain.videomae(x).last_hidden_state, atol=1e-5, rtol=1e-4
        )


def test_config_checks_that_the_processor_normalises_with_its_pixel_statistics():
    from hf_maskedav.conversion.videomae import build_processor
    from hf_maskedav.models.videomae import MaskedAVVideoMAEVideoProcessor

    config = MaskedAVVideoMAEConfig()
    config.check_video_processor(MaskedAVVideoMAEVideoProcessor())  # both ImageNet
    config.check_video_processor(build_processor(config, {}))
    with pytest.raises(ValueError, match=r"normalises frames with mean \[0.45, 0.45, 0.45\].*config.pixel_mean"):
        config.check_video_processor(MaskedAVVideoMAEVideoProcessor(image_mean=[0.45] * 3, image_std=[0.225] * 3))
    with pytest.raises(ValueError, match="image_mean=config.pixel_mean"):
        config.check_video_processor(MaskedAVVideoMAEVideoProcessor(do_normalize=False))
    plain = MaskedAVVideoMAEConfig(pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3)
    plain.check_video_processor(MaskedAVVideoMAEVideoProcessor(do_normalize=False))  # [0, 1] pixels
    assert list(build_processor(plain, {}).image_mean) == [0.0] * 3  # the processor is built from the config
