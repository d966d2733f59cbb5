"""AV-MAE's paper variants under Scenic's option names (``encoder_strategy``, ``decoder_strategy``, ``use_inpainting``,
``use_modality_tokens``): what each one lets reach what, which weights exist, and that the defaults are the released
layout. Each test compares outputs when one input changes, so a variant wired to the wrong path fails."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from hf_maskedav import AVMAEConfig, AVMAEForPreTraining, AVMAEModel
from hf_maskedav.layers import masked_mse

import test_avmae
from test_avmae import conv2d, conv3d, dense, norm, scenic_block, tiny_config, tiny_inputs
from test_modeling_mavil import _decreased, _train  # the few-steps training check MAViL's tests use


def _noise(seed=1):
    gen = torch.Generator().manual_seed(seed)
    return dict(audio_noise=torch.rand(2, 8, generator=gen), video_noise=torch.rand(2, 8, generator=gen))


def _other_video(inputs):
    return {**inputs, "pixel_values": inputs["pixel_values"] + 1.0}


def _other_audio(inputs):
    return {**inputs, "input_values": inputs["input_values"] + 1.0}


def _build(cls, **overrides):
    torch.manual_seed(0)
    return cls(tiny_config(**overrides)).eval()


def _encode(model, inputs):
    with torch.no_grad():
        return model(**inputs, **_noise(), audio_mask_ratio=0.5, video_mask_ratio=0.5)


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_defaults_are_the_released_layout():
    config = AVMAEConfig()
    assert (config.encoder_strategy, config.decoder_strategy) == ("separate_encoders_and_concat", "same_decoder")
    assert not config.use_inpainting and not config.use_modality_tokens
    keys = AVMAEForPreTraining(tiny_config()).state_dict()
    assert not any("modality_token" in k for k in keys)
    assert {k.split(".")[1] for k in keys if k.startswith("avmae.") and "layers" in k} == {
        "audio_layers", "video_layers", "fusion_layers"
    }
    assert {k.split(".")[1] for k in keys if k.startswith("decoder.") and "layers" in k} == {"layers"}


@pytest.mark.parametrize("strategy", ["separate_encoders", "separate_encoders_and_concat", "same_encoder"])
def test_encoders_that_keep_modalities_apart_or_fuse_them(strategy):
    """Audio outputs ignore the video unless joint layers see both tokens (mid fusion with num_fusion_layers > 0)."""
    model = _build(AVMAEModel, encoder_strategy=strategy, num_fusion_layers=1)
    inputs = tiny_inputs(model.config)
    audio = _encode(model, inputs).audio_last_hidden_state
    audio_other_video = _encode(model, _other_video(inputs)).audio_last_hidden_state
    fused = strategy == "separate_encoders_and_concat"
    assert torch.equal(audio, audio_other_video) is not fused


def test_early_fusion_concatenates_before_the_first_layer():
    model = _build(AVMAEModel, encoder_strategy="concat_and_encode")
    assert model.audio_layers is None and model.video_layers is None and model.fusion_layers is None
    assert len(model.layers) == model.config.num_hidden_layers
    inputs = tiny_inputs(model.config)
    audio = _encode(model, inputs).audio_last_hidden_state
    assert not torch.equal(audio, _encode(model, _other_video(inputs)).audio_last_hidden_state)
    # one modality alone runs the same stack on its tokens only
    out = _encode(model, {"input_values": inputs["input_values"]})
    assert out.video_last_hidden_state is None and out.audio_last_hidden_state.shape[1] == 4


def test_separate_encoders_have_the_full_depth_per_modality():
    model = _build(AVMAEModel, encoder_strategy="separate_encoders", num_fusion_layers=1)
    assert model.fusion_layers is None
    assert len(model.audio_layers) == len(model.video_layers) == model.config.num_hidden_layers
    mid = _build(AVMAEModel, encoder_strategy="separate_encoders_and_concat", num_fusion_layers=1)
    assert len(mid.audio_layers) == 2 and len(mid.fusion_layers) == 1


def test_same_encoder_is_one_set_of_weights_run_on_each_modality():
    model = _build(AVMAEModel, encoder_strategy="same_encoder")
    separate = _build(AVMAEModel, encoder_strategy="separate_encoders")
    assert model.audio_layers is None and model.video_layers is None
    assert _params(separate) - _params(model) == _params(separate.video_layers) + _params(separate.video_norm)
    inputs = tiny_inputs(model.config)
    out = _encode(model, inputs)
    # the audio result equals running the one stack (+ norm) on the kept audio tokens by hand
    with torch.no_grad():
        tokens = model.embeddings(inputs["input_values"])["audio"]
        kept = torch.gather(tokens, 1, out.audio_ids_keep[..., None].expand(-1, -1, tokens.shape[-1]))
        for layer in model.layers:
            kept = layer(kept)[0]
        torch.testing.assert_close(model.norm(kept), out.audio_last_hidden_state, rtol=0, atol=0)
        # the video runs through the very same modules: changing them changes both modalities
        model.layers[0].mlp.fc1.bias.add_(1.0)
        changed = _encode(model, inputs)
    assert not torch.equal(changed.audio_last_hidden_state, out.audio_last_hidden_state)
    assert not torch.equal(changed.video_last_hidden_state, out.video_last_hidden_state)


@pytest.mark.parametrize("decoder", ["same_decoder", "separate_decoders", "concat_and_decode"])
def test_only_the_joint_decoder_lets_the_modalities_attend_each_other(decoder):
    """Separate encoders, so the decoder is the only place the video could reach the audio predictions."""
    model = _build(AVMAEForPreTraining, encoder_strategy="separate_encoders", decoder_strategy=decoder)
    inputs = tiny_inputs(model.config)
    audio = _encode(model, inputs).audio_logits
    audio_other_video = _encode(model, _other_video(inputs)).audio_logits
    assert torch.equal(audio, audio_other_video) is (decoder != "concat_and_decode")


def test_separate_decoders_have_one_stack_per_modality():
    model = _build(AVMAEForPreTraining, decoder_strategy="separate_decoders")
    decoder = model.decoder
    assert decoder.layers is None and decoder.norm is None
    assert len(decoder.audio_layers) == len(decoder.video_layers) == model.config.decoder_num_hidden_layers
    keys = model.state_dict()
    assert any(k.startswith("decoder.audio_layers.0.") for k in keys)
    assert not any(k.startswith("decoder.layers.") for k in keys)
    # the audio stack does not serve the video
    inputs = tiny_inputs(model.config)
    before = _encode(model, inputs)
    with torch.no_grad():
        decoder.audio_layers[0].mlp.fc1.bias.add_(1.0)
    after = _encode(model, inputs)
    assert not torch.equal(before.audio_logits, after.audio_logits)
    assert torch.equal(before.video_logits, after.video_logits)


def test_inpainting_reconstructs_each_modality_from_the_other():
    """Scenic use_inpainting: the audio decoder sees the video's kept tokens (first positions) and audio mask tokens;
    with separate encoders and same_decoder, the audio predictions cannot depend on the audio input."""
    model = _build(AVMAEForPreTraining, encoder_strategy="separate_encoders", use_inpainting=True)
    inputs = tiny_inputs(model.config)
    out = _encode(model, inputs)
    assert torch.equal(out.audio_logits, _encode(model, _other_audio(inputs)).audio_logits)
    assert torch.equal(out.video_logits, _encode(model, _other_video(inputs)).video_logits)
    assert not torch.equal(out.audio_logits, _encode(model, _other_video(inputs)).audio_logits)
    # the loss scores the positions after the other modality's kept tokens (4 video tokens kept of 8 at ratio 0.5)
    kept = 4
    expected = torch.cat([torch.zeros(2, kept), torch.ones(2, 8 - kept)], dim=1)
    torch.testing.assert_close(out.audio_mask, expected, rtol=0, atol=0)
    torch.testing.assert_close(out.video_mask, expected, rtol=0, atol=0)
    target = model.targets("audio", inputs["input_values"])
    torch.testing.assert_close(out.audio_loss, masked_mse(out.audio_logits, target, expected))
    torch.testing.assert_close(
        out.loss, model.config.audio_loss_weight * out.audio_loss + model.config.video_loss_weight * out.video_loss
    )


def test_inpainting_needs_both_modalities_and_room_for_the_kept_tokens():
    with pytest.raises(StrictDataclassClassValidationError, match="needs both modalities"):
        tiny_config(use_inpainting=True, modalities=["audio"])
    model = _build(AVMAEForPreTraining, use_inpainting=True)
    inputs = tiny_inputs(model.config)
    with torch.no_grad(), pytest.raises(ValueError, match="both modalities"):
        model(input_values=inputs["input_values"], audio_mask_ratio=0.5)
    wide = _build(AVMAEForPreTraining, use_inpainting=True, image_size=32)  # 32 video tokens, 16 kept at 0.5
    with torch.no_grad(), pytest.raises(ValueError, match="more kept tokens than positions"):
        wide(**tiny_inputs(wide.config), audio_mask_ratio=0.5, video_mask_ratio=0.5)


def test_modality_tokens_are_added_in_the_encoder_and_the_decoder():
    model = _build(AVMAEForPreTraining, use_modality_tokens=True)
    tokens = [model.avmae.embeddings.audio_modality_token, model.avmae.embeddings.video_modality_token,
              model.decoder.audio_modality_token, model.decoder.video_modality_token]
    assert all(t is not None and torch.count_nonzero(t) == 0 for t in tokens)  # zeros at init (Scenic)
    keys = model.state_dict()
    assert {"avmae.embeddings.audio_modality_token", "decoder.video_modality_token"} <= set(keys)
    inputs = tiny_inputs(model.config)
    with torch.no_grad():
        plain = model.avmae.embeddings(**inputs)
        model.avmae.embeddings.audio_modality_token.fill_(0.5)
        shifted = model.avmae.embeddings(**inputs)
    torch.testing.assert_close(shifted["audio"], plain["audio"] + 0.5, rtol=0, atol=0)
    assert torch.equal(shifted["video"], plain["video"])
    before = _encode(model, inputs)
    with torch.no_grad():
        model.decoder.video_modality_token.fill_(0.5)
    after = _encode(model, inputs)
    assert torch.equal(before.audio_logits, after.audio_logits) and not torch.equal(before.video_logits, after.video_logits)


@pytest.mark.parametrize(
    "fields",
    [dict(encoder_strategy="concat_and_encode", decoder_strategy="concat_and_decode", use_modality_tokens=True),
     dict(encoder_strategy="same_encoder", decoder_strategy="separate_decoders", use_inpainting=True)],
)
def test_variants_save_load_and_train(fields, tmp_path):
    model = _build(AVMAEForPreTraining, **fields)
    model.save_pretrained(tmp_path)
    loaded, info = AVMAEForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    assert {k: getattr(loaded.config, k) for k in fields} == fields
    inputs = {**tiny_inputs(model.config), **_noise()}
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).loss, model(**inputs).loss, rtol=0, atol=0)
    model.train()
    model(**inputs).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_unknown_strategies_are_refused():
    with pytest.raises(StrictDataclassClassValidationError, match="encoder_strategy"):
        tiny_config(encoder_strategy="late_fusion")
    with pytest.raises(StrictDataclassClassValidationError, match="decoder_strategy"):
        tiny_config(decoder_strategy="joint")


def test_training_script_interface_matches_mavil():
    """What examples/pretrain_audiovisual.py reads from a pretraining model: loss, its terms by name, the
    reconstructions and masks per modality, l2-normalised retrieval embeddings of each modality encoded alone."""
    model = _build(AVMAEForPreTraining)
    inputs = tiny_inputs(model.config)
    out = _encode(model, inputs)
    assert model.loss_terms == ("audio_loss", "video_loss")
    total = sum(getattr(model.config, t.replace("_loss", "_loss_weight")) * getattr(out, t) for t in model.loss_terms)
    torch.testing.assert_close(out.loss, total)
    assert out.audio_logits.shape[:2] == out.audio_mask.shape == (2, 8)
    assert out.video_logits.shape[:2] == out.video_mask.shape == (2, 8)
    with torch.no_grad():
        audio, video = model.get_retrieval_embeddings(**inputs)
        alone = model.avmae(input_values=inputs["input_values"]).audio_last_hidden_state.mean(dim=1)
        audio_other_video, _ = model.get_retrieval_embeddings(inputs["input_values"], inputs["pixel_values"] + 1.0)
    torch.testing.assert_close(audio, torch.nn.functional.normalize(alone, dim=-1))
    torch.testing.assert_close(audio.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(video.norm(dim=-1), torch.ones(2))
    assert torch.equal(audio, audio_other_video)  # the fusion layers never mix the candidates
    assert _build(AVMAEForPreTraining, modalities=["video"]).loss_terms == ("video_loss",)


def _scenic_variant_tree(model: AVMAEForPreTraining) -> dict:
    """The parameter tree Scenic's ViViTMultiMaskedAutoencoder names for a shared encoder stack ('Transformer'),
    per-modality decoders ('Decoder_{key}') and modality tokens ('{Encoder,Decoder}_modality_token_{key}') —
    written from vivit_multimodal.py, not from the converter."""
    sd, config = model.state_dict(), model.config
    key = {"audio": "spectrogram", "video": "rgb"}

    def stack(prefix, norm_prefix, depth, heads):
        tree = {f"encoderblock_{i}": scenic_block(sd, f"{prefix}.{i}", heads) for i in range(depth)}
        tree["encoder_norm"] = norm(sd, norm_prefix)
        return tree

    tree = {"Transformer": stack("avmae.layers", "avmae.norm", config.num_hidden_layers, config.num_attention_heads)}
    for name in config.modalities:
        embed = conv2d if name == "audio" else conv3d
        tree[f"embedding_{key[name]}"] = embed(sd, f"avmae.embeddings.{name}_patch_embed.proj")
        tree[f"Encoder_modality_token_{key[name]}"] = sd[f"avmae.embeddings.{name}_modality_token"]
        tree[f"Decoder_modality_token_{key[name]}"] = sd[f"decoder.{name}_modality_token"]
        tree[f"decoder_projection_{key[name]}"] = dense(sd, f"decoder.{name}_projection")
        tree[f"mask_token_{key[name]}"] = sd[f"decoder.{name}_mask_token"]
        tree[f"output_projection_{key[name]}"] = dense(sd, f"decoder.{name}_pred")
        tree[f"Decoder_{key[name]}"] = stack(f"decoder.{name}_layers", f"decoder.{name}_norm",
                                             config.decoder_num_hidden_layers, config.decoder_num_attention_heads)
    return tree


@pytest.mark.parametrize("encoder_strategy", ["same_encoder", "concat_and_encode"])
def test_variant_checkpoints_convert_through_the_key_table(encoder_strategy):
    from hf_maskedav.conversion import UnmappedKeysError
    from hf_maskedav.conversion.avmae import build_model_from_params
    from hf_maskedav.conversion.flax_checkpoint import flatten_tree

    torch.manual_seed(0)
    original = AVMAEForPreTraining(tiny_config(
        encoder_strategy=encoder_strategy, decoder_strategy="separate_decoders", use_modality_tokens=True
    ))
    with torch.no_grad():
        for parameter in original.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    params = flatten_tree(_scenic_variant_tree(original))
    sizes = dict(max_length=36, num_mel_bins=16, num_frames=4, image_size=16, video_mask_ratio=0.5)
    with pytest.raises(ValueError, match="cannot tell them apart"):
        build_model_from_params(params, **sizes)
    converted = build_model_from_params(params, encoder_strategy=encoder_strategy, **sizes)
    assert converted.config.decoder_strategy == "separate_decoders" and converted.config.use_modality_tokens
    inputs = {**tiny_inputs(original.config), **_noise()}
    with torch.no_grad():
        expected, ours = original.eval()(**inputs), converted(**inputs)
    for name in ("loss", "audio_logits", "video_logits"):
        torch.testing.assert_close(getattr(ours, name), getattr(expected, name), msg=name)
    del params["Decoder_modality_token_rgb"]
    with pytest.raises(UnmappedKeysError, match=r"does not fill: \['decoder.video_modality_token'\]"):
        build_model_from_params(params, encoder_strategy=encoder_strategy, **sizes)


# ---------------------------------------------------------------------------------------------------------------------
# The AV-MAE variant tests that tests/test_modeling_mavil.py held while MAViL emulated AV-MAE, on AV-MAE's own classes


class TestAVMAESharedEncoderJointDecoder(test_avmae.TestAVMAE):
    """Georgescu et al.: shared encoder, joint decoder, modality tokens (the whole model-tester suite)."""

    all_model_classes = (AVMAEModel, AVMAEForPreTraining)

    def get_config(self):
        return tiny_config(encoder_strategy="same_encoder", decoder_strategy="concat_and_decode", use_modality_tokens=True)


class TestAVMAEInpainting(test_avmae.TestAVMAE):
    """Scenic's modality inpainting: unlike the emulation's one-way version, both modalities are still encoded and
    each is reconstructed, so every parameter gets a gradient (the mixin's test checks it)."""

    all_model_classes = (AVMAEForPreTraining,)

    def get_config(self):
        return tiny_config(decoder_strategy="concat_and_decode", use_inpainting=True)


@pytest.mark.parametrize(
    "fields",
    [dict(encoder_strategy="separate_encoders"),  # the emulation's test: shared decoder, no fusion layer, 0.5/0.5
     dict(encoder_strategy="same_encoder", decoder_strategy="concat_and_decode", use_modality_tokens=True),
     dict(encoder_strategy="concat_and_encode", use_inpainting=True)],
)
def test_av_mae_variant_losses_decrease(fields):
    torch.manual_seed(0)
    config = tiny_config(audio_mask_ratio=0.5, video_mask_ratio=0.5, **fields)
    gen = torch.Generator().manual_seed(0)
    inputs = {"input_values": torch.randn(4, 36, 16, generator=gen),
              "pixel_values": torch.randn(4, 4, 3, 16, 16, generator=gen),
              "audio_noise": torch.rand(4, 8, generator=gen), "video_noise": torch.rand(4, 8, generator=gen)}
    model = AVMAEForPreTraining(config)
    history = _train(model, 15, inputs)
    assert set(history[0]) == {"loss", *model.loss_terms} == {"loss", "audio_loss", "video_loss"}
    for name in history[0]:
        assert _decreased(history, name)[0], name


def test_inpainting_target_changes_the_loss_not_the_prediction():
    """With separate encoders and decoders, another video changes the video target (its loss), not the video
    prediction, which is made from the audio's kept tokens alone."""
    model = _build(AVMAEForPreTraining, encoder_strategy="separate_encoders", decoder_strategy="separate_decoders",
                   use_inpainting=True)
    inputs = tiny_inputs(model.config)
    out, other = _encode(model, inputs), _encode(model, _other_video(inputs))
    torch.testing.assert_close(other.video_logits, out.video_logits, rtol=0, atol=0)
    assert not torch.allclose(other.video_loss, out.video_loss)


def test_encoder_variants_output_every_token():
    early = _build(AVMAEModel, encoder_strategy="concat_and_encode")
    late = _build(AVMAEModel, encoder_strategy="separate_encoders")
    mid = _build(AVMAEModel)
    shared = _build(AVMAEModel, encoder_strategy="same_encoder")
    assert shared.video_layers is None and not any(k.startswith(("video_layers", "audio_layers")) for k in shared.state_dict())
    inputs = tiny_inputs(mid.config)
    for model in (early, late, mid, shared):
        with torch.no_grad():
            out = model(**inputs)  # no masking without noise or ratio
        assert out.last_hidden_state.shape == (2, 8 + 8, 32)  # no cls token
    # late fusion: the output is just the two encoder outputs side by side
    with torch.no_grad():
        out = late(**inputs)
    torch.testing.assert_close(out.last_hidden_state, torch.cat([out.audio_last_hidden_state, out.video_last_hidden_state], 1))
