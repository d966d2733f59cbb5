"""MaskFeat configuration (ViT and MViTv2 backbones)."""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import check_divisible


def _official_pool_q(strides: list[tuple[int, int, int]]) -> list[list[int]]:
    """``[[block, t, h, w], ...]`` listing every block, as the official MViTv2 yaml files do."""
    return [[i, *s] for i, s in enumerate(strides)]


# Official SlowFast configurations (configs/masked_ssl/*.yaml). "-pretrain" variants keep the last stage at 14x14
# for the HOG head (the yaml comment "[14, 1, 1, 1] instead of [14, 1, 2, 2] for 14x14 output").
_MVIT_S = dict(
    backbone="mvit", image_size=224, num_frames=16,
    patch_kernel_size=[3, 7, 7], patch_stride=[2, 4, 4], patch_padding=[1, 3, 3],
    hidden_size=96, num_hidden_layers=16, num_attention_heads=1,
    dim_mul=[[1, 2.0], [3, 2.0], [14, 2.0]], head_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
    pool_kernel_size=[3, 3, 3], pool_kv_stride_adaptive=[1, 8, 8],
    use_absolute_position_embeddings=False, rel_pos_spatial=True, rel_pos_temporal=True, residual_pooling=True,
    image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225],
)
_MVIT_L = dict(
    _MVIT_S, hidden_size=144, num_hidden_layers=48, num_attention_heads=2,
    dim_mul=[[2, 2.0], [8, 2.0], [44, 2.0]], head_mul=[[2, 2.0], [8, 2.0], [44, 2.0]],
)
_VIT_IMAGE = dict(
    backbone="vit", image_size=224, num_frames=1,
    patch_kernel_size=[16, 16], patch_stride=[16, 16], patch_padding=[0, 0],
    use_absolute_position_embeddings=True, separate_position_embeddings=False,
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
)
PRESETS: dict[str, dict] = {
    "vit-base-in1k": dict(_VIT_IMAGE, hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    "vit-large-in1k": dict(_VIT_IMAGE, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
    "mvitv2-small-16x4-pretrain": dict(
        _MVIT_S, pool_q_stride=_official_pool_q([(1, 1, 1), (1, 2, 2), (1, 1, 1), (1, 2, 2)] + [(1, 1, 1)] * 12)
    ),
    "mvitv2-small-16x4": dict(
        _MVIT_S,
        pool_q_stride=_official_pool_q(
            [(1, 1, 1), (1, 2, 2), (1, 1, 1), (1, 2, 2)] + [(1, 1, 1)] * 10 + [(1, 2, 2), (1, 1, 1)]
        ),
    ),
    "mvitv2-large-16x4-pretrain": dict(
        _MVIT_L, pool_q_stride=_official_pool_q([(1, 1, 1)] * 2 + [(1, 2, 2)] + [(1, 1, 1)] * 5 + [(1, 2, 2)] + [(1, 1, 1)] * 39)
    ),
    "mvitv2-large-16x4": dict(
        _MVIT_L,
        pool_q_stride=_official_pool_q(
            [(1, 1, 1)] * 2 + [(1, 2, 2)] + [(1, 1, 1)] * 5 + [(1, 2, 2)] + [(1, 1, 1)] * 35 + [(1, 2, 2)] + [(1, 1, 1)] * 3
        ),
    ),
}


@strict
class MaskFeatConfig(PreTrainedConfig):
    r"""Configuration of MaskFeat ("Masked Feature Prediction for Self-Supervised Visual Pre-Training", Wei et al.,
    CVPR 2022) with a plain ViT backbone (images, or video with 3-D patches) or an MViTv2 backbone (video).

    The defaults describe the official ViT-B ImageNet pre-training model (``in1k_VIT_B_MaskFeat_PT.yaml``).
    :meth:`from_preset` gives the other official shapes (MViTv2-S/L 16x4, ViT-L). Field names follow SlowFast's
    ``cfg.MVIT`` / ``cfg.MASK`` options where a counterpart exists (named in brackets).

    Args:
        backbone (`"vit"` or `"mvit"`): plain ViT, or MViTv2 with pooling attention.
        image_size (`int`, defaults to 224): square input side (``DATA.TRAIN_CROP_SIZE``).
        num_frames (`int`, defaults to 1): input frames (``DATA.NUM_FRAMES``); 1 for images (2-D patches).
        num_channels (`int`, defaults to 3): input channels.
        patch_kernel_size, patch_stride, patch_padding (`list[int]`): the patch convolution (``PATCH_KERNEL``,
            ``PATCH_STRIDE``, ``PATCH_PADDING``); two entries = 2-D patches (images), three = 3-D (video, time first).
        hidden_size (`int`, defaults to 768): width at the stem (``EMBED_DIM``).
        num_hidden_layers (`int`, defaults to 12): blocks (``DEPTH``).
        num_attention_heads (`int`, defaults to 12): heads at the stem (``NUM_HEADS``).
        mlp_ratio (`float`, defaults to 4.0): MLP width / block input width.
        qkv_bias (`bool`), hidden_act (`str`), layer_norm_eps (`float`, defaults to 1e-6).
        hidden_dropout_prob (`float`): dropout after the position embedding, attention projection and MLP
            (``MVIT.DROPOUT_RATE``).
        drop_path_rate (`float`): stochastic depth, linearly increasing over the blocks (``DROPPATH_RATE``).
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal init.
        use_absolute_position_embeddings (`bool`): learned absolute positions (``USE_ABS_POS``).
        separate_position_embeddings (`bool`): video only: separable spatial + temporal + cls tables
            (``SEP_POS_EMBED``) instead of one ``[1, 1 + L, D]`` table.
        dim_mul, head_mul (`list[list]`): MViTv2 only: ``[[block, multiplier], ...]``; the width (heads) is
            multiplied from that block on (``DIM_MUL``, ``HEAD_MUL``).
        pool_q_stride (`list[list[int]]`): MViTv2 only: ``[[block, t, h, w], ...]`` query pooling strides
            (``POOL_Q_STRIDE``); blocks not listed do no query pooling.
        pool_kv_stride_adaptive (`list[int]`, *optional*): MViTv2 only: key/value stride of block 0, divided by
            each query stride on the way (``POOL_KV_STRIDE_ADAPTIVE``).
        pool_kv_stride (`list[list[int]]`): MViTv2 only, used when ``pool_kv_stride_adaptive`` is None.
        pool_kernel_size (`list[int]`, *optional*): MViTv2 only: kernel of the q/k/v pooling convolutions
            (``POOL_KVQ_KERNEL``); when None, ``s + 1`` for strides ``s > 1``.
        residual_pooling (`bool`): MViTv2 only: add the pooled query to the attention output.
        rel_pos_spatial, rel_pos_temporal (`bool`): MViTv2 only: decomposed relative positions.
        rel_pos_zero_init (`bool`): start the relative-position tables at zero.
        pretrain_depth (`int`, *optional*): index of the block whose output feeds the HOG head
            (``MASK.PRETRAIN_DEPTH[-1]``; None = the last block). Pre-training keeps blocks up to it only.
        hog_num_bins (`int`, 9), hog_cell_size (`int`, 8), hog_gaussian_window (`int`, 0): HOG target.
        mask_ratio (`float`, defaults to 0.4): fraction of mask units to mask (``AUG.MASK_RATIO``).
        mask_window_size (`list[int]`, *optional*): the grid the mask is drawn on: ``[h, w]`` for images (None =
            the prediction grid, as the official ImageNet loader), ``[T', h, w]`` for video (``AUG.MASK_WINDOW_SIZE``;
            None = ``[T', h/2, w/2]`` of the prediction grid, i.e. the official ``[8, 7, 7]`` for 16x224^2). The mask
            is nearest-resized to the token grids.
        max_mask_patches_per_block (`int`, *optional*): images: largest block (``AUG.MAX_MASK_PATCHES_PER_BLOCK``).
        mask_min_aspect (`float`, defaults to 0.3): smallest block aspect ratio (largest = 1 / it).
        image_mean, image_std (`list[float]`): the normalisation the model was trained with (processors use it).
        use_mean_pooling (`bool`, defaults to `True`): classify from ``norm(mean(patch tokens))``
            (``USE_MEAN_POOLING``); otherwise from ``norm(tokens)[:, 0]`` (the cls token).
        classifier_dropout (`float`): dropout before the classifier (``MODEL.DROPOUT_RATE``).
        head_init_scale (`float`, defaults to 0.001): the classifier's initial weights are scaled by it
            (``HEAD_INIT_SCALE`` of every official fine-tuning config).
    """

    model_type = "maskedav_maskfeat"

    backbone: Literal["vit", "mvit"] = "vit"
    image_size: int = 224
    num_frames: int = 1
    num_channels: int = 3
    patch_kernel_size: list[int] = field(default_factory=lambda: [16, 16])
    patch_stride: list[int] = field(default_factory=lambda: [16, 16])
    patch_padding: list[int] = field(default_factory=lambda: [0, 0])
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    hidden_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    use_absolute_position_embeddings: bool = True
    separate_position_embeddings: bool = False
    dim_mul: list[list[int | float]] = field(default_factory=list)
    head_mul: list[list[int | float]] = field(default_factory=list)
    pool_q_stride: list[list[int]] = field(default_factory=list)
    pool_kv_stride_adaptive: list[int] | None = None
    pool_kv_stride: list[list[int]] = field(default_factory=list)
    pool_kernel_size: list[int] | None = None
    residual_pooling: bool = False
    rel_pos_spatial: bool = False
    rel_pos_temporal: bool = False
    rel_pos_zero_init: bool = False
    pretrain_depth: int | None = None
    hog_num_bins: int = 9
    hog_cell_size: int = 8
    hog_gaussian_window: int = 0
    mask_ratio: float = 0.4
    mask_window_size: list[int] | None = None
    max_mask_patches_per_block: int | None = None
    mask_min_aspect: float = 0.3
    image_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    image_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    use_mean_pooling: bool = True
    classifier_dropout: float = 0.0
    head_init_scale: float = 0.001

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MaskFeatConfig":
        """An official shape: one of ``PRESETS`` (``vit-base-in1k``, ``vit-large-in1k``, ``mvitv2-small-16x4``,
        ``mvitv2-small-16x4-pretrain``, ``mvitv2-large-16x4``, ``mvitv2-large-16x4-pretrain``), with overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown MaskFeat preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    # ----------------------------------------------------------------------------------------------------------
    # Geometry
    # ----------------------------------------------------------------------------------------------------------
    @property
    def is_video(self) -> bool:
        """3-D patches (input ``[N, T, C, H, W]``) rather than 2-D ones (input ``[N, C, H, W]``)."""
        return len(self.patch_kernel_size) == 3

    @property
    def patch_stride_3d(self) -> tuple[int, int, int]:
        return tuple(self.patch_stride) if self.is_video else (1, *self.patch_stride)

    @property
    def patch_grid(self) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` after the patch convolution (``T' = 1`` for images)."""
        st, sh, sw = self.patch_stride_3d
        return (self.num_frames // st, self.image_size // sh, self.image_size // sw)

    def query_strides(self) -> list[tuple[int, int, int] | None]:
        """Per block, its query pooling stride (None when the block does no query pooling)."""
        strides: list[tuple[int, int, int] | None] = [None] * self.num_hidden_layers
        for entry in self.pool_q_stride:
            strides[int(entry[0])] = tuple(int(s) for s in entry[1:])
        return strides

    def layer_grids(self) -> list[tuple[int, int, int]]:
        """Token grid at the *output* of every block (official ``calc_mvit_feature_geometry``)."""
        grid = self.patch_grid
        grids = []
        for stride in self.query_strides():
            if stride is not None:
                grid = tuple(g // s for g, s in zip(grid, stride))
            grids.append(grid)
        return grids

    @property
    def pretrain_layer(self) -> int:
        """Index of the block that feeds the HOG prediction head."""
        return self.num_hidden_layers - 1 if self.pretrain_depth is None else self.pretrain_depth

    @property
    def prediction_grid(self) -> tuple[int, int, int]:
        """Token grid ``(T', h, w)`` of the HOG predictions (output of block ``pretrain_layer``)."""
        return self.layer_grids()[self.pretrain_layer]

    @property
    def prediction_stride(self) -> tuple[int, int]:
        """Pixels per prediction token along (height, width)."""
        _, h, w = self.prediction_grid
        return self.image_size // h, self.image_size // w

    @property
    def hog_cells_per_token(self) -> tuple[int, int]:
        sh, sw = self.prediction_stride
        return sh // self.hog_cell_size, sw // self.hog_cell_size

    @property
    def hog_target_size(self) -> int:
        """Length of one token's HOG target (108 = 3 channels x 9 bins x 2 x 2 cells officially)."""
        kh, kw = self.hog_cells_per_token
        return self.num_channels * self.hog_num_bins * kh * kw

    @property
    def mask_grid(self) -> tuple[int, ...]:
        """Grid the pre-training mask is drawn on: ``(h, w)`` for images, ``(T', h, w)`` for video."""
        t, h, w = self.prediction_grid
        if self.mask_window_size is not None:
            return tuple(self.mask_window_size)
        return (t, max(h // 2, 1), max(w // 2, 1)) if self.is_video else (h, w)

    # ----------------------------------------------------------------------------------------------------------
    # Validation
    # ----------------------------------------------------------------------------------------------------------
    def validate_architecture(self):
        """Checked at construction: sizes and option combinations the model cannot be built with."""
        dims = len(self.patch_kernel_size)
        if dims not in (2, 3) or len(self.patch_stride) != dims or len(self.patch_padding) != dims:
            raise ValueError(
                "patch_kernel_size, patch_stride and patch_padding must all have 2 entries (images) or 3 (video, "
                f"time first); got {self.patch_kernel_size}, {self.patch_stride}, {self.patch_padding}"
            )
        if dims == 2 and self.num_frames != 1:
            raise ValueError(f"2-D patches take images (num_frames=1), got num_frames={self.num_frames}")
        if self.backbone == "mvit" and dims != 3:
            raise ValueError("the MViTv2 backbone takes video: give 3-D patch_kernel_size/patch_stride/patch_padding")
        check_divisible(self, ("hidden_size", "num_attention_heads"))
        # The patch convolution must tile the input exactly (the official model asserts T, H, W == size // stride).
        sizes = (self.num_frames, self.image_size, self.image_size)[-dims:]
        for axis, size, k, s, p in zip(("frames", "height", "width")[-dims:], sizes, self.patch_kernel_size,
                                       self.patch_stride, self.patch_padding):
            if size % s or (size + 2 * p - k) // s + 1 != size // s:
                raise ValueError(
                    f"input {axis} {size} is not tiled by the patch convolution (kernel {k}, stride {s}, padding {p}); "
                    f"use a {axis} that is a multiple of {s}"
                )
        mvit_only = {
            "dim_mul": bool(self.dim_mul), "head_mul": bool(self.head_mul), "pool_q_stride": bool(self.pool_q_stride),
            "pool_kv_stride": bool(self.pool_kv_stride), "pool_kv_stride_adaptive": self.pool_kv_stride_adaptive is not None,
            "residual_pooling": self.residual_pooling, "rel_pos_spatial": self.rel_pos_spatial,
            "rel_pos_temporal": self.rel_pos_temporal,
        }
        if self.backbone == "vit":
            used = sorted(name for name, on in mvit_only.items() if on)
            if used:
                raise ValueError(f"{used} are MViTv2 options; set backbone='mvit' to use them")
        if self.separate_position_embeddings and not self.is_video:
            raise ValueError("separate_position_embeddings (space + time tables) needs 3-D (video) patches")
        depth = self.num_hidden_layers
        for name, entries, width, last in (
            ("dim_mul", self.dim_mul, 2, depth), ("head_mul", self.head_mul, 2, depth),
            ("pool_q_stride", self.pool_q_stride, 4, depth - 1), ("pool_kv_stride", self.pool_kv_stride, 4, depth - 1),
        ):
            for entry in entries:
                if len(entry) != width or not 0 <= int(entry[0]) <= last:
                    raise ValueError(f"{name} entries must be [block (0..{last}), ...{width - 1} values], got {entry}")
        for name in ("pool_kv_stride_adaptive", "pool_kernel_size"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise ValueError(f"{name} must have 3 entries (t, h, w), got {value}")
        grid = self.patch_grid
        for block, stride in enumerate(self.query_strides()):
            if stride is None:
                continue
            if any(s < 1 or g % s for g, s in zip(grid, stride)):
                raise ValueError(
                    f"block {block}: query stride {list(stride)} does not divide the token grid {list(grid)} "
                    f"(input {self.num_frames}x{self.image_size}x{self.image_size}); choose an image_size/num_frames "
                    "that the pooling strides divide"
                )
            grid = tuple(g // s for g, s in zip(grid, stride))
        if self.pretrain_depth is not None and not 0 <= self.pretrain_depth < depth:
            raise ValueError(f"pretrain_depth must be in [0, {depth - 1}], got {self.pretrain_depth}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.mask_window_size is not None and len(self.mask_window_size) != (3 if self.is_video else 2):
            raise ValueError(
                f"mask_window_size must be [T', h, w] for video or [h, w] for images, got {self.mask_window_size}"
            )
        if len(self.image_mean) != self.num_channels or len(self.image_std) != self.num_channels:
            raise ValueError(f"image_mean and image_std need {self.num_channels} values (one per channel)")

    def check_pretraining(self) -> None:
        """Extra conditions of the HOG pre-training head (checked by ``MaskFeatForPreTraining``)."""
        sh, sw = self.prediction_stride
        if sh % self.hog_cell_size or sw % self.hog_cell_size:
            raise ValueError(
                f"a prediction token covers {sh}x{sw} pixels, not a whole number of {self.hog_cell_size}x"
                f"{self.hog_cell_size} HOG cells; change hog_cell_size or the pooling strides"
            )
        t_pred = self.prediction_grid[0]
        if self.is_video and t_pred != self.patch_grid[0]:
            raise ValueError(
                "pre-training needs the same number of time steps at the patch embedding and at the prediction "
                f"block (got {self.patch_grid[0]} and {t_pred}): no temporal query pooling before pretrain_depth"
            )
        if self.is_video and self.mask_grid[0] != t_pred:
            raise ValueError(
                f"mask_window_size {list(self.mask_grid)} must have T' = {t_pred} time steps (num_frames / temporal "
                "patch stride): the official model resizes masks in space only"
            )
        if self.hog_gaussian_window and self.image_size % self.hog_gaussian_window:
            raise ValueError(f"image_size {self.image_size} is not a multiple of hog_gaussian_window")
        if min(self.mask_grid[-2:]) < 2:
            raise ValueError(
                f"mask grid {list(self.mask_grid)} is too small: the official block/cube generators only place blocks "
                "strictly smaller than the grid, so each spatial side needs at least 2 cells; set mask_window_size"
            )


__all__ = ["MaskFeatConfig", "PRESETS"]
