"""Initialise MAViL's encoders from uni-modal checkpoints of this package (``from_unimodal_pretrained``).

* Audio: our Audio-MAE (:mod:`hf_maskedav.models.audiomae`), any head. Its patch embedding, cls token and encoder
  layers are copied into MAViL's audio branch; its final ``norm`` has no counterpart (MAViL's encoders end without
  one) and its decoder is not copied (MAViL's decoders read fused tokens). The Audio-MAE position table is the one
  MAViL's default ``audio_position_table="audiomae"`` builds, so positions stay as trained.
* Video: our MAE-ST or VideoMAE (:mod:`hf_maskedav.models.mae_st`, :mod:`hf_maskedav.models.videomae`), any head.
  Tubelet embedding and layers are copied (VideoMAE's q/v biases folded into a fused bias), its final norm dropped;
  its position table is kept as MAViL's stored video table by default.
"""

from __future__ import annotations

import os

import torch
from transformers.utils import logging

from .configuration_mavil import MAViLConfig

logger = logging.get_logger(__name__)

# Audio-MAE encoder key (in AudioMAEModel) -> MAViLModel key; "{}" is a layer index.
AUDIO_KEYS = {
    "embeddings.patch_embed.proj.weight": "audio_embeddings.patch_embed.proj.weight",
    "embeddings.patch_embed.proj.bias": "audio_embeddings.patch_embed.proj.bias",
    "embeddings.cls_token": "audio_embeddings.cls_token",
}
AUDIO_SKIPPED = ("norm.weight", "norm.bias")


def _load_audiomae(audio):
    from ..audiomae import AudioMAEModel, AudioMAEPreTrainedModel

    if isinstance(audio, (str, os.PathLike)):
        audio = AudioMAEModel.from_pretrained(audio)
    if isinstance(audio, AudioMAEPreTrainedModel) and not isinstance(audio, AudioMAEModel):
        audio = audio.audiomae
    if not isinstance(audio, AudioMAEModel):
        raise TypeError(f"audio must be an Audio-MAE model of this package or its path, got {type(audio).__name__}")
    if audio.config.patch_stride != audio.config.patch_size:
        raise ValueError(
            f"the Audio-MAE checkpoint uses overlapping patches (stride {audio.config.patch_stride} < size "
            f"{audio.config.patch_size}); MAViL's audio branch has non-overlapping patches"
        )
    return audio


# MAViL config field -> the uni-modal config's field it is read from
AUDIO_FIELDS = {
    "num_mel_bins": "num_mel_bins", "max_length": "max_length", "audio_patch_size": "patch_size",
    "hidden_size": "hidden_size", "num_attention_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size", "audio_num_hidden_layers": "num_hidden_layers",
    "layer_norm_eps": "layer_norm_eps", "qkv_bias": "qkv_bias", "hidden_act": "hidden_act",
}
VIDEO_FIELDS = {
    "num_frames": "num_frames", "image_size": "image_size", "video_patch_size": "patch_size",
    "tubelet_size": "tubelet_size", "num_channels": "num_channels", "hidden_size": "hidden_size",
    "num_attention_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
    "video_num_hidden_layers": "num_hidden_layers", "layer_norm_eps": "layer_norm_eps", "hidden_act": "hidden_act",
}


def _audio_fields(audio_config) -> dict:
    # the Audio-MAE table is the one MAViL's "audiomae" audio table builds: positions stay as trained
    return {**{ours: getattr(audio_config, theirs) for ours, theirs in AUDIO_FIELDS.items()}, "audio_position_table": "audiomae"}


def _video_fields(video_config) -> dict:
    return {ours: getattr(video_config, theirs) for ours, theirs in VIDEO_FIELDS.items()}


def _check_matches(fields: dict, config: MAViLConfig, depth_field: str, what: str) -> None:
    """Raise naming the fields where a uni-modal checkpoint and the MAViL config disagree (the depth may differ)."""
    mismatched = {k: (v, getattr(config, k)) for k, v in fields.items() if k != depth_field and getattr(config, k) != v}
    if mismatched:
        raise ValueError(f"the {what} checkpoint does not match the MAViL config (checkpoint, config): {mismatched}")


def _audio_state(audio, num_layers: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    state, skipped = {}, []
    for key, tensor in audio.state_dict().items():
        if key in AUDIO_KEYS:
            state[AUDIO_KEYS[key]] = tensor
        elif key.startswith("layers."):
            index = int(key.split(".")[1])
            if index >= num_layers:
                raise ValueError(f"the Audio-MAE checkpoint has more layers than config.audio_num_hidden_layers={num_layers}")
            state["audio_" + key] = tensor
        elif key in AUDIO_SKIPPED:
            skipped.append(key)
        else:
            raise KeyError(f"unexpected Audio-MAE key {key!r}: this converter does not know where it goes")
    return state, skipped


VIDEO_FAMILIES = ("maskedav_mae_st", "maskedav_videomae")


def _load_video(video):
    """A video MAE base model of this package (MAE-ST or VideoMAE) from a model (any head) or a path."""
    from transformers import AutoModel, PreTrainedModel

    if isinstance(video, (str, os.PathLike)):
        video = AutoModel.from_pretrained(video)
    if not isinstance(video, PreTrainedModel) or video.config.model_type not in VIDEO_FAMILIES:
        raise TypeError(
            f"video must be an MAE-ST or VideoMAE model of this package ({', '.join(VIDEO_FAMILIES)}) or its path, got "
            f"{type(video).__name__}"
        )
    if video.base_model is not video:
        video = video.base_model
    return video


def _video_state(video, config: MAViLConfig, keep_positions: bool):
    """MAE-ST / VideoMAE encoder -> MAViL's video branch: ``(state, skipped)``.

    Layers map one to one (VideoMAE's separate ``q_bias``/``v_bias`` become the fused qkv bias ``[q, 0, v]``, which
    computes the same thing). With ``keep_positions`` the video model's own positions fill MAViL's stored video table:
    MAE-ST's learned separable table (``spatial[s] + temporal[t]``, its cls position in row 0) or VideoMAE's fixed
    1-D sinusoid table (zero cls row); otherwise MAViL's 3-D sin-cos table is used and they are dropped.
    """
    family = video.config.model_type
    state, skipped = {}, []
    for key, tensor in video.state_dict().items():
        if key.startswith("embeddings.patch_embed."):
            state["video_" + key] = tensor
        elif key == "embeddings.cls_token":
            state["video_embeddings.cls_token"] = tensor
        elif key.startswith("layers."):
            index = int(key.split(".")[1])
            if index >= config.video_num_hidden_layers:
                raise ValueError(f"the video checkpoint has more layers than config.video_num_hidden_layers")
            if key.endswith(("attention.q_bias", "attention.v_bias")):
                continue  # folded into the fused bias below
            state["video_" + key] = tensor
        elif key.startswith("embeddings.position_embeddings."):
            continue  # handled below
        elif key.startswith("norm."):
            skipped.append(f"video:{key} (MAViL's encoders have no final norm)")
        else:
            raise KeyError(f"unexpected {family} key {key!r}: this converter does not know where it goes")
    for index, layer in enumerate(video.layers):
        attention = layer.attention
        if attention.q_bias is not None:  # VideoMAE: q and v biases, none for k
            state[f"video_layers.{index}.attention.qkv_proj.bias"] = torch.cat(
                [attention.q_bias, torch.zeros_like(attention.q_bias), attention.v_bias]
            ).detach()
        elif attention.qkv_proj.bias is None:
            state[f"video_layers.{index}.attention.qkv_proj.bias"] = torch.zeros(3 * config.hidden_size)
    if family == "maskedav_videomae" and "video_embeddings.cls_token" not in state:
        skipped.append("video:(no cls token in VideoMAE: MAViL's video cls token starts from its own initialisation)")
    if keep_positions:
        embeddings = video.embeddings
        if family == "maskedav_mae_st":
            positions = embeddings.position_embeddings()  # [1, T*S, D]
            cls = embeddings.position_embeddings.cls if embeddings.position_embeddings.cls is not None else torch.zeros(1, 1, positions.shape[-1])
        else:
            positions = embeddings.position_embeddings.table  # [1, L, D], fixed sinusoid
            cls = torch.zeros(1, 1, positions.shape[-1])
        state["video_embeddings.position_embeddings.table"] = torch.cat([cls, positions], dim=1).detach()
    else:
        skipped.append(f"video:position embeddings of {family} (replaced by MAViL's 3-D sin-cos table)")
    return state, skipped


def build_from_unimodal(
    model_class,
    audio=None,
    video=None,
    config: MAViLConfig | None = None,
    keep_video_positions: bool = True,
    output_loading_info: bool = False,
    **overrides,
):
    """Build ``model_class`` (any MAViL class) with encoders copied from uni-modal checkpoints.

    Args:
        audio: an Audio-MAE model of this package (any head) or its path.
        video: an MAE-ST or VideoMAE model of this package (any head) or its path (see :func:`_video_state`).
        config: the MAViL config; by default derived from the checkpoints (sizes, depths, positions) with
            ``overrides`` applied (a missing modality's encoder gets the other one's depth).
        keep_video_positions: carry the video model's own position table as MAViL's stored video table (sets
            ``position_tables="stored"``); otherwise MAViL's 3-D sin-cos table replaces it.
        output_loading_info: also return ``{"loaded": [...], "skipped": [...], "initialised": [...]}``.
    """
    if audio is None and video is None:
        raise ValueError("give at least one uni-modal checkpoint: audio=... and/or video=...")
    audio_model = _load_audiomae(audio) if audio is not None else None
    video_model = _load_video(video) if video is not None else None
    if config is None:
        fields = {}
        if audio_model is not None:
            fields.update(_audio_fields(audio_model.config), video_num_hidden_layers=audio_model.config.num_hidden_layers)
        if video_model is not None:
            video_fields = _video_fields(video_model.config)
            clashes = {k: (fields[k], v) for k, v in video_fields.items() if k in fields and k != "video_num_hidden_layers" and fields[k] != v}
            if clashes:
                raise ValueError(f"the audio and video checkpoints disagree (audio, video): {clashes}")
            fields.update(video_fields)
            fields.setdefault("audio_num_hidden_layers", video_model.config.num_hidden_layers)
            if keep_video_positions:
                fields["position_tables"] = "stored"
        fields.update(overrides)
        config = MAViLConfig(**fields)
    elif overrides:
        raise ValueError("pass either a config or config overrides, not both")
    model = model_class(config)
    base = model.mavil if hasattr(model, "mavil") else model

    state, skipped = {}, []
    if audio_model is not None:
        _check_matches(_audio_fields(audio_model.config), config, "audio_num_hidden_layers", "Audio-MAE")
        audio_state, audio_skipped = _audio_state(audio_model, config.audio_num_hidden_layers)
        state.update(audio_state)
        skipped += [f"audio:{k} (MAViL's encoders have no final norm)" for k in audio_skipped]
    if video_model is not None:
        _check_matches(_video_fields(video_model.config), config, "video_num_hidden_layers", "video")
        if keep_video_positions and config.position_tables != "stored":
            raise ValueError("keep_video_positions needs config.position_tables='stored' (or pass keep_video_positions=False)")
        video_state, video_skipped = _video_state(video_model, config, keep_video_positions)
        state.update(video_state)
        skipped += video_skipped
    missing, unexpected = base.load_state_dict(state, strict=False)
    if unexpected:
        raise KeyError(f"keys the MAViL model does not have: {unexpected}")
    if skipped:
        logger.info(f"not copied into MAViL: {skipped}")
    info = {"loaded": sorted(state), "skipped": skipped, "initialised": sorted(missing)}
    return (model, info) if output_loading_info else model


__all__ = ["build_from_unimodal"]
