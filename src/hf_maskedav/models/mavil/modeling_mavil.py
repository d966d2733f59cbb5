"""MAViL: masked audio-video learners (Huang et al., NeurIPS 2023).

Meta released no MAViL code. The encoder follows the MAViL authors' code given to AV-SUPERB (roger-tseng/av-superb,
``upstream_models/mavil/models_vitmm.py``): an Audio-MAE-style audio ViT, a video ViT on 2x16x16 tubelets with a fixed
3-D sin-cos table, a cls token per modality, and fusion layers over ``[cls_a, audio, cls_v, video]``, with no final
LayerNorm anywhere. Decoders, contrastive terms and the stage-2 teacher are not in any public code; how we built them is
documented in the config docstring and ``docs/mavil.md``. (Georgescu et al.'s audiovisual MAE lives in
:mod:`hf_maskedav.models.avmae`.)

Classes, one algorithm per forward:

* :class:`MAViLModel` -- the encoders (audio ViT, video ViT, fusion layers), optional masking.
* :class:`MAViLForPreTraining` -- stage 1: per-modality decoders reconstruct the masked spectrogram and pixel patches,
  plus inter-modal (audio<->video) and intra-modal (two masked views) InfoNCE.
* :class:`MAViLForStage2PreTraining` -- stage 2: the same student predicts a frozen teacher's fused features of the
  masked tokens, plus the same contrastive terms.
* :class:`MAViLForAudioVisualClassification` -- fine-tuning heads.

Shapes in comments: N = batch, D = encoder width, Dd = decoder width, La/Lv = audio/video patch tokens, Ka/Kv = kept
tokens; audio tokens are time-major (``t * F' + f``), video tokens ``(t, h, w)``. In every mask 1 = masked.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from ...layers import (
    PatchEmbed2D,
    PositionTable,
    TubeletEmbed3D,
    as_spectrogram,
    as_video,
    audiomae_position_table,
    checked_noise,
    gather_tokens,
    ids_from_bool_mask,
    info_nce,
    mask_from_noise,
    masked_mse,
    normalize_per_patch,
    patchify_2d,
    patchify_3d,
    restore_with_mask_tokens,
    run_layers,
    sincos_2d_table,
    sincos_3d_table,
    time_frequency_masking,
    transformer_layers,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_mavil import MAViLConfig

logger = logging.get_logger(__name__)


# ----------------------------------------------------------------------------------------------------------------------
# Outputs (each ModelOutput declares its own fields: the repeated audio/video field lists are the dataclass form)
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class MAViLModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, S, D]`` output of the fusion layers over ``[cls_a, audio, cls_v, video]`` (kept tokens
            only when masking), or the encoder output of the single modality given.
        audio_last_hidden_state, video_last_hidden_state: ``[N, 1 + Ka, D]`` / ``[N, 1 + Kv, D]`` outputs of the
            modality-specific encoders (before fusion), cls first.
        fused_audio_hidden_state, fused_video_hidden_state: the audio and video parts of ``last_hidden_state`` (None
            when the fusion layers did not run).
        audio_mask, video_mask: ``[N, L]`` 1 for masked tokens.
        audio_ids_restore, video_ids_restore: ``[N, L]`` permutations putting ``[kept, masked]`` back in order.
        audio_ids_keep, video_ids_keep: ``[N, K]`` kept token indices, in the order the encoder saw them.
        audio_hidden_states, video_hidden_states, fusion_hidden_states: per-layer outputs (input first) on request.
        audio_attentions, video_attentions, fusion_attentions: per-layer attention maps on request.
    """

    last_hidden_state: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    video_last_hidden_state: torch.FloatTensor | None = None
    fused_audio_hidden_state: torch.FloatTensor | None = None
    fused_video_hidden_state: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    video_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    video_ids_restore: torch.LongTensor | None = None
    audio_ids_keep: torch.LongTensor | None = None
    video_ids_keep: torch.LongTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    fusion_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    video_attentions: tuple[torch.FloatTensor, ...] | None = None
    fusion_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MAViLForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: weighted sum of the terms below (those that were computed).
        audio_reconstruction_loss, video_reconstruction_loss: MSE over the masked tokens of each modality, against
            pixel/spectrogram patches (stage 1) or the teacher's features (stage 2).
        inter_contrastive_loss: audio<->video InfoNCE of the pooled features.
        audio_intra_contrastive_loss, video_intra_contrastive_loss: InfoNCE between two masked views of a modality.
        audio_logits, video_logits: ``[N, La, Pa]`` / ``[N, Lv, Pv]`` decoder predictions for every token.
        audio_mask, video_mask, audio_ids_restore, video_ids_restore: masking of the first view.
        last_hidden_state: fusion output of the first view.
        audio_embeds, video_embeds: ``[N, P]`` pooled (and projected) features of the first view used by the
            inter-modal InfoNCE, before normalisation.
        audio_hidden_states, video_hidden_states, fusion_hidden_states: per-layer outputs on request.
    """

    loss: torch.FloatTensor | None = None
    audio_reconstruction_loss: torch.FloatTensor | None = None
    video_reconstruction_loss: torch.FloatTensor | None = None
    inter_contrastive_loss: torch.FloatTensor | None = None
    audio_intra_contrastive_loss: torch.FloatTensor | None = None
    video_intra_contrastive_loss: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    video_logits: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    video_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    video_ids_restore: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    fusion_hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MAViLClassifierOutput(ModelOutput):
    """
    Args:
        loss: sum of the classification losses of the heads that ran (when ``labels`` are given).
        logits: ``[N, C]`` of the main head that ran: audio+visual when both inputs are given and the model has that
            head, otherwise the head of the single modality given.
        audio_visual_logits, audio_logits, video_logits: every head that ran.
        audio_hidden_states, video_hidden_states, fusion_hidden_states, attentions...: on request.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    audio_visual_logits: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    video_logits: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    fusion_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_attentions: tuple[torch.FloatTensor, ...] | None = None
    video_attentions: tuple[torch.FloatTensor, ...] | None = None
    fusion_attentions: tuple[torch.FloatTensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Input checks, position tables, pooling
# ----------------------------------------------------------------------------------------------------------------------


def _as_spectrogram(input_values: torch.Tensor, config: MAViLConfig) -> torch.Tensor:
    """``[N, T, F]`` or ``[N, 1, T, F]`` -> ``[N, 1, T, F]``; any whole number of patches of frames."""
    return as_spectrogram(
        input_values, num_mel_bins=config.num_mel_bins, processor="MAViLProcessor (or AudioMAEFeatureExtractor)",
        patch_size=config.audio_patch_size, whole_patches=True,
    )


def _as_video(pixel_values: torch.Tensor, config: MAViLConfig) -> torch.Tensor:
    """``[N, T, C, H, W]`` (transformers video layout) -> ``[N, C, T, H, W]`` for the tubelet conv."""
    return as_video(
        pixel_values, num_channels=config.num_channels, num_frames=config.num_frames,
        tubelet_size=config.tubelet_size, patch_size=config.video_patch_size, processor="MAViLProcessor",
    )


def time_major_audio_table(embed_dim: int, time_patches: int, freq_patches: int) -> torch.Tensor:
    """2-D sin-cos table of the (time, freq) grid, cls row first: what av-superb's ``get_2d_sincos_pos_embed_flexible``
    builds for ``patch_hw = (T', F')`` (first half of the channels = freq index, second half = time index)."""
    return sincos_2d_table(embed_dim, time_patches, freq_patches, cls_token=True)


def video_table(embed_dim: int, frames: int, height: int, width: int) -> torch.Tensor:
    """3-D sin-cos table, cls row first: a quarter of the channels encode time, the rest (h, w) (av-superb
    ``get_3d_sincos_pos_embed``)."""
    return sincos_3d_table(embed_dim, frames, height, width, time_fraction=0.25, cls_token=True)


def audio_table_function(config: MAViLConfig):
    """``fn(embed_dim, time_patches, freq_patches)`` building the audio table chosen by ``config.audio_position_table``."""
    return audiomae_position_table if config.audio_position_table == "audiomae" else time_major_audio_table


def _pool(hidden: torch.Tensor) -> torch.Tensor:
    """Mean over the patch tokens (cls excluded), as the authors' ``global_pool``: ``[N, 1 + K, D] -> [N, D]``."""
    return hidden[:, 1:].mean(dim=1)


def _ids_restore_from_keep(ids_keep: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids_restore, mask)`` for explicit kept indices: ``[kept (given order), masked (ascending)]``."""
    batch = ids_keep.shape[0]
    mask = torch.ones(batch, length, device=ids_keep.device).scatter_(1, ids_keep, 0.0)
    masked = torch.argsort(mask * length + torch.arange(length, device=ids_keep.device), dim=1)[:, ids_keep.shape[1] :]
    ids_restore = torch.argsort(torch.cat([ids_keep, masked], dim=1), dim=1)
    return ids_restore, mask


# ----------------------------------------------------------------------------------------------------------------------
# Embeddings and layers
# ----------------------------------------------------------------------------------------------------------------------


class MAViLEmbeddings(nn.Module):
    """Patch tokens of one modality with their positions (added before masking, authors' code) and the cls token.

    Audio: Conv2d spectrogram patches (time-major tokens) and the 2-D table of ``config.audio_position_table``;
    video: Conv3d tubelets (``(t, h, w)`` tokens) and the 3-D table. The table is fixed (rebuilt from the config) or
    stored (``config.position_tables = "stored"``: a persistent buffer, the converted checkpoints' own values).
    """

    def __init__(self, config: MAViLConfig, patch_embed: nn.Module, table_builder, grid):
        super().__init__()
        dim = config.hidden_size
        self.patch_embed = patch_embed
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = PositionTable(partial(table_builder, dim), *grid, mode=config.position_tables)

    @classmethod
    def for_audio(cls, config: MAViLConfig) -> MAViLEmbeddings:
        patch_embed = PatchEmbed2D(1, config.hidden_size, config.audio_patch_size)
        return cls(config, patch_embed, audio_table_function(config), config.audio_grid_size)

    @classmethod
    def for_video(cls, config: MAViLConfig) -> MAViLEmbeddings:
        patch_embed = TubeletEmbed3D(config.num_channels, config.hidden_size, config.tubelet_size, config.video_patch_size)
        return cls(config, patch_embed, video_table, config.video_grid_size)

    def grid_size(self, values: torch.Tensor) -> tuple[int, ...]:
        """Token grid of ``[N, 1, T, F]`` audio (``(T', F')``) or ``[N, C, T, H, W]`` video (``(T', H', W')``)."""
        return self.patch_embed.grid_size(*values.shape[2:])

    def forward(self, values: torch.Tensor, ids_keep: torch.Tensor | None = None):
        """Patch tokens with positions ``[N, L, D]`` (only the ``[N, K]`` tokens ``ids_keep`` when given: only those
        are cut and projected) and the cls token with its position ``[1, 1, D]``."""
        positions = self.position_embeddings.for_grid(*self.grid_size(values))  # [1, 1 + L, D], cls row first
        # not layers.embed_with_positions: that casts the table to the tokens' dtype on the full path too, while ours
        # adds the float32 table there (under autocast the unmasked residual stream stays float32, as before)
        values = values.to(self.patch_embed.proj.weight.dtype)
        if ids_keep is None:
            tokens = self.patch_embed(values) + positions[:, 1:]
        else:
            tokens = self.patch_embed.embed_selected(values, ids_keep)  # [N, K, D]
            tokens = tokens + gather_tokens(positions[:, 1:].to(tokens.dtype).expand(tokens.shape[0], -1, -1), ids_keep)
        return tokens, self.cls_token + positions[:, :1]


def _encoder_layers(config: MAViLConfig, depth: int) -> nn.ModuleList:
    return transformer_layers(
        config, depth, config.hidden_size, config.num_attention_heads, config.intermediate_size,
        qkv_bias="qkv" if config.qkv_bias else "none", drop_path_rate=config.drop_path_rate,
        dropout=config.hidden_dropout_prob, attention_dropout=config.attention_probs_dropout_prob,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Decoders
# ----------------------------------------------------------------------------------------------------------------------


class MAViLDecoderEnds(nn.Module):
    """The modality-specific ends of a decoder: input projection, mask token, fixed table at decoder width, and the
    output head -- ``pixel_head`` (spectrogram/pixel patches, stage 1) or ``teacher_head`` (the teacher's features,
    stage 2); the head's name says what it predicts."""

    def __init__(self, config: MAViLConfig, table_builder, grid, head: str, head_dim: int):
        super().__init__()
        dim = config.decoder_hidden_size
        self.embed = nn.Linear(config.hidden_size, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = PositionTable(partial(table_builder, dim), *grid)
        self.pixel_head = nn.Linear(dim, head_dim) if head == "pixel" else None
        self.teacher_head = nn.Linear(dim, head_dim) if head == "teacher" else None

    def prepare(self, hidden: torch.Tensor, ids_restore: torch.Tensor, grid) -> torch.Tensor:
        """Encoder tokens ``[N, 1 + K, D]`` -> full decoder sequence ``[N, 1 + L, Dd]`` in token order."""
        hidden = self.embed(hidden)  # [N, 1 + K, Dd]
        tokens = restore_with_mask_tokens(hidden[:, 1:], self.mask_token, ids_restore)  # [N, L, Dd], token order
        return torch.cat([hidden[:, :1], tokens], dim=1) + self.position_embeddings.for_grid(*grid)

    def predict(self, sequence: torch.Tensor) -> torch.Tensor:
        """``[N, 1 + L, Dd]`` -> ``[N, L, P]`` (cls row dropped)."""
        head = self.pixel_head if self.pixel_head is not None else self.teacher_head
        return head(sequence)[:, 1:]


class MAViLDecoder(nn.Module):
    """MAViL's two decoders, one per modality (paper: 8 layers, 512 wide, 16 heads each), global attention.

    The attribute names (``audio``/``video`` for the ends, ``audio_layers``/``video_layers``, ``audio_norm``/
    ``video_norm``) are the state-dict layout every saved MAViL pretraining checkpoint has; they stay as they are.
    """

    def __init__(self, config: MAViLConfig, head: str):
        super().__init__()
        dim = config.decoder_hidden_size
        if head == "pixel":
            audio_dim, video_dim = config.audio_patch_dim, config.video_patch_dim
        else:
            audio_dim = video_dim = config.teacher_hidden_size or config.hidden_size
        self.audio = MAViLDecoderEnds(config, audio_table_function(config), config.audio_grid_size, head, audio_dim)
        self.video = MAViLDecoderEnds(config, video_table, config.video_grid_size, head, video_dim)
        self.audio_layers = self._layers(config)
        self.video_layers = self._layers(config)
        self.audio_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.video_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    @staticmethod
    def _layers(config: MAViLConfig) -> nn.ModuleList:
        return transformer_layers(
            config, config.decoder_num_hidden_layers, config.decoder_hidden_size, config.decoder_num_attention_heads,
            config.decoder_intermediate_size, qkv_bias="qkv" if config.qkv_bias else "none",
        )

    def forward(self, audio, audio_ids_restore, audio_grid, video, video_ids_restore, video_grid):
        """Fused encoder tokens of each modality -> ``([N, La, Pa], [N, Lv, Pv])`` predictions for every token."""
        audio_sequence = self.audio.prepare(audio, audio_ids_restore, audio_grid)  # [N, 1 + La, Dd]
        audio_sequence = self.audio_norm(run_layers(self.audio_layers, audio_sequence)[0])
        video_sequence = self.video.prepare(video, video_ids_restore, video_grid)  # [N, 1 + Lv, Dd]
        video_sequence = self.video_norm(run_layers(self.video_layers, video_sequence)[0])
        return self.audio.predict(audio_sequence), self.video.predict(video_sequence)


# ----------------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------------


class MAViLPreTrainedModel(PreTrainedModel):
    config: MAViLConfig
    config_class = MAViLConfig
    base_model_prefix = "mavil"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """MAE initialisation of the shared blocks (``init_mae_weights``, position tables included) plus MAViL's cls
        and mask tokens."""
        if init_mae_weights(module):
            return
        std = self.config.initializer_range
        if isinstance(module, MAViLEmbeddings):
            init.normal_(module.cls_token, std=std)
        elif isinstance(module, MAViLDecoderEnds):
            init.normal_(module.mask_token, std=std)

    @classmethod
    def from_unimodal_pretrained(cls, audio=None, video=None, config: MAViLConfig | None = None, **config_overrides):
        """Initialise the encoders from uni-modal checkpoints of this package.

        Args:
            audio: an Audio-MAE model (any head) or its path.
            video: an MAE-ST or VideoMAE model (any head) or its path.
            config: the MAViL config; derived from the checkpoints when omitted (``config_overrides`` applied).
            config_overrides: config fields, plus ``keep_video_positions`` (default True: the video model's position
                table becomes MAViL's stored video table) and ``output_loading_info`` (also return what was loaded,
                skipped and freshly initialised).

        See :mod:`hf_maskedav.models.mavil.unimodal_mavil` for the exact mapping.
        """
        from .unimodal_mavil import build_from_unimodal

        return build_from_unimodal(cls, audio=audio, video=video, config=config, **config_overrides)


class _Encoded(NamedTuple):
    """One modality's encoder pass."""

    hidden: torch.Tensor  # [N, 1 + K, D], cls first
    mask: torch.Tensor  # [N, L], 1 = masked
    ids_restore: torch.Tensor | None
    ids_keep: torch.Tensor | None
    all_hidden: tuple | None
    all_attentions: tuple | None


class MAViLModel(MAViLPreTrainedModel):
    """The MAViL encoders: audio ViT, video ViT and the fusion layers over both modalities' tokens.

    Call it with both ``input_values`` and ``pixel_values`` for the fused representation, or with one of them for that
    modality's encoder alone. Without masking arguments every token is encoded.
    """

    def __init__(self, config: MAViLConfig):
        super().__init__(config)
        self.audio_embeddings = MAViLEmbeddings.for_audio(config)
        self.video_embeddings = MAViLEmbeddings.for_video(config)
        self.audio_layers = _encoder_layers(config, config.audio_num_hidden_layers)
        self.video_layers = _encoder_layers(config, config.video_num_hidden_layers)
        self.fusion_layers = _encoder_layers(config, config.fusion_num_hidden_layers)
        self.post_init()

    @staticmethod
    def _mask(batch, length, device, noise, mask_ratio, default_ratio, bool_masked_pos, ids_keep, name):
        """One modality's masking. Returns ``(mask, ids_restore, ids_keep)`` (``ids_keep`` None: keep every token)."""
        given = [n for n, v in (("noise", noise), ("bool_masked_pos", bool_masked_pos), ("ids_keep", ids_keep)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"pass at most one of {name}_noise, {name}_bool_masked_pos and {name}_ids_keep, got {given}")
        if bool_masked_pos is not None:
            if bool_masked_pos.shape != (batch, length):
                raise ValueError(
                    f"{name}_bool_masked_pos must have shape {(batch, length)} (batch, {name} patches), got "
                    f"{tuple(bool_masked_pos.shape)}"
                )
            masking = ids_from_bool_mask(bool_masked_pos)
        elif ids_keep is not None:
            ids_restore, mask = _ids_restore_from_keep(ids_keep, length)
            return mask.to(device), ids_restore, ids_keep
        elif noise is not None or mask_ratio is not None:
            ratio = default_ratio if mask_ratio is None else mask_ratio
            masking = mask_from_noise(
                "random", noise, (length,), ratio, batch=batch, device=device, name=f"{name}_noise",
                what=f"batch, {name} patches",
            )
        else:
            return torch.zeros(batch, length, device=device), None, None
        return masking.mask.to(device), masking.ids_restore, masking.ids_keep

    def _encode(self, embeddings, layers, values, masking: dict, default_ratio, name, output_hidden_states, output_attentions):
        """Mask, embed (only the kept tokens) and run one modality's encoder layers."""
        mask, ids_restore, ids_keep = self._mask(
            values.shape[0], math.prod(embeddings.grid_size(values)), values.device, default_ratio=default_ratio,
            name=name, **masking,
        )
        tokens, cls = embeddings(values, ids_keep)  # positions are added before masking (authors' code)
        hidden = torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        hidden, all_hidden, all_attentions = run_layers(layers, hidden, output_hidden_states, output_attentions)
        return _Encoded(hidden, mask, ids_restore, ids_keep, all_hidden, all_attentions)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        audio_bool_masked_pos: torch.Tensor | None = None,
        video_bool_masked_pos: torch.Tensor | None = None,
        audio_ids_keep: torch.Tensor | None = None,
        video_ids_keep: torch.Tensor | None = None,
        fuse: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MAViLModelOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` (or ``[N, 1, T, F]``) normalised log-mel fbank (MAViLProcessor).
            pixel_values: ``[N, frames, C, H, W]`` normalised video frames (MAViLProcessor).
            audio_noise, video_noise: ``[N, La]`` / ``[N, Lv]`` masking noise; the tokens with the smallest noise are
                kept (MAE recipe). Drawn with ``torch.rand`` when only a mask ratio is given.
            audio_mask_ratio, video_mask_ratio: fraction of tokens to remove (``config.*_mask_ratio`` when only noise
                is given). Without noise, ratio, ``*_bool_masked_pos`` or ``*_ids_keep`` nothing is masked.
            audio_bool_masked_pos, video_bool_masked_pos: ``[N, L]`` explicit masks (True = masked; the same count per
                sample).
            audio_ids_keep, video_ids_keep: ``[N, K]`` explicit kept token indices (e.g. time/frequency dropping).
            fuse: run the fusion layers (default: when both modalities are given; they need both).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        output_hidden_states = bool(output_hidden_states)
        output_attentions = bool(output_attentions)
        if input_values is None and pixel_values is None:
            raise ValueError("MAViLModel needs input_values (audio), pixel_values (video) or both")
        if input_values is not None and pixel_values is not None and input_values.shape[0] != pixel_values.shape[0]:
            raise ValueError(f"batch sizes differ: {input_values.shape[0]} audio clips, {pixel_values.shape[0]} videos")
        fuse = (input_values is not None and pixel_values is not None) if fuse is None else fuse
        if fuse and (input_values is None or pixel_values is None):
            raise ValueError("the fusion layers read both modalities: pass input_values and pixel_values (or fuse=False)")

        audio = video = None
        if input_values is not None:
            masking = dict(noise=audio_noise, mask_ratio=audio_mask_ratio, bool_masked_pos=audio_bool_masked_pos, ids_keep=audio_ids_keep)
            audio = self._encode(
                self.audio_embeddings, self.audio_layers, _as_spectrogram(input_values, config), masking,
                config.audio_mask_ratio, "audio", output_hidden_states, output_attentions,
            )
        if pixel_values is not None:
            masking = dict(noise=video_noise, mask_ratio=video_mask_ratio, bool_masked_pos=video_bool_masked_pos, ids_keep=video_ids_keep)
            video = self._encode(
                self.video_embeddings, self.video_layers, _as_video(pixel_values, config), masking,
                config.video_mask_ratio, "video", output_hidden_states, output_attentions,
            )

        fused = fusion_hidden = fusion_attentions = fused_audio = fused_video = None
        if fuse:
            # [cls_a, audio, cls_v, video] (authors' forward_features_av: torch.cat along the token axis, audio first)
            fused, fusion_hidden, fusion_attentions = run_layers(
                self.fusion_layers, torch.cat([audio.hidden, video.hidden], dim=1), output_hidden_states, output_attentions
            )
            audio_length = audio.hidden.shape[1]
            fused_audio, fused_video = fused[:, :audio_length], fused[:, audio_length:]
        last = fused if fuse else (audio if audio is not None else video).hidden

        output = MAViLModelOutput(
            last_hidden_state=last,
            audio_last_hidden_state=audio.hidden if audio is not None else None,
            video_last_hidden_state=video.hidden if video is not None else None,
            fused_audio_hidden_state=fused_audio,
            fused_video_hidden_state=fused_video,
            audio_mask=audio.mask if audio is not None else None,
            video_mask=video.mask if video is not None else None,
            audio_ids_restore=audio.ids_restore if audio is not None else None,
            video_ids_restore=video.ids_restore if video is not None else None,
            audio_ids_keep=audio.ids_keep if audio is not None else None,
            video_ids_keep=video.ids_keep if video is not None else None,
            audio_hidden_states=audio.all_hidden if audio is not None else None,
            video_hidden_states=video.all_hidden if video is not None else None,
            fusion_hidden_states=fusion_hidden,
            audio_attentions=audio.all_attentions if audio is not None else None,
            video_attentions=video.all_attentions if video is not None else None,
            fusion_attentions=fusion_attentions,
        )
        return output if return_dict else output.to_tuple()

    # -- retrieval ---------------------------------------------------------------------------------------------------

    def get_audio_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled audio-encoder output (no masking, no fusion)."""
        return _pool(self(input_values=input_values, return_dict=True).audio_last_hidden_state)

    def get_video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled video-encoder output (no masking, no fusion)."""
        return _pool(self(pixel_values=pixel_values, return_dict=True).video_last_hidden_state)

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised ``([N, D] audio, [N, D] video)`` embeddings; ``audio @ video.T`` ranks videos for each
        audio clip (audio->video retrieval) and its transpose audios for each video. Each modality is encoded on its
        own (fusion would mix the candidates being ranked)."""
        audio = nn.functional.normalize(self.get_audio_features(input_values), dim=-1)
        video = nn.functional.normalize(self.get_video_features(pixel_values), dim=-1)
        return audio, video


class MAViLForPreTraining(MAViLPreTrainedModel):
    """MAViL stage 1: per-modality decoders reconstruct the masked spectrogram and pixel patches from the fused
    tokens, plus the inter-modal (audio<->video) and intra-modal (two masked views) InfoNCE terms.

    Stage 2 is :class:`MAViLForStage2PreTraining` (build it with :meth:`from_previous_stage`). This class also loads a
    stage-2 checkpoint (its decoders then end in teacher-feature heads), for features, retrieval and
    :meth:`from_previous_stage`, but trains stage 1 only.
    """

    def __init__(self, config: MAViLConfig):
        super().__init__(config)
        self.mavil = MAViLModel(config)
        self.decoder = MAViLDecoder(config, head="teacher" if config.reconstruction_target == "teacher" else "pixel")
        projection = config.contrastive_projection_dim
        self.audio_projection = nn.Linear(config.hidden_size, projection) if projection else None
        self.video_projection = nn.Linear(config.hidden_size, projection) if projection else None
        self.post_init()

    @classmethod
    def from_previous_stage(cls, previous, teacher=None, init_from_previous: bool = True, **config_overrides):
        """The next stage-2 iteration, a :class:`MAViLForStage2PreTraining`: the student predicts the features of
        ``previous`` (frozen).

        Args:
            previous: the stage-1 model or the previous student (a model or a path).
            teacher: another teacher instead of a frozen copy of ``previous``.
            init_from_previous: start the student from ``previous``'s weights (our choice; the paper's student
                initialisation was not recovered). The feature-prediction heads are new when ``previous`` was a
                stage-1 model.
            config_overrides: other config fields of the student.
        """
        if isinstance(previous, (str, os.PathLike)):
            previous = MAViLForPreTraining.from_pretrained(previous)
        if not isinstance(previous, MAViLForPreTraining):
            raise TypeError(f"previous must be a MAViLForPreTraining or its path, got {type(previous).__name__}")
        fields = previous.config.to_dict()
        fields.update(reconstruction_target="teacher", **config_overrides)
        for key in ("model_type", "transformers_version", "architectures"):
            fields.pop(key, None)
        student = MAViLForStage2PreTraining(MAViLConfig(**fields))
        if init_from_previous:
            missing, unexpected = student.load_state_dict(previous.state_dict(), strict=False)
            heads = [f"decoder.{m}.{h}_head." for m in ("audio", "video") for h in ("pixel", "teacher")]
            wrong = [k for k in list(missing) + list(unexpected) if not k.startswith(tuple(heads))]
            if wrong:
                raise ValueError(f"the previous model does not match the student's architecture: {wrong}")
        student.set_teacher(teacher if teacher is not None else copy.deepcopy(previous.mavil))
        return student

    # -- pieces both stages use --------------------------------------------------------------------------------------

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The output fields whose weighted sum is ``loss``: the reconstruction terms, then the contrastive terms
        whose weight is above 0."""
        config = self.config
        terms = ("audio_reconstruction_loss", "video_reconstruction_loss")
        if config.inter_contrastive_weight > 0:
            terms += ("inter_contrastive_loss",)
        if config.intra_contrastive_weight > 0:
            terms += ("audio_intra_contrastive_loss", "video_intra_contrastive_loss")
        return terms

    def patchify_audio(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """``[N, 1, T, F] -> [N, La, p*p]`` (time-major tokens)."""
        return patchify_2d(spectrogram, self.config.audio_patch_size)

    def patchify_video(self, video: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W] -> [N, Lv, t*p*p*C]`` (tokens (t, h, w), values (frame, row, col, channel))."""
        return patchify_3d(video, self.config.tubelet_size, self.config.video_patch_size)

    def _embeds(self, audio_pooled: torch.Tensor, video_pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features through the contrastive projections (when the config has them)."""
        audio = self.audio_projection(audio_pooled) if self.audio_projection is not None else audio_pooled
        video = self.video_projection(video_pooled) if self.video_projection is not None else video_pooled
        return audio, video

    def _contrastive_embeds(self, encoded: MAViLModelOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """``([N, P], [N, P])`` audio and video features of one masked view (``config.contrastive_features``)."""
        if self.config.contrastive_features == "fusion":
            audio, video = encoded.fused_audio_hidden_state, encoded.fused_video_hidden_state
        else:
            audio, video = encoded.audio_last_hidden_state, encoded.video_last_hidden_state
        return self._embeds(_pool(audio), _pool(video))

    def _contrastive_terms(self, audio_embeds, video_embeds, input_values, pixel_values, view2_noise, mask_ratios):
        """The InfoNCE terms ``({name: loss}, {name: weight})``: audio<->video of the first view, and each modality
        against a second, independently masked view (one more encoder pass)."""
        config = self.config
        terms, weights = {}, {}
        if config.inter_contrastive_weight > 0:
            terms["inter_contrastive_loss"] = info_nce(
                audio_embeds, video_embeds, config.inter_contrastive_temperature, config.contrastive_symmetric
            )
            weights["inter_contrastive_loss"] = config.inter_contrastive_weight
        if config.intra_contrastive_weight > 0:
            view2 = self.mavil(
                input_values=input_values, pixel_values=pixel_values, audio_noise=view2_noise[0],
                video_noise=view2_noise[1], audio_mask_ratio=mask_ratios[0], video_mask_ratio=mask_ratios[1],
                fuse=config.contrastive_features == "fusion", return_dict=True,
            )
            audio_view2, video_view2 = self._contrastive_embeds(view2)
            temperature, symmetric = config.intra_contrastive_temperature, config.contrastive_symmetric
            terms["audio_intra_contrastive_loss"] = info_nce(audio_embeds, audio_view2, temperature, symmetric)
            terms["video_intra_contrastive_loss"] = info_nce(video_embeds, video_view2, temperature, symmetric)
            weights["audio_intra_contrastive_loss"] = weights["video_intra_contrastive_loss"] = config.intra_contrastive_weight
        return terms, weights

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised audio and video embeddings (through the contrastive projections when the config has them);
        see :meth:`MAViLModel.get_retrieval_embeddings`."""
        audio, video = self._embeds(self.mavil.get_audio_features(input_values), self.mavil.get_video_features(pixel_values))
        return nn.functional.normalize(audio, dim=-1), nn.functional.normalize(video, dim=-1)

    # -- the objective -----------------------------------------------------------------------------------------------

    def reconstruction_targets(self, input_values, pixel_values, spectrogram, video):
        """Stage 1's targets of every token: the raw spectrogram and pixel patches ``([N, La, Pa], [N, Lv, Pv])``,
        per-patch normalised with ``*_norm_pix_loss``, in the inputs' precision (float32 under autocast; masked_mse
        runs in float32). :class:`MAViLForStage2PreTraining` replaces them by the teacher's features."""
        if self.config.reconstruction_target != "pixels":
            raise ValueError(
                "this is a stage-2 configuration (reconstruction_target='teacher'): train it with "
                "MAViLForStage2PreTraining (MAViLForPreTraining.from_previous_stage(...) builds one)"
            )
        audio_target = self.patchify_audio(spectrogram)
        video_target = self.patchify_video(video)
        if self.config.audio_norm_pix_loss:
            audio_target = normalize_per_patch(audio_target)
        if self.config.video_norm_pix_loss:
            video_target = normalize_per_patch(video_target)
        return audio_target, video_target

    def forward(
        self,
        input_values: torch.Tensor,
        pixel_values: torch.Tensor,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_noise_view2: torch.Tensor | None = None,
        video_noise_view2: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MAViLForPreTrainingOutput | tuple:
        r"""MAViL's objective: each modality's decoder predicts the targets of its masked tokens from the fused tokens
        of a masked view (:meth:`reconstruction_targets`: patches in stage 1, the teacher's features in stage 2), plus
        the inter- and intra-modal InfoNCE terms.

        Args:
            input_values: ``[N, T, F]`` or ``[N, 1, T, F]`` normalised fbank.
            pixel_values: ``[N, frames, C, H, W]`` normalised video.
            audio_noise, video_noise: ``[N, La]`` / ``[N, Lv]`` noise pinning the masks of the first view (drawn with
                ``torch.rand`` when omitted).
            audio_noise_view2, video_noise_view2: noise of the second masked view used by the intra-modal InfoNCE
                (drawn independently when omitted; unused when ``intra_contrastive_weight`` is 0).
            audio_mask_ratio, video_mask_ratio: override ``config.audio_mask_ratio`` / ``config.video_mask_ratio``.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        if input_values is None or pixel_values is None:
            raise ValueError("MAViL pretraining needs both input_values (audio) and pixel_values (video)")
        spectrogram = _as_spectrogram(input_values, config)
        video = _as_video(pixel_values, config)  # [N, C, T, H, W]
        audio_ratio = config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio
        video_ratio = config.video_mask_ratio if video_mask_ratio is None else video_mask_ratio

        # targets of every token (no randomness: computed first, so an unusable model fails before any work)
        audio_target, video_target = self.reconstruction_targets(input_values, pixel_values, spectrogram, video)

        # masked encoders + fusion (first view), then each modality's decoder: predictions for every token
        encoded = self.mavil(
            input_values=input_values, pixel_values=pixel_values, audio_noise=audio_noise, video_noise=video_noise,
            audio_mask_ratio=audio_ratio, video_mask_ratio=video_ratio, fuse=True,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True,
        )
        audio_pred, video_pred = self.decoder(
            encoded.fused_audio_hidden_state, encoded.audio_ids_restore, self.mavil.audio_embeddings.grid_size(spectrogram),
            encoded.fused_video_hidden_state, encoded.video_ids_restore, self.mavil.video_embeddings.grid_size(video),
        )
        terms = {
            "audio_reconstruction_loss": masked_mse(audio_pred, audio_target, encoded.audio_mask),
            "video_reconstruction_loss": masked_mse(video_pred, video_target, encoded.video_mask),
        }
        weights = {
            "audio_reconstruction_loss": config.audio_reconstruction_weight,
            "video_reconstruction_loss": config.video_reconstruction_weight,
        }

        # contrastive terms
        audio_embeds, video_embeds = self._contrastive_embeds(encoded)
        contrastive, contrastive_weights = self._contrastive_terms(
            audio_embeds, video_embeds, input_values, pixel_values, (audio_noise_view2, video_noise_view2),
            (audio_ratio, video_ratio),
        )
        terms.update(contrastive)
        weights.update(contrastive_weights)
        output = MAViLForPreTrainingOutput(
            loss=sum(weights[name] * value for name, value in terms.items()),
            **terms,
            audio_logits=audio_pred,
            video_logits=video_pred,
            audio_mask=encoded.audio_mask,
            video_mask=encoded.video_mask,
            audio_ids_restore=encoded.audio_ids_restore,
            video_ids_restore=encoded.video_ids_restore,
            last_hidden_state=encoded.last_hidden_state,
            audio_embeds=audio_embeds,
            video_embeds=video_embeds,
            audio_hidden_states=encoded.audio_hidden_states,
            video_hidden_states=encoded.video_hidden_states,
            fusion_hidden_states=encoded.fusion_hidden_states,
        )
        return output if return_dict else output.to_tuple()


def _teacher_module(teacher) -> MAViLModel:
    """A frozen :class:`MAViLModel` from a model, a model with a ``mavil`` base, or a saved folder/Hub id."""
    if isinstance(teacher, (str, os.PathLike)):
        teacher = MAViLModel.from_pretrained(teacher)
    if isinstance(teacher, MAViLPreTrainedModel) and not isinstance(teacher, MAViLModel):
        teacher = teacher.mavil
    if not isinstance(teacher, MAViLModel):
        raise TypeError(
            f"the teacher must be a MAViL model (MAViLModel, MAViLForPreTraining) or the path of one, got "
            f"{type(teacher).__name__}"
        )
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


class MAViLForStage2PreTraining(MAViLForPreTraining):
    """MAViL stage 2: a frozen teacher (a stage-1 model, later the previous student) encodes the *full* inputs; the
    student's decoders predict its fusion-layer features (aligned across modalities, contextualised) of the masked
    tokens, next to the same contrastive terms as stage 1 (``config.reconstruction_target = "teacher"``). The forward
    is stage 1's objective with :meth:`reconstruction_targets` giving the teacher's features instead of patches.

    Give the teacher as ``teacher=`` (a model or a path), with :meth:`set_teacher`, or build the next stage with
    :meth:`from_previous_stage`.

    How the teacher is held: it is *not* a submodule, so it is not in ``state_dict()`` (a saved student is the student
    alone), not in ``parameters()`` (no optimizer, DDP or gradient sees it; its own parameters are frozen too), and
    ``train()`` leaves it in eval mode. ``_apply`` is extended so that ``.to(device)``, ``.cuda()``, ``.half()`` move
    and cast it with the student. (A registered submodule would need its keys hidden from saving, loading, parameter
    counts and ``train()`` one by one; transformers' own models hold no frozen teacher.)

    Args:
        config: the model configuration; its ``reconstruction_target`` is set to ``"teacher"``.
        teacher: the teacher (model or path).
    """

    def __init__(self, config: MAViLConfig, teacher=None):
        # the class is stage 2: its config says so, so that a saved student is one (teacher heads, AutoConfig readers)
        config.reconstruction_target = "teacher"
        super().__init__(config)
        object.__setattr__(self, "_teacher", None)  # not a submodule: see the class docstring
        if teacher is not None:
            self.set_teacher(teacher)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        teacher = self.__dict__.get("_teacher")
        if teacher is not None:
            teacher._apply(fn, recurse)
        return self

    @property
    def teacher(self) -> MAViLModel | None:
        return self._teacher

    def set_teacher(self, teacher) -> None:
        """Use ``teacher`` (a MAViL model or the path of a saved one) as the frozen teacher; it moves to the student's
        device."""
        teacher = _teacher_module(teacher)
        expected = self.config.teacher_hidden_size or self.config.hidden_size
        if teacher.config.hidden_size != expected:
            raise ValueError(
                f"the teacher's features are {teacher.config.hidden_size}-d but this student predicts {expected}-d "
                "targets (config.teacher_hidden_size)"
            )
        if {id(p) for p in teacher.parameters()} & {id(p) for p in self.parameters()}:
            raise ValueError("the teacher shares parameters with the student; pass a copy (copy.deepcopy(model))")
        object.__setattr__(self, "_teacher", teacher.to(next(self.parameters()).device))

    @torch.no_grad()
    def reconstruction_targets(self, input_values, pixel_values, spectrogram, video):
        """Stage 2's targets of every token: the frozen teacher's fused features of the full inputs
        ``([N, La, Dt], [N, Lv, Dt])``, the average of its last ``teacher_num_target_layers`` fusion outputs, each
        LayerNormed (no affine) with ``teacher_target_norm``; cls rows dropped."""
        teacher = self._teacher
        if teacher is None:
            raise ValueError(
                "stage 2 needs a teacher: MAViLForStage2PreTraining(config, teacher=model_or_path), "
                "model.set_teacher(...), or MAViLForPreTraining.from_previous_stage(...)"
            )
        audio_length = math.prod(self.mavil.audio_embeddings.grid_size(spectrogram))
        video_length = math.prod(self.mavil.video_embeddings.grid_size(video))
        k = self.config.teacher_num_target_layers
        out = teacher(input_values=input_values, pixel_values=pixel_values, fuse=True, output_hidden_states=k > 1, return_dict=True)
        layers = out.fusion_hidden_states[-k:] if k > 1 else (out.last_hidden_state,)
        if len(layers) < k:
            raise ValueError(f"teacher_num_target_layers={k} but the teacher has only {len(layers) - 1} fusion layers")
        targets = []
        for hidden in layers:
            if self.config.teacher_target_norm:
                hidden = nn.functional.layer_norm(hidden.float(), hidden.shape[-1:])
            targets.append(hidden)
        target = torch.stack(targets).mean(0)  # [N, 1 + La + 1 + Lv, Dt]
        audio, video = target[:, 1 : 1 + audio_length], target[:, 2 + audio_length :]
        if video.shape[1] != video_length:
            raise ValueError(
                f"the teacher encodes {audio.shape[1]} audio and {video.shape[1]} video tokens; the student "
                f"{audio_length} and {video_length}: both must see the same input sizes"
            )
        return audio, video


class MAViLForAudioVisualClassification(MAViLPreTrainedModel):
    """MAViL encoders with audio+visual, audio-only and video-only classification heads.

    * ``audio_visual``: mean of the fusion-output audio tokens and of the fusion-output video tokens (cls excluded),
      concatenated, LayerNorm, linear (the authors' ``fc_norm_av``/``head_av``).
    * ``audio`` / ``video``: mean of that modality's encoder output (no fusion), LayerNorm, linear (their
      ``fc_norm_a``/``head_a``, ``fc_norm_v``/``head_v``).

    ``config.classifier_heads`` chooses which exist. A forward pass runs every head whose inputs are given; ``logits``
    is the audio+visual head's when both modalities are given, otherwise the single modality's, so the audio- and
    video-classification pipelines work with the same model. The loss (with ``labels``) is the sum over the heads
    that ran; multi-label (AudioSet) with ``problem_type="multi_label_classification"``.

    In training, ``mask_time_prob``/``mask_freq_prob`` drop whole audio time rows/mel columns of tokens and
    ``mask_video_prob`` random video tokens (the authors' fine-tuning masking; forward arguments as the authors'
    ``forward(..., mask_t_prob, mask_f_prob, mask_v_prob)``, defaulting to the config's values).
    """

    def __init__(self, config: MAViLConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mavil = MAViLModel(config)
        dim, eps = config.hidden_size, config.layer_norm_eps
        heads = config.classifier_heads
        self.audio_visual_norm = nn.LayerNorm(2 * dim, eps=eps) if "audio_visual" in heads else None
        self.audio_visual_classifier = nn.Linear(2 * dim, config.num_labels) if "audio_visual" in heads else None
        self.audio_norm = nn.LayerNorm(dim, eps=eps) if "audio" in heads else None
        self.audio_classifier = nn.Linear(dim, config.num_labels) if "audio" in heads else None
        self.video_norm = nn.LayerNorm(dim, eps=eps) if "video" in heads else None
        self.video_classifier = nn.Linear(dim, config.num_labels) if "video" in heads else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.post_init()

    def _finetune_masking(
        self, spectrogram, video, time_noise, freq_noise, video_noise, mask_time_prob, mask_freq_prob, mask_video_prob
    ):
        """Kept token indices of the training-time token dropping (``None``: keep everything); given noise applies it
        outside training too."""
        audio_keep = video_keep = None
        audio_on = mask_time_prob > 0 or mask_freq_prob > 0
        if spectrogram is not None and (time_noise is not None or freq_noise is not None or (self.training and audio_on)):
            batch = spectrogram.shape[0]
            time_patches, freq_patches = self.mavil.audio_embeddings.grid_size(spectrogram)
            time_noise = checked_noise(time_noise, (batch, time_patches), spectrogram.device, "time_noise", what="batch, time patches")
            freq_noise = checked_noise(freq_noise, (batch, freq_patches), spectrogram.device, "freq_noise", what="batch, mel patches")
            audio_keep = time_frequency_masking(time_noise, freq_noise, mask_time_prob, mask_freq_prob)
        if video is not None and (video_noise is not None or (self.training and mask_video_prob > 0)):
            length = math.prod(self.mavil.video_embeddings.grid_size(video))
            video_keep = mask_from_noise(
                "random", video_noise, (length,), mask_video_prob, batch=video.shape[0], device=video.device, name="video_noise",
                what="batch, video patches",
            ).ids_keep
        return audio_keep, video_keep

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        time_noise: torch.Tensor | None = None,
        freq_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        mask_time_prob: float | None = None,
        mask_freq_prob: float | None = None,
        mask_video_prob: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MAViLClassifierOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` or ``[N, 1, T, F]`` normalised fbank (optional if ``pixel_values`` is given).
            pixel_values: ``[N, frames, C, H, W]`` normalised video (optional if ``input_values`` is given).
            labels: class indices ``[N]`` or multi-hot ``[N, num_labels]``.
            time_noise, freq_noise: ``[N, T']`` / ``[N, F']`` noise pinning the audio time/frequency token dropping.
            video_noise: ``[N, Lv]`` noise pinning the video token dropping.
            mask_time_prob, mask_freq_prob, mask_video_prob: the token-dropping probabilities of this call
                (``config.mask_*_prob`` when omitted).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        if input_values is None and pixel_values is None:
            raise ValueError("pass input_values (audio), pixel_values (video) or both")
        heads = config.classifier_heads
        run_av = input_values is not None and pixel_values is not None and "audio_visual" in heads
        run_audio = input_values is not None and "audio" in heads
        run_video = pixel_values is not None and "video" in heads
        if not (run_av or run_audio or run_video):
            given = "audio and video" if input_values is not None and pixel_values is not None else (
                "audio only" if input_values is not None else "video only"
            )
            raise ValueError(
                f"this model has the heads {list(heads)} (config.classifier_heads), none of which can classify "
                f"{given}; give the other modality too or use a model with the matching head"
            )
        spectrogram = _as_spectrogram(input_values, config) if input_values is not None else None
        video = _as_video(pixel_values, config) if pixel_values is not None else None
        audio_keep, video_keep = self._finetune_masking(
            spectrogram, video, time_noise, freq_noise, video_noise,
            config.mask_time_prob if mask_time_prob is None else mask_time_prob,
            config.mask_freq_prob if mask_freq_prob is None else mask_freq_prob,
            config.mask_video_prob if mask_video_prob is None else mask_video_prob,
        )
        encoded = self.mavil(
            input_values=input_values if (run_av or run_audio) else None,
            pixel_values=pixel_values if (run_av or run_video) else None,
            audio_ids_keep=audio_keep if (run_av or run_audio) else None,
            video_ids_keep=video_keep if (run_av or run_video) else None,
            fuse=run_av,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = {}
        if run_av:
            pooled = torch.cat([_pool(encoded.fused_audio_hidden_state), _pool(encoded.fused_video_hidden_state)], dim=-1)
            logits["audio_visual"] = self.audio_visual_classifier(self.dropout(self.audio_visual_norm(pooled)))  # [N, 2D]
        if run_audio:
            logits["audio"] = self.audio_classifier(self.dropout(self.audio_norm(_pool(encoded.audio_last_hidden_state))))
        if run_video:
            logits["video"] = self.video_classifier(self.dropout(self.video_norm(_pool(encoded.video_last_hidden_state))))
        for name, value in logits.items():
            check_head_matches_labels(config, value, f"{name}_classifier")
        main = next(logits[name] for name in ("audio_visual", "audio", "video") if name in logits)
        loss = None
        if labels is not None:
            loss = sum(classification_loss(config, value, labels) for value in logits.values())
        output = MAViLClassifierOutput(
            loss=loss,
            logits=main,
            audio_visual_logits=logits.get("audio_visual"),
            audio_logits=logits.get("audio"),
            video_logits=logits.get("video"),
            audio_hidden_states=encoded.audio_hidden_states,
            video_hidden_states=encoded.video_hidden_states,
            fusion_hidden_states=encoded.fusion_hidden_states,
            audio_attentions=encoded.audio_attentions,
            video_attentions=encoded.video_attentions,
            fusion_attentions=encoded.fusion_attentions,
        )
        return output if return_dict else output.to_tuple()

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised audio and video embeddings of the encoders (see :meth:`MAViLModel.get_retrieval_embeddings`)."""
        return self.mavil.get_retrieval_embeddings(input_values, pixel_values)


__all__ = [
    "MAViLForAudioVisualClassification",
    "MAViLForPreTraining",
    "MAViLForStage2PreTraining",
    "MAViLModel",
    "MAViLPreTrainedModel",
]
