"""MAE-ST configuration (``model_type="maskedav_mae_st"``)."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import UNIT_INTERVAL, check_divisible, check_ranges


@strict
class MAESTConfig(PreTrainedConfig):
    r"""Configuration of MAE-ST ("Masked Autoencoders As Spatiotemporal Learners", Feichtenhofer, Fan, Li, He,
    NeurIPS 2022; official code facebookresearch/mae_st and facebookresearch/SlowFast ``projects/mae``).

    The defaults describe the released ViT-L (16 frames of 224x224, tubelets 2x16x16, decoder 512 wide and 4 deep,
    90% random space-time masking, 8 target frames). ViT-B: 768 wide, 12 layers, 12 heads; ViT-H: 1280 wide,
    32 layers, 16 heads, patch 16 (the released ViT-H; ``models_mae.mae_vit_huge_patch14`` says 14).

    Args:
        image_size (`int`, defaults to 224): (square) frame size the spatial position table is built for.
        patch_size (`int`, defaults to 16): spatial side of a tubelet.
        num_channels (`int`, defaults to 3): input channels.
        num_frames (`int`, defaults to 16): frames per clip the temporal position table is built for.
        tubelet_size (`int`, defaults to 2): temporal depth of a tubelet (official `t_patch_size`).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder ViT shape.
        hidden_act (`str`, defaults to `"gelu"`), layer_norm_eps (`float`, defaults to 1e-6).
        qkv_bias (`bool`, defaults to `True`): biases of the q, k, v projections (official `not no_qkv_bias`).
        hidden_dropout_prob, attention_probs_dropout_prob, drop_path_rate: encoder regularisation.
        initializer_range (`float`, defaults to 0.02): std of the position tables, cls and mask tokens.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size:
            pretraining decoder shape (mae_st CLI: 512 wide, 4 deep, 16 heads).
        pred_t_dim (`int`, defaults to 8): frames of the clip the decoder reconstructs. Each token predicts
            `tubelet_size * pred_t_dim // num_frames` frames, taken at `linspace(0, T - 1, pred_t_dim).long()`.
        mask_ratio (`float`, defaults to 0.9): random space-time-agnostic masking; `int(L * (1 - ratio))` kept.
        norm_pix_loss (`bool`, defaults to `True`): per-token normalised targets `(x - mean) / sqrt(var + 1e-6)`.
        classifier_dropout (`float`, defaults to 0.5): dropout before the head (official `--dropout`; FINETUNE.md
            uses 0.3).
        head_init_std (`float`, defaults to 2e-5): std of the fresh classification head (main_finetune.py re-inits
            it with `trunc_normal_(std=2e-5)`).
    """

    model_type = "maskedav_mae_st"

    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 16
    tubelet_size: int = 2
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 4
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    pred_t_dim: int = 8
    mask_ratio: float = 0.9
    norm_pix_loss: bool = True
    classifier_dropout: float = 0.5
    head_init_std: float = 2e-5

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of a configured clip."""
        side = self.image_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid_size
        return t * h * w

    @property
    def frames_per_prediction(self) -> int:
        """Frames each decoder token predicts (official ``t_pred_patch_size``)."""
        return self.tubelet_size * self.pred_t_dim // self.num_frames

    def validate_architecture(self):
        """Checked at construction: sizes that the model cannot be built with."""
        check_divisible(
            self, ("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")
        )
        check_divisible(self, ("image_size", "patch_size"))
        if self.num_frames % self.tubelet_size or self.num_frames < self.tubelet_size:
            raise ValueError(f"num_frames {self.num_frames} is not a positive multiple of tubelet_size {self.tubelet_size}")
        grid_t = self.num_frames // self.tubelet_size
        if self.pred_t_dim % grid_t or not 1 <= self.pred_t_dim // grid_t <= self.tubelet_size:
            raise ValueError(
                f"pred_t_dim {self.pred_t_dim} must be a multiple of the {grid_t} temporal tokens and at most "
                f"num_frames ({self.num_frames}): each token predicts pred_t_dim / {grid_t} frames"
            )
        check_ranges(self, [(("mask_ratio",), UNIT_INTERVAL)])


__all__ = ["MAESTConfig"]
