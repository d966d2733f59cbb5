"""Audio-MAE configuration."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import UNIT_INTERVAL, check_divisible, check_ranges


@strict
class AudioMAEConfig(PreTrainedConfig):
    r"""Configuration of an Audio-MAE ("Masked Autoencoders that Listen", Huang et al., NeurIPS 2022).

    The defaults describe the released ViT-B model (1024x128 fbank, 16x16 patches, local decoder).

    Args:
        num_mel_bins (`int`, defaults to 128): mel bins of the input spectrogram (its last axis).
        max_length (`int`, defaults to 1024): frames of the input spectrogram (its time axis).
        patch_size (`int`, defaults to 16): square patch side.
        patch_stride (`int`, defaults to 16): stride of the patch convolution (the official overlapping variant
            uses 10; released models use 16).
        num_channels (`int`, defaults to 1): input channels.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder ViT shape.
        hidden_act (`str`, defaults to `"gelu"`), layer_norm_eps (`float`, defaults to 1e-6), qkv_bias (`bool`).
        hidden_dropout_prob, attention_probs_dropout_prob, drop_path_rate: regularisation of the encoder.
        initializer_range (`float`, defaults to 0.02): std of the normal init of mask/cls tokens.
        decoder_type (`"local"` or `"global"`): `"local"` is the shifted-window decoder of the paper (Swin-V2-CR
            blocks with cosine attention), `"global"` a plain ViT decoder.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            decoder shape. The official local decoder always has 16 layers with 16 heads whatever its arguments say;
            the conversion code sets these fields accordingly.
        decoder_window_size (`list[int]`, defaults to `[4, 4]`): local-decoder window (time, freq) in tokens.
        decoder_shift_size (`list[int]`, defaults to `[2, 0]`): shift of odd local-decoder blocks (time only).
        decoder_meta_hidden_size (`int`, defaults to 384): hidden width of the relative-position MLP.
        decoder_meta_dropout (`float`, defaults to 0.1): dropout inside that MLP (hard-coded 0.1 officially).
        mask_ratio (`float`, defaults to 0.8): pretraining mask ratio (unstructured random masking).
        norm_pix_loss (`bool`, defaults to `True`): per-patch normalised targets.
        mask_time_prob, mask_freq_prob (`float`, default 0.0): fine-tuning token dropping (whole time rows and
            mel columns), active only in training. The official AudioSet recipe uses 0.2 / 0.2.
        use_mean_pooling (`bool`, defaults to `True`): classify from `fc_norm(mean(patch tokens))` (official
            `global_pool`); otherwise from the final-normed cls token.
        classifier_dropout (`float`, defaults to 0.0): dropout before the classification head.
    """

    model_type = "maskedav_audiomae"

    num_mel_bins: int = 128
    max_length: int = 1024
    patch_size: int = 16
    patch_stride: int = 16
    num_channels: int = 1
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    decoder_type: Literal["local", "global"] = "local"
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 16
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    decoder_window_size: list[int] | tuple[int, int] = (4, 4)
    decoder_shift_size: list[int] | tuple[int, int] = (2, 0)
    decoder_meta_hidden_size: int = 384
    decoder_meta_dropout: float = 0.1
    mask_ratio: float = 0.8
    norm_pix_loss: bool = True
    mask_time_prob: float = 0.0
    mask_freq_prob: float = 0.0
    use_mean_pooling: bool = True
    classifier_dropout: float = 0.0

    @property
    def grid_size(self) -> tuple[int, int]:
        """Token grid ``(time, freq)`` for an input of ``max_length x num_mel_bins``."""
        return (
            (self.max_length - self.patch_size) // self.patch_stride + 1,
            (self.num_mel_bins - self.patch_size) // self.patch_stride + 1,
        )

    @property
    def num_patches(self) -> int:
        time, freq = self.grid_size
        return time * freq

    def validate_architecture(self):
        """Checked at construction: sizes that the model cannot be built with."""
        check_divisible(
            self, ("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")
        )
        if self.hidden_size % 4 or self.decoder_hidden_size % 4:
            raise ValueError("hidden_size and decoder_hidden_size must be divisible by 4 (2-D sin-cos position table)")
        if self.max_length < self.patch_size or self.num_mel_bins < self.patch_size:
            raise ValueError(
                f"the input ({self.max_length} frames x {self.num_mel_bins} mel bins) is smaller than one patch "
                f"({self.patch_size})"
            )
        if self.decoder_type == "local":
            grid = self.grid_size
            window = tuple(min(g, w) for g, w in zip(grid, self.decoder_window_size))
            if any(g % w for g, w in zip(grid, window)):
                raise ValueError(f"token grid {grid} is not divisible by decoder_window_size {tuple(self.decoder_window_size)}")
        check_ranges(self, [(("mask_ratio", "mask_time_prob", "mask_freq_prob"), UNIT_INTERVAL)])


__all__ = ["AudioMAEConfig"]
