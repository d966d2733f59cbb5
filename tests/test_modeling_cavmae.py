import numpy as np
import pytest
import torch

from hf_maskedav import (
    AudioMAEFeatureExtractor,
    CAVMAEConfig,
    CAVMAEFeatureExtractor,
    CAVMAEForAudioVisualClassification,
    CAVMAEForPreTraining,
    CAVMAEModel,
    CAVMAEProcessor,
    CAVMAEVideoProcessor,
)
from hf_maskedav.models.cavmae.video_processing_cavmae import cavmae_frame_indices

from common import ModelTesterMixin

MODES = ("multimodal", "audioonly", "videoonly", "missingaudioonly", "missingvideoonly")


def tiny_config(**overrides):
    fields = dict(
        max_length=32, num_mel_bins=32, image_size=32, patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64,
        num_modality_specific_layers=2, num_shared_layers=1,
        decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
        num_labels=3,
    )
    fields.update(overrides)
    return CAVMAEConfig(**fields)


def inputs_for(config, batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        "input_values": torch.randn(batch, config.max_length, config.num_mel_bins, generator=gen),
        "pixel_values": torch.randn(batch, 3, config.image_size, config.image_size, generator=gen),
    }


class TestCAVMAE(ModelTesterMixin):
    all_model_classes = (CAVMAEModel, CAVMAEForPreTraining, CAVMAEForAudioVisualClassification)

    def get_config(self):
        return tiny_config(trainable_position_embeddings=self.trainable_positions)

    trainable_positions = False

    def get_inputs(self, model_class):
        config = self.get_config()
        inputs = inputs_for(config)
        gen = torch.Generator().manual_seed(1)
        if model_class is CAVMAEForPreTraining:
            inputs["audio_noise"] = torch.rand(2, config.num_audio_patches, generator=gen)
            inputs["video_noise"] = torch.rand(2, config.num_video_patches, generator=gen)
        if model_class is CAVMAEForAudioVisualClassification:
            inputs["labels"] = torch.tensor([0, 2])
        return inputs

    def test_every_trainable_parameter_gets_a_gradient(self):
        """Overrides the mixin: which norms a pass uses depends on the mode, so every path is run once."""
        config = self.get_config()
        model = self.build(CAVMAEForPreTraining).train()
        model(**self.get_inputs(CAVMAEForPreTraining)).loss.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"pretraining: no gradient for {missing}"

        model = self.build(CAVMAEForAudioVisualClassification).train()
        inputs = self.get_inputs(CAVMAEForAudioVisualClassification)
        loss = sum(model(**inputs, mode=mode).loss for mode in MODES)
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"classification (all modes): no gradient for {missing}"

        model = self.build(CAVMAEModel).train()
        out = model(**inputs_for(config))
        (out.last_hidden_state.pow(2).mean() + out.audio_last_hidden_state.mean() + out.video_last_hidden_state.mean()).backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"base model: no gradient for {missing}"


def test_trainable_position_tables_start_as_sincos_and_survive_save_load(tmp_path):
    """Fine-tuning (official tr_pos=True): learned tables, initialised to the fixed ones, saved with the weights."""
    config = tiny_config(trainable_position_embeddings=True)
    model = CAVMAEForAudioVisualClassification(config)
    fixed = CAVMAEModel(tiny_config())
    table = model.cavmae.audio_embeddings.position_embeddings.table
    assert isinstance(table, torch.nn.Parameter) and table.requires_grad
    torch.testing.assert_close(table.detach(), fixed.audio_embeddings.position_embeddings.table)
    with torch.no_grad():
        table.add_(0.5)
    model.save_pretrained(tmp_path)
    reloaded = CAVMAEForAudioVisualClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.cavmae.audio_embeddings.position_embeddings.table, table)


def test_shapes_and_token_counts():
    config = tiny_config()
    model = CAVMAEForPreTraining(config).eval()
    out = model(**inputs_for(config, batch=3))
    la, lv = config.num_audio_patches, config.num_video_patches  # 4 x 4, 4 x 4
    ka, kv = int(la * 0.25), int(lv * 0.25)
    assert out.audio_logits.shape == (3, la, 64) and out.video_logits.shape == (3, lv, 192)
    assert out.last_hidden_state.shape == (3, ka + kv, 32)
    assert out.audio_last_hidden_state.shape == (3, ka, 32) and out.video_last_hidden_state.shape == (3, kv, 32)
    assert torch.equal(out.audio_mask.sum(1), torch.full((3,), float(la - ka)))
    torch.testing.assert_close(out.loss, out.mae_loss + out.contrastive_loss)
    torch.testing.assert_close(out.mae_loss, out.audio_mae_loss + out.video_mae_loss)
    features = CAVMAEModel(config)(**inputs_for(config))
    assert features.last_hidden_state.shape == (2, la + lv, 32) and features.audio_mask.sum() == 0


def test_noise_pins_the_masks_smallest_kept():
    config = tiny_config()
    model = CAVMAEForPreTraining(config).eval()
    noise_a, noise_v = torch.rand(2, config.num_audio_patches), torch.rand(2, config.num_video_patches)
    a = model(**inputs_for(config), audio_noise=noise_a, video_noise=noise_v)
    b = model(**inputs_for(config), audio_noise=noise_a, video_noise=noise_v)
    assert torch.equal(a.audio_mask, b.audio_mask) and torch.equal(a.video_mask, b.video_mask)
    torch.testing.assert_close(a.loss, b.loss)
    kept = torch.argsort(noise_a, dim=1)[:, : int(config.num_audio_patches * 0.25)]
    assert (a.audio_mask.gather(1, kept) == 0).all()


def test_contrastive_loss_is_the_official_single_direction_infonce():
    config = tiny_config(contrastive_loss_weight=0.5)
    model = CAVMAEForPreTraining(config).eval()
    with torch.no_grad():
        out = model(**inputs_for(config, batch=4))
    a = torch.nn.functional.normalize(out.audio_last_hidden_state.mean(1), dim=-1)
    v = torch.nn.functional.normalize(out.video_last_hidden_state.mean(1), dim=-1)
    total = a @ v.t() / 0.05
    nce = -torch.mean(torch.diag(torch.log_softmax(total, dim=0)))
    torch.testing.assert_close(out.contrastive_loss, 0.5 * nce)
    accuracy = (total.softmax(dim=0).argmax(dim=0) == torch.arange(4)).float().mean()
    torch.testing.assert_close(out.contrastive_accuracy, accuracy)


def test_last_only_reproduces_the_official_contrastive_loop():
    """With 2 shared layers the official branch applies both to the same input and keeps the last result."""
    config = tiny_config(num_shared_layers=2, num_modality_specific_layers=1)
    chained = CAVMAEForPreTraining(config).eval()
    official = CAVMAEForPreTraining(tiny_config(num_shared_layers=2, num_modality_specific_layers=1,
                                                contrastive_shared_layers="last_only")).eval()
    official.load_state_dict(chained.state_dict())
    noise = dict(audio_noise=torch.rand(2, 16), video_noise=torch.rand(2, 16))
    with torch.no_grad():
        a, b = chained(**inputs_for(config), **noise), official(**inputs_for(config), **noise)
        encoder = official.cavmae
        embedded = encoder.embed_and_mask(**inputs_for(config), **noise)
        audio = encoder.modality_specific(embedded)["audio"][0]
        expected = encoder.audio_norm(encoder.shared_layers[1](audio, modality="audio")[0])
    torch.testing.assert_close(b.audio_last_hidden_state, expected)
    assert not torch.allclose(a.audio_last_hidden_state, b.audio_last_hidden_state)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state)  # the joint pass chains in both


def test_modes_follow_the_official_definitions_and_defaults():
    config = tiny_config()
    model = CAVMAEForAudioVisualClassification(config).eval()
    inputs = inputs_for(config)
    audio, video = inputs["input_values"], inputs["pixel_values"]
    with torch.no_grad():
        logits = {mode: model(**inputs, mode=mode).logits for mode in MODES}
        torch.testing.assert_close(model(**inputs).logits, logits["multimodal"])
        torch.testing.assert_close(model(input_values=audio).logits, logits["missingaudioonly"])
        torch.testing.assert_close(model(pixel_values=video[:, None]).logits, logits["missingvideoonly"])
        encoder = model.cavmae
        tokens = encoder.modality_specific(encoder.embed_and_mask(audio, None))["audio"][0]
        pooled = 0.5 * (encoder.shared_pass(tokens, None)[0].mean(1) + encoder.shared_pass(tokens, "audio")[0].mean(1))
        torch.testing.assert_close(logits["missingaudioonly"], model.classifier(model.classifier_norm(pooled)))
    audio_model = CAVMAEForAudioVisualClassification(tiny_config(classification_mode="audioonly")).eval()
    audio_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(audio_model(input_values=audio).logits, logits["audioonly"])
    with pytest.raises(ValueError, match="needs video input"):
        model(input_values=audio, mode="videoonly")
    with pytest.raises(ValueError, match="mode must be one of"):
        model(**inputs, mode="fusion")


def test_multi_label_loss_is_bce():
    model = CAVMAEForAudioVisualClassification(tiny_config(problem_type="multi_label_classification")).eval()
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = model(**inputs_for(model.config), labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels))


@pytest.mark.parametrize(
    "audio_shape, video_shape, message",
    [
        ((2, 32, 31), (2, 3, 32, 32), "mel bins"),
        ((2, 40, 32), (2, 3, 32, 32), "pad or crop"),
        ((2, 32, 32), (2, 4, 3, 32, 32), "one frame"),
        ((2, 32, 32), (2, 3, 16, 16), "pixel_values must have shape"),
    ],
)
def test_bad_inputs_get_clear_errors(audio_shape, video_shape, message):
    model = CAVMAEForPreTraining(tiny_config())
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*audio_shape), torch.randn(*video_shape))


def test_wrong_noise_shape_is_rejected():
    config = tiny_config()
    with pytest.raises(ValueError, match="audio_noise must have shape"):
        CAVMAEForPreTraining(config)(**inputs_for(config), audio_noise=torch.rand(2, 5))


def test_config_validation():
    with pytest.raises(Exception, match="divisible"):
        tiny_config(hidden_size=30)
    with pytest.raises(Exception, match="audio_mask_ratio"):
        tiny_config(audio_mask_ratio=1.0)


def test_position_table_is_frequency_major_consistent():
    """Token f * T' + t gets [code(t) | code(f)] (official get_2d_sincos_pos_embed(D, 8, T'))."""
    from hf_maskedav.layers import sincos_1d

    config = tiny_config()
    table = CAVMAEModel(config).audio_embeddings.position_embeddings.table[0]
    freq, time = config.audio_grid_size
    index = torch.arange(freq * time)
    expected = torch.cat([sincos_1d(16, index % time), sincos_1d(16, index // time)], dim=1).float()
    torch.testing.assert_close(table, expected)


def test_feature_extractor_divides_by_std_once():
    waveform = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    ours = CAVMAEFeatureExtractor(max_length=64)(waveform, sampling_rate=16000, return_tensors="pt")["input_values"]
    raw = AudioMAEFeatureExtractor(max_length=64, do_normalize=False)(waveform, sampling_rate=16000, return_tensors="pt")
    torch.testing.assert_close(ours, (raw["input_values"] + 5.081) / 4.4849, atol=1e-6, rtol=1e-6)
    as_numpy = CAVMAEFeatureExtractor(max_length=64)(waveform, sampling_rate=16000, return_tensors="np")["input_values"]
    np.testing.assert_allclose(as_numpy, ours.numpy())


def test_frame_indices_follow_the_official_extraction():
    # 10 frames from the first 10 s: int(i * total / 10) - 1 (the official seek), at least 0
    assert cavmae_frame_indices(300, 25.0, range(10)).tolist() == [0, 24, 49, 74, 99, 124, 149, 174, 199, 224]
    assert cavmae_frame_indices(100, None, [5]).tolist() == [49]
    with pytest.raises(ValueError, match="outside"):
        cavmae_frame_indices(100, None, [10])


def test_processor_round_trip_and_audio_video_pipeline(tmp_path):
    from transformers import AutoProcessor, pipeline

    config = tiny_config(id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    model = CAVMAEForAudioVisualClassification(config).eval()
    side = config.image_size
    processor = CAVMAEProcessor(
        CAVMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length),
        CAVMAEVideoProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}),
    )
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded, CAVMAEProcessor) and reloaded.feature_extractor.std == 4.4849
    rng = np.random.default_rng(0)
    sample = {
        "audio": rng.standard_normal(16000).astype(np.float32) * 0.1,
        "sampling_rate": 16000,
        "video": rng.integers(0, 255, (20, 48, 64, 3), dtype=np.uint8),
        "video_fps": 10.0,
    }
    batch = reloaded(audio=[sample["audio"]], sampling_rate=16000, videos=[sample["video"]], video_fps=10.0)
    assert batch["input_values"].shape == (1, config.max_length, config.num_mel_bins)
    assert batch["pixel_values"].shape == (1, 1, 3, side, side)
    classifier = pipeline("audio-video-classification", model=str(tmp_path))
    scores = classifier(sample, top_k=3)
    with torch.no_grad():
        expected = model(**batch).logits.softmax(-1)[0]
    assert [s["label"] for s in scores] == [config.id2label[int(i)] for i in expected.argsort(descending=True)]
    audio_only = classifier({"audio": sample["audio"], "sampling_rate": 16000}, top_k=1)
    assert len(audio_only) == 1


def test_loss_weights_per_call_equal_the_config_ones():
    """Official ``forward(..., mae_loss_weight=, contrast_loss_weight=)``: per-call weights, config untouched."""
    config = tiny_config()
    torch.manual_seed(0)
    model = CAVMAEForPreTraining(config).eval()
    weighted = CAVMAEForPreTraining(tiny_config(mae_loss_weight=3.0, contrastive_loss_weight=0.5)).eval()
    weighted.load_state_dict(model.state_dict())
    noise = dict(audio_noise=torch.rand(2, config.num_audio_patches), video_noise=torch.rand(2, config.num_video_patches))
    with torch.no_grad():
        per_call = model(**inputs_for(config), **noise, mae_loss_weight=3.0, contrastive_loss_weight=0.5)
        from_config = weighted(**inputs_for(config), **noise)
        default = model(**inputs_for(config), **noise)
    torch.testing.assert_close(per_call.loss, from_config.loss)
    torch.testing.assert_close(per_call.contrastive_loss, from_config.contrastive_loss)
    assert not torch.allclose(per_call.loss, default.loss)
    assert model.config.mae_loss_weight == config.mae_loss_weight
