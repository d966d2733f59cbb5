"""MAViL checkpoints of the authors' encoder code (roger-tseng/av-superb, ``upstream_models/mavil``) -> hf_maskedav MAViL.

The av-superb code (``models_vitmm.VisionTransformerMM`` + ``expert.py``) stores ``{"model": state_dict}`` with keys
``patch_embed.proj.*``, ``cls_token``, ``pos_embed``, ``blocks.{i}.*`` (audio), ``patch_embed_v.proj.*``,
``cls_token_v``, ``pos_embed_v``, ``blocks_v.{i}.*`` (video), ``blocks_av.{i}.*`` (fusion) and, in fine-tuned files,
``fc_norm_av``/``head_av`` (audio+visual head) or ``fc_norm_a``/``head_a``/``fc_norm_v``/``head_v``.

* Layout is read from the keys: the depth of every stack from its ``.{i}.`` indices (the authors' expert guesses
  "fine-tuned" from a substring ``blocks_av.2``, which misreads a 2-fusion-layer file with a head), the heads from the
  presence of their keys, widths from tensor shapes. The attention head count is not stored in the weights and
  must be given (default: ``hidden_size // 64``, the ViT convention of the authors' factories for S/B/L).
* The position tables ``pos_embed``/``pos_embed_v`` are stored values in these files (the authors' code never
  computes them), so the converted model keeps them as stored buffers (``position_tables="stored"``). The
  converter reports how far they are from the sin-cos tables our model can build (:func:`position_table_report`).
* Strict key accounting through :class:`~hf_maskedav.conversion.utils.KeyTable`: every checkpoint key is mapped or
  explicitly ignored by the caller, every model key is filled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..models.mavil import MAViLConfig, MAViLForAudioVisualClassification, MAViLModel
from ..models.mavil.modeling_mavil import time_major_audio_table, video_table
from ..layers import audiomae_position_table
from .utils import KeyTable, load_official_checkpoint, unwrap_state_dict

# Official head key prefixes -> our head names (config.classifier_heads) and module names.
HEADS = {
    "audio_visual": ("fc_norm_av", "head_av", "audio_visual_norm", "audio_visual_classifier"),
    "audio": ("fc_norm_a", "head_a", "audio_norm", "audio_classifier"),
    "video": ("fc_norm_v", "head_v", "video_norm", "video_classifier"),
}
BLOCK_PARTS = {
    "norm1": "norm1",
    "attn.qkv": "attention.qkv_proj",
    "attn.proj": "attention.o_proj",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
STACKS = {"blocks": "audio_layers", "blocks_v": "video_layers", "blocks_av": "fusion_layers"}


def stack_depth(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of blocks of ``prefix`` (``blocks``, ``blocks_v``, ``blocks_av``) from the keys ``prefix.<i>.*``.

    The indices must be exactly ``0 .. depth-1``.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    indices = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if indices and indices != set(range(len(indices))):
        raise ValueError(f"{prefix}.* block indices are not contiguous from 0: {sorted(indices)}")
    return len(indices)


def classifier_heads(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """The heads present in a checkpoint (``audio_visual``, ``audio``, ``video``), from their keys."""
    heads = []
    for name, (norm, head, _, _) in HEADS.items():
        present = [k for k in (f"{norm}.weight", f"{norm}.bias", f"{head}.weight", f"{head}.bias") if k in state_dict]
        if present and len(present) != 4:
            raise ValueError(f"incomplete {name} head in the checkpoint: only {present}")
        if present:
            heads.append(name)
    return heads


def describe_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Everything the weights say about the architecture."""
    for key in ("cls_token", "patch_embed.proj.weight", "patch_embed_v.proj.weight", "pos_embed", "pos_embed_v"):
        if key not in state_dict:
            raise KeyError(f"{key!r} missing: this is not an av-superb MAViL checkpoint (keys: {sorted(state_dict)[:8]}...)")
    audio_conv = state_dict["patch_embed.proj.weight"]  # [D, 1, p, p]
    video_conv = state_dict["patch_embed_v.proj.weight"]  # [D, C, t, p, p]
    info = dict(
        hidden_size=int(state_dict["cls_token"].shape[-1]),
        audio_patch_size=int(audio_conv.shape[-1]),
        audio_patch_size_time=int(audio_conv.shape[-2]),
        num_channels=int(video_conv.shape[1]),
        tubelet_size=int(video_conv.shape[2]),
        video_patch_size=int(video_conv.shape[-1]),
        audio_num_hidden_layers=stack_depth(state_dict, "blocks"),
        video_num_hidden_layers=stack_depth(state_dict, "blocks_v"),
        fusion_num_hidden_layers=stack_depth(state_dict, "blocks_av"),
        num_audio_patches=int(state_dict["pos_embed"].shape[1]) - 1,
        num_video_patches=int(state_dict["pos_embed_v"].shape[1]) - 1,
        classifier_heads=classifier_heads(state_dict),
    )
    if info["audio_patch_size"] != info["audio_patch_size_time"]:
        raise ValueError(f"non-square audio patches {tuple(audio_conv.shape[-2:])} are not supported")
    if video_conv.shape[-1] != video_conv.shape[-2]:
        raise ValueError(f"non-square video patches {tuple(video_conv.shape[-2:])} are not supported")
    if info["audio_num_hidden_layers"] and "blocks.0.mlp.fc1.weight" in state_dict:
        info["intermediate_size"] = int(state_dict["blocks.0.mlp.fc1.weight"].shape[0])
        info["qkv_bias"] = "blocks.0.attn.qkv.bias" in state_dict
    if info["classifier_heads"]:
        head = HEADS[info["classifier_heads"][0]][1]
        info["num_labels"] = int(state_dict[f"{head}.weight"].shape[0])
    return info


def config_from_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    audio_size: tuple[int, int] = (1024, 128),
    video_size: tuple[int, int, int] = (8, 224, 224),
    num_attention_heads: int | None = None,
    **overrides,
) -> MAViLConfig:
    """Our config for an av-superb MAViL state dict.

    Args:
        audio_size: ``(frames, mel_bins)`` of the spectrogram the checkpoint was built for (the token grid is not
            stored: only its size is). The av-superb expert uses 1024x128.
        video_size: ``(frames, height, width)`` (the authors' ``n_frm`` and 224x224).
        num_attention_heads: not stored in the weights; ``hidden_size // 64`` when omitted.
        overrides: other config fields (e.g. ``mask_time_prob``).
    """
    info = describe_checkpoint(state_dict)
    dim = info["hidden_size"]
    fields = dict(
        max_length=int(audio_size[0]),
        num_mel_bins=int(audio_size[1]),
        audio_patch_size=info["audio_patch_size"],
        num_frames=int(video_size[0]),
        image_size=int(video_size[1]),
        video_patch_size=info["video_patch_size"],
        tubelet_size=info["tubelet_size"],
        num_channels=info["num_channels"],
        hidden_size=dim,
        num_attention_heads=num_attention_heads or max(dim // 64, 1),
        intermediate_size=info.get("intermediate_size", 4 * dim),
        qkv_bias=info.get("qkv_bias", True),
        audio_num_hidden_layers=info["audio_num_hidden_layers"],
        video_num_hidden_layers=info["video_num_hidden_layers"],
        fusion_num_hidden_layers=info["fusion_num_hidden_layers"],
        layer_norm_eps=1e-6,
        use_cls_token=True,
        position_tables="stored",
        audio_position_table=closest_audio_table(state_dict["pos_embed"], audio_size, info["audio_patch_size"]),
    )
    if video_size[1] != video_size[2]:
        raise ValueError(f"only square frames are supported, got {video_size[1]}x{video_size[2]}")
    if info["classifier_heads"]:
        fields.update(classifier_heads=info["classifier_heads"], num_labels=info["num_labels"])
    fields.update(overrides)
    config = MAViLConfig(**fields)
    if config.num_audio_patches != info["num_audio_patches"]:
        raise ValueError(
            f"the checkpoint's audio table has {info['num_audio_patches']} token rows but a {audio_size} spectrogram "
            f"with {info['audio_patch_size']}x{info['audio_patch_size']} patches gives {config.num_audio_patches}: "
            "pass the audio_size the checkpoint was trained with"
        )
    if config.num_video_patches != info["num_video_patches"]:
        raise ValueError(
            f"the checkpoint's video table has {info['num_video_patches']} token rows but {video_size} with "
            f"{config.tubelet_size}x{config.video_patch_size}x{config.video_patch_size} tubelets gives "
            f"{config.num_video_patches}: pass the video_size the checkpoint was trained with"
        )
    return config


def _audio_candidates(embed_dim: int, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    return {
        "time_major": time_major_audio_table(embed_dim, *grid),
        "audiomae": audiomae_position_table(embed_dim, *grid),
    }


def closest_audio_table(pos_embed: torch.Tensor, audio_size, patch: int) -> str:
    """Which of our audio sin-cos layouts is closest to a stored table (``"time_major"`` or ``"audiomae"``)."""
    grid = (int(audio_size[0]) // patch, int(audio_size[1]) // patch)
    table = pos_embed.reshape(-1, pos_embed.shape[-1]).float()
    if grid[0] * grid[1] + 1 != table.shape[0] or table.shape[-1] % 4:
        return "audiomae"
    errors = {name: float((table - ours).abs().max()) for name, ours in _audio_candidates(table.shape[-1], grid).items()}
    return min(errors, key=errors.get)


def position_table_report(state_dict: Mapping[str, torch.Tensor], config: MAViLConfig) -> dict[str, dict[str, float]]:
    """Max abs difference between the checkpoint's stored tables and the sin-cos tables we can build.

    Returns ``{"pos_embed": {"time_major": e1, "audiomae": e2}, "pos_embed_v": {"sincos_3d": e3}}``; a value near 0
    says which layout the checkpoint was trained with (``nan`` when the shapes cannot match).
    """
    report = {}
    audio = state_dict["pos_embed"].reshape(-1, state_dict["pos_embed"].shape[-1]).float()
    report["pos_embed"] = {}
    for name, ours in _audio_candidates(config.hidden_size, config.audio_grid_size).items():
        report["pos_embed"][name] = float((audio - ours).abs().max()) if ours.shape == audio.shape else float("nan")
    video = state_dict["pos_embed_v"].reshape(-1, state_dict["pos_embed_v"].shape[-1]).float()
    ours = video_table(config.hidden_size, *config.video_grid_size)
    report["pos_embed_v"] = {"sincos_3d": float((video - ours).abs().max()) if ours.shape == video.shape else float("nan")}
    return report


def key_table(config: MAViLConfig, prefix: str = "mavil.", ignore: Iterable[str] = ()) -> KeyTable:
    """Official key -> our key. ``prefix`` is ``"mavil."`` for models with heads, ``""`` for :class:`MAViLModel`."""
    rules = {
        "patch_embed.proj.weight": f"{prefix}audio_embeddings.patch_embed.proj.weight",
        "patch_embed.proj.bias": f"{prefix}audio_embeddings.patch_embed.proj.bias",
        "cls_token": f"{prefix}audio_embeddings.cls_token",
        "pos_embed": f"{prefix}audio_embeddings.position_embeddings.table",
        "patch_embed_v.proj.weight": f"{prefix}video_embeddings.patch_embed.proj.weight",
        "patch_embed_v.proj.bias": f"{prefix}video_embeddings.patch_embed.proj.bias",
        "cls_token_v": f"{prefix}video_embeddings.cls_token",
        "pos_embed_v": f"{prefix}video_embeddings.position_embeddings.table",
    }
    for official, ours in STACKS.items():
        for src, dst in BLOCK_PARTS.items():
            for param in ("weight", "bias"):
                rules[f"{official}.{{}}.{src}.{param}"] = f"{prefix}{ours}.{{}}.{dst}.{param}"
    if prefix:  # heads exist only on the classification model
        for name in config.classifier_heads:
            norm, head, our_norm, our_head = HEADS[name]
            for param in ("weight", "bias"):
                rules[f"{norm}.{param}"] = f"{our_norm}.{param}"
                rules[f"{head}.{param}"] = f"{our_head}.{param}"
    return KeyTable(rules, ignore=ignore)


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model, ignore: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Map an av-superb state dict onto ``model`` (:class:`MAViLModel` or a model with heads), strictly.

    Args:
        ignore: checkpoint keys (``{}`` = an index) the caller knowingly drops, e.g. heads when converting a
            fine-tuned file into :class:`MAViLModel`. Anything else unmapped is an error.
    """
    prefix = "" if isinstance(model, MAViLModel) else "mavil."
    converted = key_table(model.config, prefix, ignore).convert(state_dict, model)
    return {k: v.reshape(model.state_dict()[k].shape) for k, v in converted.items()}


def load_official_into(model, state_dict: Mapping[str, torch.Tensor], ignore: Iterable[str] = ()):
    """Convert and load ``state_dict`` into ``model`` (strict); returns the model."""
    if model.config.position_tables != "stored":
        raise ValueError(
            "the av-superb position tables are stored values: build the model with position_tables='stored' "
            "(config_from_checkpoint does)"
        )
    model.load_state_dict(convert_state_dict(state_dict, model, ignore), strict=True)
    return model


def convert_official_checkpoint(
    path: str | Path,
    audio_size: tuple[int, int] = (1024, 128),
    video_size: tuple[int, int, int] = (8, 224, 224),
    num_attention_heads: int | None = None,
    **overrides,
):
    """Load an av-superb MAViL ``.pth`` and return ``(model, report)``.

    The model is :class:`MAViLForAudioVisualClassification` when the file has heads, else :class:`MAViLModel` (the
    public MAViL-Base file is a pretrained encoder with 2 fusion layers and no head). ``report`` holds the layout
    read from the keys and :func:`position_table_report`.
    """
    state_dict = unwrap_state_dict(load_official_checkpoint(path), containers=("model",))
    config = config_from_checkpoint(state_dict, audio_size, video_size, num_attention_heads, **overrides)
    model_class = MAViLForAudioVisualClassification if config_has_heads(state_dict) else MAViLModel
    model = load_official_into(model_class(config), state_dict).eval()
    report = {"layout": describe_checkpoint(state_dict), "position_tables": position_table_report(state_dict, config)}
    return model, report


def config_has_heads(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return bool(classifier_heads(state_dict))


__all__ = [
    "classifier_heads",
    "config_from_checkpoint",
    "convert_official_checkpoint",
    "convert_state_dict",
    "describe_checkpoint",
    "key_table",
    "load_official_into",
    "position_table_report",
    "stack_depth",
]
