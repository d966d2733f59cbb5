"""VideoMAE configuration (``model_type="maskedav_videomae"``; transformers' own ``videomae`` is left alone)."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import UNIT_INTERVAL, check_divisible, check_ranges

# The official engine (engine_for_pretraining.py) un-normalises the input with these before building the target.
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (list, tuple)) else (int(value), int(value))


@strict
class MaskedAVVideoMAEConfig(PreTrainedConfig):
    r"""Configuration of a VideoMAE ("VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised
    Video Pre-Training", Tong et al., NeurIPS 2022; official code MCG-NJU/VideoMAE) or a VideoMAE V2 ("VideoMAE V2:
    Scaling Video Masked Autoencoders with Dual Masking", Wang et al., CVPR 2023; official code OpenGVLab/VideoMAEv2).

    V2 is the same model with **dual masking**: besides the encoder's tube mask, a running-cell mask chooses which
    tokens the decoder reconstructs (``decoder_mask_ratio > 0``; the released V2 scripts use 0.5). With
    ``decoder_mask_ratio=0`` (the official argparse default) it is VideoMAE V1.

    The defaults describe the released ViT-B (16 frames of 224x224, tubelets 2x16x16, decoder 384 wide and 4 deep).
    Other released shapes (encoder / decoder): ViT-S 384-12-6 / 192-4-3, ViT-L 1024-24-16 / 512-12-8,
    ViT-H 1280-32-16 / 640-12-8; VideoMAE V2 ViT-g: 1408 wide, 40 layers, 16 heads, intermediate 6144, patch 14.

    Args:
        image_size (`int` or `(int, int)`, defaults to 224): frame size the position table is built for.
        patch_size (`int`, defaults to 16): spatial side of a tubelet.
        num_channels (`int`, defaults to 3): input channels.
        num_frames (`int`, defaults to 16): frames per clip the position table is built for.
        tubelet_size (`int`, defaults to 2): temporal depth of a tubelet.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder ViT shape.
        hidden_act (`str`, defaults to `"gelu"`).
        layer_norm_eps (`float`, defaults to 1e-6): eps of every LayerNorm of the official model. Checkpoints in
            transformers' format use 1e-12 in the transformer blocks (see `head_layer_norm_eps`).
        head_layer_norm_eps (`float`, *optional*): eps of the decoder's final norm and of `fc_norm`; defaults to
            `layer_norm_eps`. transformers' VideoMAE builds these two with `nn.LayerNorm`'s default 1e-5.
        qkv_bias (`bool`, defaults to `True`): learned `q_bias` and `v_bias`; the key never has a bias (official).
        hidden_dropout_prob, attention_probs_dropout_prob, drop_path_rate: encoder regularisation.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal inits.
        position_interpolation (`"regenerate"` or `"trilinear"`): how the fixed 1-D sinusoid table follows a clip
            whose frame count or resolution differs from the config. `"regenerate"` (official fine-tuning code)
            builds the 1-D table for the new token count; `"trilinear"` resizes the configured table over the
            (time, height, width) token grid.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            pretraining decoder shape.
        mask_type (`"tube"` or `"random"`): masks drawn by the pretraining model when none is given. `"tube"`
            (VideoMAE): one spatial mask repeated over time, `int(mask_ratio * H'W')` cells per time slice; `"random"`
            (VideoMAE V2 option): `int(mask_ratio * L)` tokens anywhere.
        mask_ratio (`float`, defaults to 0.9).
        decoder_mask_type (`"run_cell"`): VideoMAE V2's decoder mask (official ``--decoder_mask_type run_cell``; the
            official ``random`` choice raises NotImplementedError there and is not offered here).
        decoder_mask_ratio (`float`, defaults to 0.0): fraction of tokens the decoder does *not* reconstruct (drawn
            when no ``decode_masked_pos`` is given). 0 turns dual masking off (V1); otherwise ``int(4 * ratio)`` must
            be 1, 2 or 3. The loss then counts the tokens that are masked for the encoder and reconstructed.
        norm_pix_loss (`bool`, defaults to `True`): normalise each tubelet per channel, `(x - mean) / (std + 1e-6)`
            (official `normlize_target`).
        pixel_mean, pixel_std (`list[float]`): statistics the input was normalised with; the target is computed
            on the un-normalised pixels `x * std + mean`, as the official engine does (ImageNet statistics).
        use_mean_pooling (`bool`, defaults to `True`): classify from `fc_norm(mean of all tokens)` (official);
            otherwise from the first token after the final norm.
        use_final_norm (`bool`, *optional*): whether the encoder ends with a LayerNorm. `None` (official): the
            pretraining model and the bare encoder have it, the classifier only without mean pooling. transformers'
            VideoMAE has it exactly when `use_mean_pooling=False`; the converter sets this field to match.
        classifier_dropout (`float`, defaults to 0.0): dropout before the head (official `fc_drop_rate`).
        head_init_scale (`float`, defaults to 0.001): the fresh classification head is scaled by this (official
            `init_scale`).
    """

    model_type = "maskedav_videomae"

    image_size: int | list[int] | tuple[int, int] = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 16
    tubelet_size: int = 2
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    head_layer_norm_eps: float | None = None
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    position_interpolation: Literal["regenerate", "trilinear"] = "regenerate"
    decoder_hidden_size: int = 384
    decoder_num_hidden_layers: int = 4
    decoder_num_attention_heads: int = 6
    decoder_intermediate_size: int = 1536
    mask_type: Literal["tube", "random"] = "tube"
    mask_ratio: float = 0.9
    decoder_mask_type: Literal["run_cell"] = "run_cell"
    decoder_mask_ratio: float = 0.0
    norm_pix_loss: bool = True
    pixel_mean: list[float] | tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    pixel_std: list[float] | tuple[float, ...] = IMAGENET_DEFAULT_STD
    use_mean_pooling: bool = True
    use_final_norm: bool | None = None
    classifier_dropout: float = 0.0
    head_init_scale: float = 0.001

    @property
    def image_hw(self) -> tuple[int, int]:
        return _pair(self.image_size)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of a configured clip."""
        height, width = self.image_hw
        return (self.num_frames // self.tubelet_size, height // self.patch_size, width // self.patch_size)

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid_size
        return t * h * w

    @property
    def head_norm_eps(self) -> float:
        return self.layer_norm_eps if self.head_layer_norm_eps is None else self.head_layer_norm_eps

    def validate_architecture(self):
        """Checked at construction: sizes that the model cannot be built with."""
        check_divisible(
            self, ("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")
        )
        height, width = self.image_hw
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.num_frames % self.tubelet_size or self.num_frames < self.tubelet_size:
            raise ValueError(f"num_frames {self.num_frames} is not a positive multiple of tubelet_size {self.tubelet_size}")
        check_ranges(self, [(("mask_ratio",), UNIT_INTERVAL)])
        if self.decoder_mask_ratio and not 0 < int(4 * self.decoder_mask_ratio) < 4:
            raise ValueError(
                f"decoder_mask_ratio must be 0 (no decoder masking) or drop 1-3 of the 4 positions of a running cell "
                f"(0.25, 0.5, 0.75), got {self.decoder_mask_ratio}"
            )
        if len(self.pixel_mean) != self.num_channels or len(self.pixel_std) != self.num_channels:
            raise ValueError(
                f"pixel_mean and pixel_std need one value per channel ({self.num_channels}), got "
                f"{list(self.pixel_mean)} and {list(self.pixel_std)}"
            )

    def check_video_processor(self, processor) -> None:
        """Start-up check that ``processor`` normalises frames with the statistics the pretraining target
        un-normalises them with (``pixel_mean``/``pixel_std``; mean 0 and std 1 for a processor that does not
        normalise). The processor's ``image_mean``/``image_std`` are what the model sees; these fields are only read
        back by the target, so a mismatch trains silently on wrong targets.

        Raises:
            ValueError: naming both sets of statistics and how to make them agree.
        """
        channels = self.num_channels
        if getattr(processor, "do_normalize", True):
            mean, std = list(processor.image_mean), list(processor.image_std)
        else:
            mean, std = [0.0] * channels, [1.0] * channels
        same = len(mean) == len(std) == channels and all(
            abs(float(a) - float(b)) <= 1e-6 for a, b in zip(mean + std, list(self.pixel_mean) + list(self.pixel_std))
        )
        if not same:
            raise ValueError(
                f"the video processor normalises frames with mean {mean} and std {std}, but the model's pretraining "
                f"target un-normalises them with config.pixel_mean {list(self.pixel_mean)} and config.pixel_std "
                f"{list(self.pixel_std)}; build the processor with image_mean=config.pixel_mean and "
                "image_std=config.pixel_std (or set the config's fields to the processor's)"
            )


__all__ = ["MaskedAVVideoMAEConfig"]
