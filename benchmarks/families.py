"""Every pretraining family at benchmark sizes, with pinned inputs: one place that the benchmarks and the compile
tests share.

Sizes: ``test`` (a few thousand parameters, for smoke tests), ``tiny`` (ViT-Ti width), ``small`` (ViT-S), ``base``
(ViT-B), ``large`` (ViT-L). ``S``/``B``/``L``/``Ti`` are accepted as aliases. Decoders follow each family's
released recipe at ``base``/``large`` and are scaled with the encoder below that.

``make_inputs`` returns the keyword arguments of the pretraining ``forward``, masks included, so that every call of a
step sees the same work: the masks are pinned by ``noise`` (the models draw the mask from it on the device, with a
count known in advance) or by an explicit mask where the family takes one (MaskFeat's block/cube masks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import torch

SIZE_ALIASES = {"ti": "tiny", "s": "small", "b": "base", "l": "large"}

# encoder width, depth, heads
VIT = {
    "test": (32, 2, 2),
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


def canonical_size(size: str) -> str:
    size = SIZE_ALIASES.get(size.lower(), size.lower())
    if size not in VIT:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(VIT)} (or S, B, L, Ti)")
    return size


@dataclass
class InputSize:
    """Input geometry; ``None`` fields take the family's default for the size."""

    batch_size: int = 4
    num_frames: int | None = None
    image_size: int | None = None
    audio_frames: int | None = None
    mel_bins: int | None = None
    mask_ratio: float | None = None


@dataclass
class Family:
    name: str
    description: str
    build_config: Callable[[str, InputSize], object]
    model_class: Callable[[], type]
    make_inputs: Callable[[object, InputSize, torch.Generator, torch.device], dict]
    samples_per_step: Callable[[InputSize], int] = field(default=lambda size: size.batch_size)


def _vit(size: str) -> dict:
    width, depth, heads = VIT[size]
    return dict(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=4 * width)


def _rand(shape, generator, device):
    return torch.rand(*shape, generator=generator).to(device)


def _randn(shape, generator, device):
    return torch.randn(*shape, generator=generator).to(device)


# -------------------------------------------------------------------------------------------------------------- VideoMAE
def _videomae_config(size: str, inputs: InputSize, decoder_mask_ratio: float = 0.0):
    from hf_maskedav import MaskedAVVideoMAEConfig

    frames = inputs.num_frames or (4 if size == "test" else 16)
    image = inputs.image_size or (32 if size == "test" else 224)
    width = VIT[size][0]
    # Released recipes: S -> 192/3 heads/4, B -> 384/6/4, L -> 512/8/12; tiny and test scaled down.
    decoder = {"test": (16, 2, 1), "tiny": (96, 3, 4), "small": (192, 3, 4), "base": (384, 6, 4), "large": (512, 8, 12)}
    dim, heads, depth = decoder[size]
    return MaskedAVVideoMAEConfig(
        image_size=image, patch_size=16, num_frames=frames, tubelet_size=2, **_vit(size),
        decoder_hidden_size=dim, decoder_num_attention_heads=heads, decoder_num_hidden_layers=depth,
        decoder_intermediate_size=4 * dim, mask_ratio=0.9 if inputs.mask_ratio is None else inputs.mask_ratio,
        qkv_bias=True, use_mean_pooling=width > 32, decoder_mask_ratio=decoder_mask_ratio,
    )


def _videomae_v2_config(size: str, inputs: InputSize):
    """VideoMAE with V2's dual masking: running-cell decoder mask 0.5, as all released V2 pretraining scripts."""
    return _videomae_config(size, inputs, decoder_mask_ratio=0.5)


def _videomae_inputs(config, inputs: InputSize, generator, device):
    t, h, w = config.grid_size
    n = inputs.batch_size
    return {
        "pixel_values": _randn((n, config.num_frames, 3, *config.image_hw), generator, device),
        "noise": _rand((n, h * w), generator, device),  # tube masking: one value per spatial cell
    }


def _videomae_v2_inputs(config, inputs: InputSize, generator, device):
    return {
        **_videomae_inputs(config, inputs, generator, device),
        "decoder_noise": _rand((inputs.batch_size,), generator, device),  # pins the running-cell start pointer
    }


# ---------------------------------------------------------------------------------------------------------------- MAE-ST
def _mae_st_config(size: str, inputs: InputSize):
    from hf_maskedav import MAESTConfig

    frames = inputs.num_frames or (4 if size == "test" else 16)
    image = inputs.image_size or (32 if size == "test" else 224)
    # Released: decoder 512 wide, 4 blocks, 16 heads (L/H); scaled for the smaller encoders.
    decoder = {"test": (16, 2, 1), "tiny": (128, 4, 4), "small": (256, 4, 4), "base": (512, 16, 4), "large": (512, 16, 4)}
    dim, heads, depth = decoder[size]
    tubelet = 1 if frames == 1 else 2  # single frames: an image MAE (the ViTMAE comparison)
    return MAESTConfig(
        image_size=image, patch_size=16, num_frames=frames, tubelet_size=tubelet, **_vit(size),
        decoder_hidden_size=dim, decoder_num_attention_heads=heads, decoder_num_hidden_layers=depth,
        decoder_intermediate_size=4 * dim, pred_t_dim=frames // tubelet,
        mask_ratio=0.9 if inputs.mask_ratio is None else inputs.mask_ratio,
    )


def _mae_st_inputs(config, inputs: InputSize, generator, device):
    t, h, w = config.grid_size
    n = inputs.batch_size
    return {
        "pixel_values": _randn((n, config.num_frames, 3, config.image_size, config.image_size), generator, device),
        "noise": _rand((n, t * h * w), generator, device),
    }


# -------------------------------------------------------------------------------------------------------------- Audio-MAE
def _audiomae_config(size: str, inputs: InputSize):
    from hf_maskedav import AudioMAEConfig

    frames = inputs.audio_frames or (64 if size == "test" else 1024)
    mels = inputs.mel_bins or (32 if size == "test" else 128)
    patch = 8 if size == "test" else 16
    # Released: the local (shifted-window) decoder, 512 wide, 16 blocks, 16 heads.
    decoder = {"test": (32, 4, 2), "tiny": (256, 8, 16), "small": (256, 8, 16), "base": (512, 16, 16), "large": (512, 16, 16)}
    dim, heads, depth = decoder[size]
    return AudioMAEConfig(
        max_length=frames, num_mel_bins=mels, patch_size=patch, patch_stride=patch, **_vit(size),
        decoder_hidden_size=dim, decoder_num_attention_heads=heads, decoder_num_hidden_layers=depth,
        decoder_intermediate_size=4 * dim, decoder_type="local",
        mask_ratio=0.8 if inputs.mask_ratio is None else inputs.mask_ratio,
    )


def _audiomae_inputs(config, inputs: InputSize, generator, device):
    n = inputs.batch_size
    return {
        "input_values": _randn((n, config.max_length, config.num_mel_bins), generator, device),
        "noise": _rand((n, config.num_patches), generator, device),
    }


# -------------------------------------------------------------------------------------------------------------- MaskFeat
def _maskfeat_vit_config(size: str, inputs: InputSize):
    from hf_maskedav import MaskFeatConfig

    image = inputs.image_size or (32 if size == "test" else 224)
    width, depth, heads = VIT[size]
    return MaskFeatConfig.from_preset(
        "vit-base-in1k", image_size=image, hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
        mask_ratio=0.4 if inputs.mask_ratio is None else inputs.mask_ratio,
    )


def _maskfeat_mvit_config(size: str, inputs: InputSize):
    from hf_maskedav import MaskFeatConfig

    ratio = 0.4 if inputs.mask_ratio is None else inputs.mask_ratio
    if size == "test":
        return MaskFeatConfig(
            backbone="mvit", image_size=inputs.image_size or 32, num_frames=inputs.num_frames or 4,
            patch_kernel_size=[3, 7, 7], patch_stride=[2, 4, 4], patch_padding=[1, 3, 3],
            hidden_size=8, num_hidden_layers=3, num_attention_heads=1,
            dim_mul=[[1, 2.0], [2, 2.0]], head_mul=[[1, 2.0], [2, 2.0]],
            pool_q_stride=[[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1]], pool_kv_stride_adaptive=[1, 4, 4],
            pool_kernel_size=[3, 3, 3], use_absolute_position_embeddings=False,
            rel_pos_spatial=True, rel_pos_temporal=True, residual_pooling=True, mask_ratio=ratio,
        )
    preset = {"tiny": "mvitv2-small-16x4-pretrain", "small": "mvitv2-small-16x4-pretrain",
              "base": "mvitv2-small-16x4-pretrain", "large": "mvitv2-large-16x4-pretrain"}[size]
    overrides = {"mask_ratio": ratio}
    if inputs.num_frames:
        overrides["num_frames"] = inputs.num_frames
    if inputs.image_size:
        overrides["image_size"] = inputs.image_size
    return MaskFeatConfig.from_preset(preset, **overrides)


def _maskfeat_inputs(config, inputs: InputSize, generator, device):
    from hf_maskedav import MaskFeatMaskGenerator

    n = inputs.batch_size
    size = config.image_size
    if config.is_video:
        pixels = _randn((n, config.num_frames, 3, size, size), generator, device)
    else:
        pixels = _randn((n, 3, size, size), generator, device)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    mask = MaskFeatMaskGenerator(config).batch(n, random.Random(seed))
    return {"pixel_values": pixels, "bool_masked_pos": mask.to(device)}


# ---------------------------------------------------------------------------------------------------------------- MAViL
def _mavil_config(size: str, inputs: InputSize):
    from hf_maskedav import MAViLConfig

    test = size == "test"
    width, depth, heads = VIT[size]
    decoder = {"test": (32, 4, 1), "tiny": (256, 8, 4), "small": (256, 8, 8), "base": (512, 16, 8), "large": (512, 16, 8)}
    dim, dec_heads, dec_depth = decoder[size]
    ratio = inputs.mask_ratio
    return MAViLConfig(
        max_length=inputs.audio_frames or (32 if test else 1024), num_mel_bins=inputs.mel_bins or (16 if test else 128),
        audio_patch_size=8 if test else 16, num_frames=inputs.num_frames or (4 if test else 8),
        image_size=inputs.image_size or (16 if test else 224), video_patch_size=8 if test else 16, tubelet_size=2,
        hidden_size=width, num_attention_heads=heads, intermediate_size=4 * width,
        audio_num_hidden_layers=2 if test else depth, video_num_hidden_layers=2 if test else depth,
        fusion_num_hidden_layers=1 if test else 2,
        decoder_hidden_size=dim, decoder_num_attention_heads=dec_heads, decoder_num_hidden_layers=dec_depth,
        decoder_intermediate_size=4 * dim,
        audio_mask_ratio=0.8 if ratio is None else ratio, video_mask_ratio=0.8 if ratio is None else ratio,
    )


def _mavil_inputs(config, inputs: InputSize, generator, device):
    n = inputs.batch_size
    la, lv = config.num_audio_patches, config.num_video_patches
    return {
        "input_values": _randn((n, config.max_length, config.num_mel_bins), generator, device),
        "pixel_values": _randn((n, config.num_frames, 3, config.image_size, config.image_size), generator, device),
        "audio_noise": _rand((n, la), generator, device),
        "video_noise": _rand((n, lv), generator, device),
        "audio_noise_view2": _rand((n, la), generator, device),
        "video_noise_view2": _rand((n, lv), generator, device),
    }


def _cls(name):
    def get():
        import hf_maskedav

        return getattr(hf_maskedav, name)

    return get


FAMILIES: dict[str, Family] = {
    "videomae": Family(
        "videomae", "VideoMAE, tube masking, per-channel normalised pixel target",
        _videomae_config, _cls("MaskedAVVideoMAEForPreTraining"), _videomae_inputs,
    ),
    "videomae_v2": Family(
        "videomae_v2", "VideoMAE V2 dual masking: tube mask + running-cell decoder mask 0.5 (decoder sees visible + kept)",
        _videomae_v2_config, _cls("MaskedAVVideoMAEForPreTraining"), _videomae_v2_inputs,
    ),
    "mae_st": Family(
        "mae_st", "MAE-ST, random space-time masking, separable positions",
        _mae_st_config, _cls("MAESTForPreTraining"), _mae_st_inputs,
    ),
    "audiomae": Family(
        "audiomae", "Audio-MAE, 10-s fbank, local (shifted-window) decoder",
        _audiomae_config, _cls("AudioMAEForPreTraining"), _audiomae_inputs,
    ),
    "maskfeat": Family(
        "maskfeat", "MaskFeat ViT on images, HOG targets, block masks",
        _maskfeat_vit_config, _cls("MaskFeatForPreTraining"), _maskfeat_inputs,
    ),
    "maskfeat_mvit": Family(
        "maskfeat_mvit", "MaskFeat MViTv2 on video (S preset below large), HOG targets, cube masks",
        _maskfeat_mvit_config, _cls("MaskFeatForPreTraining"), _maskfeat_inputs,
    ),
    "mavil": Family(
        "mavil", "MAViL stage 1: audio + video encoders, fusion, two decoders, InfoNCE (two masked views)",
        _mavil_config, _cls("MAViLForPreTraining"), _mavil_inputs,
    ),
}


def build(family: str, size: str, inputs: InputSize, device: torch.device, seed: int = 0, attn_implementation=None):
    """``(model, config, forward kwargs)`` for ``family`` at ``size``, weights seeded by ``seed``, on ``device``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {sorted(FAMILIES)}")
    spec = FAMILIES[family]
    size = canonical_size(size)
    config = spec.build_config(size, inputs)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = spec.model_class()(config).to(device)
    generator = torch.Generator().manual_seed(seed + 1)
    return model, config, spec.make_inputs(config, inputs, generator, device)
