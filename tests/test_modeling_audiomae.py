import pytest
import torch

from hf_maskedav import AudioMAEConfig, AudioMAEForAudioClassification, AudioMAEForPreTraining, AudioMAEModel

from common import ModelTesterMixin


def tiny_config(**overrides):
    fields = dict(
        max_length=64, num_mel_bins=32, patch_size=8, patch_stride=8,
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        decoder_hidden_size=32, decoder_num_hidden_layers=2, decoder_num_attention_heads=4, decoder_intermediate_size=64,
        num_labels=3,
    )
    fields.update(overrides)
    return AudioMAEConfig(**fields)


class AudioMAETestBase(ModelTesterMixin):
    all_model_classes = (AudioMAEModel, AudioMAEForPreTraining, AudioMAEForAudioClassification)
    decoder_type = "local"

    def get_config(self):
        return tiny_config(decoder_type=self.decoder_type, mask_time_prob=0.25, mask_freq_prob=0.25)

    def get_inputs(self, model_class):
        gen = torch.Generator().manual_seed(0)
        config = self.get_config()
        inputs = {"input_values": torch.randn(2, config.max_length, config.num_mel_bins, generator=gen)}
        if model_class is AudioMAEForPreTraining:
            inputs["noise"] = torch.rand(2, config.num_patches, generator=gen)
        if model_class is AudioMAEForAudioClassification:
            inputs["labels"] = torch.tensor([0, 2])
            inputs["time_noise"] = torch.rand(2, config.grid_size[0], generator=gen)
            inputs["freq_noise"] = torch.rand(2, config.grid_size[1], generator=gen)
        return inputs


class TestAudioMAELocalDecoder(AudioMAETestBase):
    decoder_type = "local"


class TestAudioMAEGlobalDecoder(AudioMAETestBase):
    decoder_type = "global"


def test_pretraining_shapes_and_mask_count():
    config = tiny_config()
    model = AudioMAEForPreTraining(config).eval()
    out = model(torch.randn(3, 64, 32))
    length = config.num_patches  # 8 x 4
    assert out.logits.shape == (3, length, 64)
    assert out.mask.shape == (3, length)
    kept = int(length * (1 - config.mask_ratio))
    assert torch.equal(out.mask.sum(1), torch.full((3,), float(length - kept)))
    assert out.last_hidden_state.shape == (3, 1 + kept, 32)
    # 4-D input [N, 1, T, F] is the same as 3-D [N, T, F]
    noise = torch.rand(3, length)
    x = torch.randn(3, 64, 32)
    torch.testing.assert_close(model(x, noise=noise).loss, model(x[:, None], noise=noise).loss)


def test_base_model_without_masking_sees_every_token():
    config = tiny_config()
    out = AudioMAEModel(config)(torch.randn(2, 64, 32))
    assert out.last_hidden_state.shape == (2, 1 + config.num_patches, 32)
    assert out.mask.sum() == 0


def test_noise_pins_the_mask_and_the_loss():
    model = AudioMAEForPreTraining(tiny_config()).eval()
    x, noise = torch.randn(2, 64, 32), torch.rand(2, 32)
    a, b = model(x, noise=noise), model(x, noise=noise)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.loss, b.loss)
    # the smallest noise is kept
    kept = torch.argsort(noise, dim=1)[:, : int(32 * (1 - 0.8))]
    assert (a.mask.gather(1, kept) == 0).all()


def test_classification_masking_only_in_training():
    model = AudioMAEForAudioClassification(tiny_config(mask_time_prob=0.5, mask_freq_prob=0.5)).eval()
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, model(x).logits)
        model.train()
        out = model(x, output_hidden_states=True)
    # 8 time rows x 4 mel columns -> int(8*0.5) * int(4*0.5) = 8 tokens + cls
    assert out.hidden_states[-1].shape[1] == 1 + 8


def test_multi_label_loss_is_bce():
    config = tiny_config(problem_type="multi_label_classification")
    model = AudioMAEForAudioClassification(config).eval()
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = model(torch.randn(2, 64, 32), labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels)
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize(
    "shape, message",
    [((2, 64), "shape"), ((2, 64, 31), "mel bins"), ((2, 3, 64, 32), "shape"), ((2, 4, 32), "fewer than one patch")],
)
def test_bad_input_shapes_get_clear_errors(shape, message):
    model = AudioMAEForPreTraining(tiny_config())
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_wrong_noise_shape_is_rejected():
    model = AudioMAEForPreTraining(tiny_config())
    with pytest.raises(ValueError, match="noise must have shape"):
        model(torch.randn(2, 64, 32), noise=torch.rand(2, 31))


def test_local_decoder_rejects_another_grid():
    model = AudioMAEForPreTraining(tiny_config())
    with pytest.raises(ValueError, match="local decoder is built for a token grid"):
        model(torch.randn(2, 128, 32))


def test_config_validation():
    with pytest.raises(Exception, match="divisible"):
        tiny_config(hidden_size=30)
    with pytest.raises(Exception, match="mask_ratio"):
        tiny_config(mask_ratio=1.5)


def test_official_position_table_is_time_major_scrambled():
    """Token j carries the code of cell (j // T', j % T') of a freq x time grid (official quirk, reproduced)."""
    from hf_maskedav.layers import audiomae_position_table, sincos_1d

    table = audiomae_position_table(16, time_patches=8, freq_patches=4)
    assert table.shape == (33, 16)
    assert table[0].abs().sum() == 0
    j = torch.arange(32)
    expected = torch.cat([sincos_1d(8, j % 8), sincos_1d(8, j // 8)], dim=1).float()
    torch.testing.assert_close(table[1:], expected)


def test_mask_probabilities_per_call_equal_the_config_ones():
    """Official ``forward(x, mask_t_prob=..., mask_f_prob=...)``: per-call probabilities, config untouched."""
    torch.manual_seed(0)
    plain = AudioMAEForAudioClassification(tiny_config()).eval()
    masked = AudioMAEForAudioClassification(tiny_config(mask_time_prob=0.5, mask_freq_prob=0.25)).eval()
    masked.load_state_dict(plain.state_dict())
    x, time_noise, freq_noise = torch.randn(2, 64, 32), torch.rand(2, 8), torch.rand(2, 4)
    with torch.no_grad():
        per_call = plain(x, time_noise=time_noise, freq_noise=freq_noise, mask_time_prob=0.5, mask_freq_prob=0.25)
        from_config = masked(x, time_noise=time_noise, freq_noise=freq_noise)
        unmasked = plain(x, time_noise=time_noise, freq_noise=freq_noise)
    torch.testing.assert_close(per_call.logits, from_config.logits)
    assert not torch.allclose(per_call.logits, unmasked.logits)
    assert (plain.config.mask_time_prob, plain.config.mask_freq_prob) == (0.0, 0.0)
