"""Pieces the video and audio-visual training scripts share: model presets and their processors, layer ids for
layer-wise learning-rate decay, mixup/cutmix with label smoothing, soft-target losses, atomic model saving.
"""

from __future__ import annotations

import copy
import os
import re
import shutil

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------------------------------
# Presets: "<family>-<size>" -> (model_type, config fields, processor fields)
# ---------------------------------------------------------------------------------------------------------------------

# The tiny presets fit the built-in demo clips (32 frames of 64x48 at 12 fps): 8 frames taken every 2 source frames
# (1.25 s), 32x32 crops, 8x8 patches and 2-frame tubelets -> 4x4x4 = 64 tokens. They pretrain on 2 CPU cores in a few
# minutes. Mask ratios are lower than the papers' 90% (VideoMAE, MAE-ST): with 16 spatial cells per time step, 90%
# would leave one or two visible cells per frame.
_TINY_VIDEO = dict(num_frames=8, tubelet_size=2, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                   intermediate_size=512)
_TINY_DECODER = dict(decoder_hidden_size=64, decoder_num_hidden_layers=2, decoder_num_attention_heads=4,
                     decoder_intermediate_size=256)
_TINY_PROCESSOR = dict(num_frames=8, frame_sampling_rate=2, size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32})
_TINY_PROCESSOR_64 = dict(num_frames=8, frame_sampling_rate=2, size={"shortest_edge": 64},
                          crop_size={"height": 64, "width": 64})

VIDEO_PRESETS: dict[str, tuple[str, dict, dict]] = {
    "videomae-tiny": ("maskedav_videomae", dict(image_size=32, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                                mask_ratio=0.75), _TINY_PROCESSOR),
    "videomae-small": ("maskedav_videomae", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                                 intermediate_size=1536, decoder_hidden_size=192,
                                                 decoder_num_attention_heads=3, decoder_intermediate_size=768), {}),
    "videomae-base": ("maskedav_videomae", {}, {}),
    # VideoMAE V2: the same shapes with dual masking, running-cell decoder mask 0.5 (all released V2 pretraining
    # scripts: --decoder_mask_type run_cell --decoder_mask_ratio 0.5)
    "videomae_v2-tiny": ("maskedav_videomae", dict(image_size=32, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                                   mask_ratio=0.75, decoder_mask_ratio=0.5), _TINY_PROCESSOR),
    "videomae_v2-small": ("maskedav_videomae", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                                    intermediate_size=1536, decoder_hidden_size=192,
                                                    decoder_num_attention_heads=3, decoder_intermediate_size=768,
                                                    decoder_mask_ratio=0.5), {}),
    "videomae_v2-base": ("maskedav_videomae", dict(decoder_mask_ratio=0.5), {}),
    "mae_st-tiny": ("maskedav_mae_st", dict(image_size=32, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER, pred_t_dim=8,
                                            mask_ratio=0.75), _TINY_PROCESSOR),
    "mae_st-base": ("maskedav_mae_st", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                            intermediate_size=3072), {}),
    "mae_st-large": ("maskedav_mae_st", {}, {}),
    "maskfeat-tiny": ("maskedav_maskfeat", dict(
        backbone="vit", image_size=32, num_frames=8, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8],
        patch_padding=[0, 0, 0], hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
        separate_position_embeddings=True, hog_cell_size=4, mask_window_size=[4, 4, 4], mask_ratio=0.4,
        image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225],
    ), dict(_TINY_PROCESSOR, size={"shortest_edge": 36})),  # SlowFast: short side 256 for 224 crops
    # For small frames with a small object (the demo's "objects" variant, 64x64 at 8 fps): keep the full 64x64
    # resolution (a 32x32 resize leaves the object ~6 px, too few for its shape), 8x8 patches, 8 frames every 2
    # (1.9 s at 8 fps) -> 8x8x4 = 256 tokens; mask ratio 0.9 as the papers (64 cells per time step leave ~6 visible).
    "videomae-tiny-64": ("maskedav_videomae", dict(image_size=64, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                                   mask_ratio=0.9), _TINY_PROCESSOR_64),
    "mae_st-tiny-64": ("maskedav_mae_st", dict(image_size=64, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                               pred_t_dim=8, mask_ratio=0.9), _TINY_PROCESSOR_64),
    "maskfeat-mvitv2-small": ("maskedav_maskfeat", {"preset": "mvitv2-small-16x4-pretrain"}, {}),
    "maskfeat-mvitv2-large": ("maskedav_maskfeat", {"preset": "mvitv2-large-16x4-pretrain"}, {}),
}

_TINY_AV = dict(
    num_mel_bins=64, max_length=128, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
    tubelet_size=2, hidden_size=128, num_attention_heads=4, intermediate_size=512, audio_num_hidden_layers=3,
    video_num_hidden_layers=3, fusion_num_hidden_layers=1, decoder_hidden_size=64, decoder_num_hidden_layers=2,
    decoder_num_attention_heads=4, decoder_intermediate_size=256,
)
# MAViL's video processor takes num_frames at fps frames per second from the start of the clip; at the demo's 12 fps,
# 6 fps is every second frame, as the video presets.
_TINY_AV_PROCESSOR = dict(num_frames=8, fps=6.0, size={"height": 32, "width": 32})
AUDIOVISUAL_PRESETS: dict[str, tuple[dict, dict, dict]] = {
    # name: (MAViLConfig fields, video processor fields, feature extractor fields)
    # The paper's inter-modal InfoNCE weight (0.01, temperature 0.05) is tuned for long runs with large batches; over a
    # few hundred steps of 16 clips it stays at chance (ln 16) and the retrieval it should teach never appears. The
    # demo preset weights it 0.5 at temperature 0.1 (docs/training_video.md has the measurements).
    "mavil-tiny": (dict(_TINY_AV, inter_contrastive_weight=0.5, inter_contrastive_temperature=0.1), _TINY_AV_PROCESSOR,
                   dict(num_mel_bins=64, max_length=128)),
    # Georgescu et al.'s joint AV-MAE (no cls tokens, no contrastive terms, raw targets, 0.5/0.5 reconstruction)
    # with one decoder over both modalities' tokens; the other AV-MAE variants are command-line switches.
    "avmae-tiny": (dict(_TINY_AV, use_cls_token=False, inter_contrastive_weight=0.0, intra_contrastive_weight=0.0,
                        audio_norm_pix_loss=False, video_norm_pix_loss=False, audio_reconstruction_weight=0.5,
                        video_reconstruction_weight=0.5, decoder_type="joint", use_modality_embeddings=True),
                   _TINY_AV_PROCESSOR, dict(num_mel_bins=64, max_length=128)),
    # the demo's "objects" variant (64x64 at 8 fps): full resolution, 4 frames at 4 fps (1 s, 4x8x8 = 128 tokens),
    # masks 0.5 / 0.5 (at 0.8 the small object and the short word are hidden from most masked views), inter-modal
    # weight 1.0 at 0.1: the measured best on that variant (audio probe 50.7 % and fused 47.3 % against 27-31 % and
    # 20-23 % random; docs/training_video.md, "Small-data recipe")
    "mavil-tiny-64": (dict(_TINY_AV, image_size=64, num_frames=4, audio_mask_ratio=0.5, video_mask_ratio=0.5,
                           inter_contrastive_weight=1.0, inter_contrastive_temperature=0.1),
                      dict(_TINY_AV_PROCESSOR, num_frames=4, fps=4.0, size={"height": 64, "width": 64}),
                      dict(num_mel_bins=64, max_length=128)),
    "mavil-base": ({}, {}, {}),
}

PRETRAINING_FAMILIES = {"videomae": "maskedav_videomae", "videomae_v2": "maskedav_videomae", "mae_st": "maskedav_mae_st",
                        "maskfeat": "maskedav_maskfeat"}


def _family_classes(model_type: str):
    from .. import (
        MAESTConfig,
        MAESTVideoProcessor,
        MaskedAVVideoMAEConfig,
        MaskedAVVideoMAEVideoProcessor,
        MaskFeatConfig,
        MaskFeatVideoProcessor,
    )

    table = {
        "maskedav_videomae": (MaskedAVVideoMAEConfig, MaskedAVVideoMAEVideoProcessor),
        "maskedav_mae_st": (MAESTConfig, MAESTVideoProcessor),
        "maskedav_maskfeat": (MaskFeatConfig, MaskFeatVideoProcessor),
    }
    if model_type not in table:
        raise ValueError(f"not a video pretraining family: {model_type!r}; expected one of {sorted(table)}")
    return table[model_type]


def build_video_config(config_name: str, **overrides):
    """A video config from a preset name (``"videomae-tiny"``, ``"mae_st-base"``, ``"maskfeat-mvitv2-small"``...),
    a local folder / config JSON, or a Hub id; ``overrides`` set config fields."""
    if config_name in VIDEO_PRESETS:
        model_type, fields, _ = VIDEO_PRESETS[config_name]
        config_class, _ = _family_classes(model_type)
        fields = dict(fields)
        preset = fields.pop("preset", None)
        if preset is not None:
            return config_class.from_preset(preset, **{**fields, **overrides})
        return config_class(**{**fields, **overrides})
    from transformers import AutoConfig

    import hf_maskedav  # noqa: F401  (registers the model types)

    config = AutoConfig.from_pretrained(config_name)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def video_processor_for(config, config_name: str | None = None, processor_name: str | None = None):
    """The video processor a model trains with: loaded from ``processor_name`` (a folder or Hub id with a saved
    processor), else the family's processor with the preset's fields (tiny presets: 8 frames every 2, 32x32),
    the config's frame count and input size otherwise."""
    model_type = config.model_type
    _, processor_class = _family_classes(model_type)
    if processor_name:
        return processor_class.from_pretrained(processor_name)
    if config_name in VIDEO_PRESETS and VIDEO_PRESETS[config_name][2]:
        return processor_class(**VIDEO_PRESETS[config_name][2])
    side = int(config.image_size if not isinstance(config.image_size, (list, tuple)) else config.image_size[0])
    fields = dict(num_frames=int(config.num_frames), crop_size={"height": side, "width": side})
    if model_type == "maskedav_maskfeat":
        fields["size"] = {"shortest_edge": int(side * 256 / 224)}
        fields["image_mean"], fields["image_std"] = list(config.image_mean), list(config.image_std)
    else:
        fields["size"] = {"shortest_edge": side}
    return processor_class(**fields)


def has_saved_processor(name: str | None) -> bool:
    """True for a Hub id, or a folder holding a saved processor (video processor, feature extractor or processor)."""
    if not name:
        return False
    if os.path.isdir(name):
        files = ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        return any(os.path.isfile(os.path.join(name, f)) for f in files)
    return not os.path.exists(name)


def build_audiovisual_config(config_name: str, **overrides):
    """A MAViL config from ``mavil-tiny`` / ``avmae-tiny`` / ``mavil-base``, a folder or a Hub id."""
    from ..models.mavil import MAViLConfig

    if config_name in AUDIOVISUAL_PRESETS:
        return MAViLConfig(**{**AUDIOVISUAL_PRESETS[config_name][0], **overrides})
    from transformers import AutoConfig

    import hf_maskedav  # noqa: F401

    config = AutoConfig.from_pretrained(config_name)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def audiovisual_processor_for(config, config_name: str | None = None, processor_name: str | None = None,
                              video_fps: float | None = None):
    """``MAViLProcessor`` (fbank feature extractor + video processor) matching a MAViL config.

    Loaded from ``processor_name``, else built from the preset's fields; either way the config decides the input
    geometry (``max_length`` and ``num_mel_bins`` of the feature extractor, ``num_frames`` and frame size of the video
    processor), so ``--clip_seconds``/``--num_frames``/``--config_overrides`` keep config and processor consistent.
    ``video_fps`` sets the rate at which the video processor takes its frames (``--video_fps``).
    """
    from ..models.audiomae import AudioMAEFeatureExtractor
    from ..models.mavil import MAViLProcessor, MAViLVideoProcessor

    side = int(config.image_size)
    if processor_name:
        processor = MAViLProcessor.from_pretrained(processor_name)
    else:
        video_fields, audio_fields = {}, {}
        if config_name in AUDIOVISUAL_PRESETS:
            _, video_fields, audio_fields = AUDIOVISUAL_PRESETS[config_name]
        processor = MAViLProcessor(AudioMAEFeatureExtractor(**audio_fields), MAViLVideoProcessor(**video_fields))
    extractor, video = processor.feature_extractor, processor.video_processor
    extractor.num_mel_bins, extractor.max_length = int(config.num_mel_bins), int(config.max_length)
    video.num_frames = int(config.num_frames)
    if (getattr(video.size, "height", None), getattr(video.size, "width", None)) != (side, side):
        from transformers.image_utils import SizeDict

        video.size = SizeDict(height=side, width=side)
    if video_fps is not None:
        video.fps = float(video_fps)
    return processor


def add_audiovisual_clip_arguments(group) -> None:
    """``--clip_seconds``, ``--num_frames``, ``--video_fps`` of the MAViL scripts: the input geometry, set on the config
    and (through :func:`audiovisual_processor_for`) on the feature extractor and the video processor alike."""
    from .clip_length import add_clip_seconds_argument

    add_clip_seconds_argument(group)
    group.add_argument("--num_frames", type=int, default=None,
                       help="frames per video clip (config num_frames and video processor; a multiple of tubelet_size)")
    group.add_argument("--video_fps", type=float, default=None,
                       help="rate at which the video processor takes the frames (clip span = num_frames / video_fps s)")


# ---------------------------------------------------------------------------------------------------------------------
# Layer-wise learning-rate decay ids
# ---------------------------------------------------------------------------------------------------------------------

_MAVIL_LAYER = re.compile(r"(?:^|\.)(audio_layers|video_layers|fusion_layers)\.(\d+)\.")


def mavil_layer_id(config):
    """``layer_id(name, num_layers)`` for MAViL: embeddings 0, modality layer ``i`` -> ``i + 1``, fusion layer ``j``
    -> ``depth + j + 1`` (``depth`` = the deeper modality stack), heads ``num_layers + 1``. Use with
    ``num_layers = mavil_num_layers(config)``."""
    depth = max(config.audio_num_hidden_layers, config.video_num_hidden_layers)

    def layer_id(name: str, num_layers: int) -> int:
        match = _MAVIL_LAYER.search(name)
        if match:
            index = int(match.group(2))
            return depth + index + 1 if match.group(1) == "fusion_layers" else index + 1
        if "embeddings" in name:
            return 0
        return num_layers + 1

    return layer_id


def mavil_num_layers(config) -> int:
    return max(config.audio_num_hidden_layers, config.video_num_hidden_layers) + config.fusion_num_hidden_layers


# ---------------------------------------------------------------------------------------------------------------------
# Mixup / cutmix and soft targets
# ---------------------------------------------------------------------------------------------------------------------


def one_hot_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Class indices ``[N]`` or multi-hot ``[N, C]`` -> float targets with label smoothing (timm convention:
    ``on = 1 - smoothing + smoothing / C``, ``off = smoothing / C``)."""
    if labels.dim() == 1:
        targets = torch.nn.functional.one_hot(labels.long(), num_classes).float()
    else:
        targets = labels.float()
    if smoothing > 0:
        off = smoothing / num_classes
        targets = targets * (1.0 - smoothing) + off
    return targets


def mix_batch(
    rng: np.random.Generator,
    pixel_values: torch.Tensor | None,
    targets: torch.Tensor,
    input_values: torch.Tensor | None = None,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
):
    """Batch mixup / cutmix (timm's ``Mixup`` in ``"batch"`` mode, used by the official video fine-tuning recipes:
    mixup 0.8, cutmix 1.0, prob 1.0, switch 0.5): every sample is mixed with the batch flipped, with one ``lam``.

    Cutmix pastes the same box on every frame of the clip and sets ``lam`` to the pasted area; audio-visual batches
    (``input_values`` given) always use mixup, on both modalities with the same ``lam``. ``targets`` (float
    ``[N, C]``, e.g. from :func:`one_hot_targets`) are mixed alike.

    Returns:
        ``(pixel_values, input_values, targets, lam)`` (new tensors; ``lam = 1`` when nothing was mixed).
    """
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or rng.random() >= prob:
        return pixel_values, input_values, targets, 1.0
    use_cutmix = pixel_values is not None and input_values is None and cutmix_alpha > 0 and (
        mixup_alpha <= 0 or rng.random() < switch_prob)
    if use_cutmix:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        height, width = pixel_values.shape[-2:]
        cut = np.sqrt(1.0 - lam)
        ch, cw = int(height * cut), int(width * cut)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = np.clip(cy - ch // 2, 0, height), np.clip(cy + ch // 2, 0, height)
        left, right = np.clip(cx - cw // 2, 0, width), np.clip(cx + cw // 2, 0, width)
        mixed = pixel_values.clone()
        mixed[..., top:bottom, left:right] = pixel_values.flip(0)[..., top:bottom, left:right]
        lam = 1.0 - float((bottom - top) * (right - left)) / (height * width)
        pixel_values = mixed
    else:
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        if pixel_values is not None:
            pixel_values = pixel_values * lam + pixel_values.flip(0) * (1.0 - lam)
        if input_values is not None:
            input_values = input_values * lam + input_values.flip(0) * (1.0 - lam)
    targets = targets * lam + targets.flip(0) * (1.0 - lam)
    return pixel_values, input_values, targets, lam


def soft_target_loss(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Cross-entropy with soft targets (single-label), or BCE with logits (multi-label)."""
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
    return torch.sum(-targets.to(logits.dtype) * torch.log_softmax(logits, dim=-1), dim=-1).mean()


# ---------------------------------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------------------------------


def save_model_and_processors(accelerator, model, folder: str, processors=(), atomic: bool = True) -> None:
    """``save_pretrained`` of the (wrapped) model and its processors into ``folder`` (call on every process).

    With ``atomic`` it writes into ``folder.tmp`` and renames it when complete, so a crash never leaves a
    half-written model that looks valid.
    """
    target = folder + ".tmp" if atomic else folder
    if accelerator.is_main_process and atomic and os.path.exists(target):
        shutil.rmtree(target)
    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(
        target, is_main_process=accelerator.is_main_process, save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        for processor in processors:
            if processor is not None:
                processor.save_pretrained(target)
        if atomic:
            if os.path.exists(folder):
                stale = folder + ".old"
                shutil.rmtree(stale, ignore_errors=True)
                os.replace(folder, stale)
                os.replace(target, folder)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.replace(target, folder)
    accelerator.wait_for_everyone()


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A detached, frozen, eval-mode deep copy (e.g. a stage-2 teacher)."""
    teacher = copy.deepcopy(module)
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


__all__ = [
    "AUDIOVISUAL_PRESETS",
    "add_audiovisual_clip_arguments",
    "PRETRAINING_FAMILIES",
    "VIDEO_PRESETS",
    "audiovisual_processor_for",
    "build_audiovisual_config",
    "build_video_config",
    "frozen_copy",
    "has_saved_processor",
    "mavil_layer_id",
    "mavil_num_layers",
    "mix_batch",
    "one_hot_targets",
    "save_model_and_processors",
    "soft_target_loss",
    "video_processor_for",
]
