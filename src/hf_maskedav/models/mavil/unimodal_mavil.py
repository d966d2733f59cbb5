"""Initialise MAViL's encoders from uni-modal checkpoints of this package (``from_unimodal_pretrained``).

* Audio: our Audio-MAE (:mod:`hf_maskedav.models.audiomae`), any head. Its patch embedding, cls token and encoder
  layers are copied into MAViL's audio branch; its final ``norm`` has no counterpart (MAViL's encoders end without
  one) and its decoder is not copied (MAViL's decoders read fused tokens). The Audio-MAE position table is the one
  MAViL's default ``audio_position_table="audiomae"`` builds, so positions stay as trained.
* Video: our video MAE families when they are installed in this package (see ``docs/mavil.md``).
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


def _audio_fields(audio_config) -> dict:
    return dict(
        num_mel_bins=audio_config.num_mel_bins,
        max_length=audio_config.max_length,
        audio_patch_size=audio_config.patch_size,
        hidden_size=audio_config.hidden_size,
        num_attention_heads=audio_config.num_attention_heads,
        intermediate_size=audio_config.intermediate_size,
        audio_num_hidden_layers=audio_config.num_hidden_layers,
        layer_norm_eps=audio_config.layer_norm_eps,
        qkv_bias=audio_config.qkv_bias,
        hidden_act=audio_config.hidden_act,
        audio_position_table="audiomae",
    )


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


def _video_state(video, config: MAViLConfig):
    """Video MAE checkpoints -> MAViL's video branch. Needs the VideoMAE / MAE-ST families of this package."""
    raise NotImplementedError(
        "initialising MAViL's video encoder from a video MAE checkpoint needs the VideoMAE / MAE-ST families of "
        "hf_maskedav, which this version does not include yet; pass video=None (the video branch then starts from "
        "random initialisation)"
    )


def build_from_unimodal(model_class, audio=None, video=None, config: MAViLConfig | None = None, output_loading_info=False, **overrides):
    """Build ``model_class`` (any MAViL class) with encoders copied from uni-modal checkpoints.

    Args:
        audio: an Audio-MAE model of this package (any head) or its path.
        video: a video MAE checkpoint (see :func:`_video_state`).
        config: the MAViL config; by default derived from the audio checkpoint (sizes, depth, positions) with
            ``overrides`` applied, the video encoder getting the audio encoder's depth.
        output_loading_info: also return ``{"loaded": [...], "skipped": [...], "initialised": [...]}``.
    """
    if audio is None and video is None:
        raise ValueError("give at least one uni-modal checkpoint: audio=... and/or video=...")
    audio_model = _load_audiomae(audio) if audio is not None else None
    if config is None:
        fields = _audio_fields(audio_model.config) if audio_model is not None else {}
        if audio_model is not None:
            fields["video_num_hidden_layers"] = audio_model.config.num_hidden_layers
        fields.update(overrides)
        config = MAViLConfig(**fields)
    elif overrides:
        raise ValueError("pass either a config or config overrides, not both")
    model = model_class(config)
    base = model.mavil if hasattr(model, "mavil") else model

    state, skipped = {}, []
    if audio_model is not None:
        fields = _audio_fields(audio_model.config)
        mismatched = {k: (v, getattr(config, k)) for k, v in fields.items() if k != "audio_num_hidden_layers" and getattr(config, k) != v}
        if mismatched:
            raise ValueError(f"the Audio-MAE checkpoint does not match the MAViL config (checkpoint, config): {mismatched}")
        audio_state, audio_skipped = _audio_state(audio_model, config.audio_num_hidden_layers)
        state.update(audio_state)
        skipped += [f"audio:{k} (MAViL's encoders have no final norm)" for k in audio_skipped]
    if video is not None:
        state.update(_video_state(video, config))
    if not config.use_cls_token:
        skipped += [f"audio:{k}" for k in list(state) if k.endswith("cls_token")]
        state = {k: v for k, v in state.items() if not k.endswith("cls_token")}
    missing, unexpected = base.load_state_dict(state, strict=False)
    if unexpected:
        raise KeyError(f"keys the MAViL model does not have: {unexpected}")
    if skipped:
        logger.info(f"not copied into MAViL: {skipped}")
    info = {"loaded": sorted(state), "skipped": skipped, "initialised": sorted(missing)}
    return (model, info) if output_loading_info else model


__all__ = ["build_from_unimodal"]
