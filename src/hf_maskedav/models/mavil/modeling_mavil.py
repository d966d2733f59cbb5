"""MAViL: masked audio-video learners (Huang et al., NeurIPS 2023), and the joint audio-visual MAE variants of
Georgescu et al. (ICCV 2023) through the same configuration.

Meta released no MAViL code. The encoder follows the MAViL authors' code given to AV-SUPERB (roger-tseng/av-superb,
``upstream_models/mavil/models_vitmm.py``): an Audio-MAE-style audio ViT, a video ViT on 2x16x16 tubelets with a fixed
3-D sin-cos table, a cls token per modality, and fusion layers over ``[cls_a, audio, cls_v, video]``, with no final
LayerNorm anywhere. Decoders, contrastive terms and the stage-2 teacher are not in any public code; how we built them is
documented in the config docstring and ``docs/mavil.md``.

Shapes in comments: N = batch, D = encoder width, Dd = decoder width, La/Lv = audio/video patch tokens, Ka/Kv = kept
tokens; audio tokens are time-major (``t * F' + f``), video tokens ``(t, h, w)``. In every mask 1 = masked.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from ...layers import (
    FixedPositionTable,
    PatchEmbed2D,
    TransformerLayer,
    TubeletEmbed3D,
    audiomae_position_table,
    gather_tokens,
    ids_from_bool_mask,
    info_nce,
    masked_mse,
    normalize_per_patch,
    patchify_2d,
    patchify_3d,
    random_masking,
    restore_with_mask_tokens,
    run_layers,
    sincos_2d_table,
    sincos_3d_table,
    time_frequency_masking,
)
from ...modeling_utils import (
    check_head_matches_labels,
    check_model_input,
    classification_loss,
    init_mae_weights,
)
from .configuration_mavil import MAViLConfig

logger = logging.get_logger(__name__)

MODALITIES = ("audio", "video")


# ----------------------------------------------------------------------------------------------------------------------
# Outputs
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
# Input checks and position tables
# ----------------------------------------------------------------------------------------------------------------------


def _as_spectrogram(input_values: torch.Tensor, config: MAViLConfig) -> torch.Tensor:
    """Accept ``[N, T, F]`` (feature-extractor layout) or ``[N, 1, T, F]`` and return ``[N, 1, T, F]``."""
    if not isinstance(input_values, torch.Tensor):
        raise TypeError(f"input_values must be a torch.Tensor, got {type(input_values).__name__}")
    if input_values.dim() == 3:
        input_values = input_values.unsqueeze(1)
    if input_values.dim() != 4 or input_values.shape[1] != 1:
        raise ValueError(
            "input_values must have shape (batch, frames, mel_bins) or (batch, 1, frames, mel_bins); got "
            f"{tuple(input_values.shape)}. Use MAViLProcessor (or AudioMAEFeatureExtractor) to make them from audio."
        )
    frames, mel_bins = input_values.shape[-2:]
    if mel_bins != config.num_mel_bins:
        raise ValueError(
            f"input_values has {mel_bins} mel bins but the model expects {config.num_mel_bins} (config.num_mel_bins); "
            "is the (frames, mel_bins) order swapped?"
        )
    if frames < config.audio_patch_size or frames % config.audio_patch_size:
        raise ValueError(
            f"input_values has {frames} frames; the audio branch needs a positive multiple of the patch size "
            f"{config.audio_patch_size} (pad or crop to config.max_length={config.max_length})"
        )
    if not input_values.is_floating_point():
        raise TypeError(f"input_values must be a floating-point tensor, got {input_values.dtype}")
    check_model_input(input_values, "input_values")
    return input_values


def _as_video(pixel_values: torch.Tensor, config: MAViLConfig) -> torch.Tensor:
    """Accept ``[N, T, C, H, W]`` (transformers video layout) and return ``[N, C, T, H, W]`` for the tubelet conv."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
    channels = config.num_channels
    if pixel_values.dim() != 5 or pixel_values.shape[2] != channels:
        hint = ""
        if pixel_values.dim() == 5 and pixel_values.shape[1] == channels:
            hint = " It looks like (batch, channels, frames, height, width): use pixel_values.permute(0, 2, 1, 3, 4)."
        raise ValueError(
            f"pixel_values must have shape (batch, frames, {channels}, height, width); got "
            f"{tuple(pixel_values.shape)}.{hint} MAViLProcessor makes them from a video."
        )
    frames, height, width = pixel_values.shape[1], pixel_values.shape[3], pixel_values.shape[4]
    if frames % config.tubelet_size or height % config.video_patch_size or width % config.video_patch_size:
        raise ValueError(
            f"a video of {frames} frames of {height}x{width} does not split into {config.tubelet_size}x"
            f"{config.video_patch_size}x{config.video_patch_size} tubelets (the model expects {config.num_frames} frames "
            f"of {config.image_size}x{config.image_size})"
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values must be a floating-point tensor, got {pixel_values.dtype}")
    check_model_input(pixel_values, "pixel_values")
    return pixel_values.transpose(1, 2)


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


class StoredPositionTable(nn.Module):
    """A position table kept as a *persistent* buffer: in the state dict, loaded as stored, never trained.

    Used with ``config.position_tables = "stored"`` (converted checkpoints whose tables are stored values). It starts
    as the sin-cos table of ``builder`` and is refilled with it in ``_init_weights`` unless a checkpoint loaded it.
    """

    def __init__(self, builder, *grid):
        super().__init__()
        self.builder = builder
        self.grid = tuple(grid)
        self.register_buffer("table", builder(*grid).unsqueeze(0), persistent=True)

    def build(self) -> torch.Tensor:
        return self.builder(*self.grid).unsqueeze(0)

    def for_grid(self, *grid) -> torch.Tensor:
        if tuple(grid) != self.grid:
            raise ValueError(
                f"this model stores its position table for a token grid of {self.grid}; the input gives {tuple(grid)}. "
                "A stored table cannot be rebuilt for another size: resize/pad the input to the configured size."
            )
        return self.table

    def extra_repr(self) -> str:
        return f"grid={self.grid}, shape={tuple(self.table.shape)}"


def _position_table(config: MAViLConfig, builder, grid):
    table_class = StoredPositionTable if config.position_tables == "stored" else FixedPositionTable
    return table_class(builder, *grid)


def _pool(hidden: torch.Tensor, has_cls: bool) -> torch.Tensor:
    """Mean over the patch tokens (cls excluded), as the authors' ``global_pool``: ``[N, 1 + K, D] -> [N, D]``."""
    return (hidden[:, 1:] if has_cls else hidden).mean(dim=1)


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


def _embed_with_positions(patch_embed, values: torch.Tensor, positions: torch.Tensor, ids_keep: torch.Tensor | None):
    """Patch tokens plus their positions (added before masking, authors' code); with ``ids_keep`` only the kept
    tokens are cut and projected."""
    values = values.to(patch_embed.proj.weight.dtype)
    if ids_keep is None:
        return patch_embed(values) + positions
    tokens = patch_embed.embed_selected(values, ids_keep)  # [N, K, D]
    return tokens + gather_tokens(positions.to(tokens.dtype).expand(tokens.shape[0], -1, -1), ids_keep)


class MAViLAudioEmbeddings(nn.Module):
    """Spectrogram patches (Conv2d, time-major tokens), cls token and the fixed/stored 2-D table (Audio-MAE style)."""

    def __init__(self, config: MAViLConfig):
        super().__init__()
        dim = config.hidden_size
        self.patch_embed = PatchEmbed2D(1, dim, config.audio_patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.use_cls_token else None
        self.position_embeddings = _position_table(
            config, partial(audio_table_function(config), dim), config.audio_grid_size
        )
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, dim)) if config.use_modality_embeddings else None

    def grid_size(self, spectrogram: torch.Tensor) -> tuple[int, int]:
        return self.patch_embed.grid_size(*spectrogram.shape[-2:])

    def forward(self, spectrogram: torch.Tensor, ids_keep: torch.Tensor | None = None):
        """``[N, 1, T, F]`` -> patch tokens with positions ``[N, La, D]`` (only the ``[N, K]`` tokens ``ids_keep``
        when given) and the cls token with its position."""
        grid = self.grid_size(spectrogram)
        positions = self.position_embeddings.for_grid(*grid)  # [1, 1 + La, D], cls row first
        tokens = _embed_with_positions(self.patch_embed, spectrogram, positions[:, 1:], ids_keep)
        cls = self.cls_token + positions[:, :1] if self.cls_token is not None else None
        if self.modality_embedding is not None:
            tokens = tokens + self.modality_embedding
            cls = cls + self.modality_embedding if cls is not None else None
        return tokens, cls


class MAViLVideoEmbeddings(nn.Module):
    """Tubelets (Conv3d, ``(t, h, w)`` tokens), cls token and the fixed/stored 3-D table."""

    def __init__(self, config: MAViLConfig):
        super().__init__()
        dim = config.hidden_size
        self.patch_embed = TubeletEmbed3D(config.num_channels, dim, config.tubelet_size, config.video_patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.use_cls_token else None
        self.position_embeddings = _position_table(config, partial(video_table, dim), config.video_grid_size)
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, dim)) if config.use_modality_embeddings else None

    def grid_size(self, video: torch.Tensor) -> tuple[int, int, int]:
        return self.patch_embed.grid_size(*video.shape[-3:])

    def forward(self, video: torch.Tensor, ids_keep: torch.Tensor | None = None):
        """``[N, C, T, H, W]`` -> tubelet tokens with positions ``[N, Lv, D]`` (only the ``[N, K]`` tokens
        ``ids_keep`` when given) and the cls token with its position."""
        grid = self.grid_size(video)
        positions = self.position_embeddings.for_grid(*grid)  # [1, 1 + Lv, D]
        tokens = _embed_with_positions(self.patch_embed, video, positions[:, 1:], ids_keep)
        cls = self.cls_token + positions[:, :1] if self.cls_token is not None else None
        if self.modality_embedding is not None:
            tokens = tokens + self.modality_embedding
            cls = cls + self.modality_embedding if cls is not None else None
        return tokens, cls


def _encoder_layers(config: MAViLConfig, depth: int, drop_path: bool = True) -> nn.ModuleList:
    rates = torch.linspace(0, config.drop_path_rate, depth).tolist() if drop_path else [0.0] * depth
    return nn.ModuleList(
        TransformerLayer(
            config,
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            qkv_bias="qkv" if config.qkv_bias else "none",
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
            drop_path=rates[i],
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        for i in range(depth)
    )


def _decoder_layers(config: MAViLConfig) -> nn.ModuleList:
    return nn.ModuleList(
        TransformerLayer(
            config,
            config.decoder_hidden_size,
            config.decoder_num_attention_heads,
            config.decoder_intermediate_size,
            qkv_bias="qkv" if config.qkv_bias else "none",
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
        )
        for _ in range(config.decoder_num_hidden_layers)
    )


# ----------------------------------------------------------------------------------------------------------------------
# Decoder
# ----------------------------------------------------------------------------------------------------------------------


class MAViLDecoderEnds(nn.Module):
    """The modality-specific ends of a decoder: input projection, mask token, fixed table, output head.

    ``pixel_head`` predicts spectrogram/pixel patches (stage 1); ``teacher_head`` predicts the teacher's features
    (stage 2). Only the one ``config.reconstruction_target`` needs is built.
    """

    def __init__(self, config: MAViLConfig, builder, grid, pixel_dim: int, modality_embedding: bool):
        super().__init__()
        dim = config.decoder_hidden_size
        self.has_cls = config.use_cls_token
        self.embed = nn.Linear(config.hidden_size, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = FixedPositionTable(partial(builder, dim), *grid)
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, dim)) if modality_embedding else None
        if config.reconstruction_target == "pixels":
            self.pixel_head, self.teacher_head = nn.Linear(dim, pixel_dim), None
        else:
            self.pixel_head, self.teacher_head = None, nn.Linear(dim, config.teacher_hidden_size or config.hidden_size)

    def prepare(self, hidden: torch.Tensor | None, ids_restore: torch.Tensor | None, grid, batch: int):
        """Encoder tokens ``[N, (1) + K, D]`` -> full decoder sequence ``[N, (1) + L, Dd]`` in token order.

        ``hidden=None`` (the inpainted modality, never encoded) gives mask tokens only, without a cls row.
        Returns the sequence and whether its first row is a cls row.
        """
        positions = self.position_embeddings.for_grid(*grid)  # [1, 1 + L, Dd]
        if hidden is None:
            length = positions.shape[1] - 1
            sequence = self.mask_token.expand(batch, length, -1) + positions[:, 1:]
            has_cls = False
        else:
            hidden = self.embed(hidden)  # [N, (1) + K, Dd]
            tokens = hidden[:, 1:] if self.has_cls else hidden
            tokens = restore_with_mask_tokens(tokens, self.mask_token, ids_restore)  # [N, L, Dd], token order
            if self.has_cls:
                sequence = torch.cat([hidden[:, :1], tokens], dim=1) + positions
            else:
                sequence = tokens + positions[:, 1:]
            has_cls = self.has_cls
        if self.modality_embedding is not None:
            sequence = sequence + self.modality_embedding
        return sequence, has_cls

    def predict(self, sequence: torch.Tensor, has_cls: bool) -> torch.Tensor:
        head = self.pixel_head if self.pixel_head is not None else self.teacher_head
        out = head(sequence)
        return out[:, 1:] if has_cls else out  # [N, L, P]


class MAViLDecoder(nn.Module):
    """Audio and video decoders: ``separate`` (one per modality, MAViL), ``shared`` (one set of layers run on each
    modality in turn, AV-MAE) or ``joint`` (one set of layers over both modalities' tokens)."""

    def __init__(self, config: MAViLConfig):
        super().__init__()
        self.decoder_type = config.decoder_type
        joint = config.decoder_type == "joint"
        self.audio = MAViLDecoderEnds(
            config, audio_table_function(config), config.audio_grid_size, config.audio_patch_dim, joint
        )
        self.video = MAViLDecoderEnds(config, video_table, config.video_grid_size, config.video_patch_dim, joint)
        if config.decoder_type == "separate":
            self.audio_layers, self.video_layers = _decoder_layers(config), _decoder_layers(config)
            self.audio_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
            self.video_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        else:
            self.layers = _decoder_layers(config)
            self.norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)

    def _run(self, modality: str, sequence: torch.Tensor) -> torch.Tensor:
        if self.decoder_type == "separate":
            layers, norm = getattr(self, f"{modality}_layers"), getattr(self, f"{modality}_norm")
        else:
            layers, norm = self.layers, self.norm
        sequence, _, _ = run_layers(layers, sequence)
        return norm(sequence)

    def forward(self, audio, audio_ids_restore, audio_grid, video, video_ids_restore, video_grid, batch: int):
        """Returns ``([N, La, Pa], [N, Lv, Pv])`` predictions for every token of both modalities."""
        audio_seq, audio_cls = self.audio.prepare(audio, audio_ids_restore, audio_grid, batch)
        video_seq, video_cls = self.video.prepare(video, video_ids_restore, video_grid, batch)
        if self.decoder_type == "joint":
            joint = self._run("joint", torch.cat([audio_seq, video_seq], dim=1))
            audio_seq, video_seq = joint[:, : audio_seq.shape[1]], joint[:, audio_seq.shape[1] :]
        else:
            audio_seq, video_seq = self._run("audio", audio_seq), self._run("video", video_seq)
        return self.audio.predict(audio_seq, audio_cls), self.video.predict(video_seq, video_cls)


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
        """MAE initialisation of the shared blocks (``init_mae_weights``) plus MAViL's tokens and stored tables."""
        if init_mae_weights(module):
            return
        std = self.config.initializer_range
        if isinstance(module, (MAViLAudioEmbeddings, MAViLVideoEmbeddings)):
            for param in (module.cls_token, module.modality_embedding):
                if param is not None:
                    init.normal_(param, std=std)
        elif isinstance(module, MAViLDecoderEnds):
            init.normal_(module.mask_token, std=std)
            if module.modality_embedding is not None:
                init.normal_(module.modality_embedding, std=std)
        elif isinstance(module, StoredPositionTable):
            init.copy_(module.table, module.build())

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


class MAViLModel(MAViLPreTrainedModel):
    """The MAViL encoders: audio ViT, video ViT and the fusion layers over both modalities' tokens.

    Call it with both ``input_values`` and ``pixel_values`` for the fused representation, or with one of them for that
    modality's encoder alone (the fusion layers need both, unless ``fuse=True``). Without masking arguments every
    token is encoded.
    """

    def __init__(self, config: MAViLConfig):
        super().__init__(config)
        self.audio_embeddings = MAViLAudioEmbeddings(config)
        self.video_embeddings = MAViLVideoEmbeddings(config)
        self.audio_layers = _encoder_layers(config, config.audio_num_hidden_layers)
        # a shared encoder ("shared" variant of Georgescu et al.) runs audio_layers on both modalities
        self.video_layers = None if config.share_modality_encoders else _encoder_layers(config, config.video_num_hidden_layers)
        self.fusion_layers = _encoder_layers(config, config.fusion_num_hidden_layers)
        self.post_init()

    def modality_layers(self, modality: str) -> nn.ModuleList:
        if modality == "video" and self.video_layers is not None:
            return self.video_layers
        return self.audio_layers

    def _mask(self, batch, length, device, noise, mask_ratio, default_ratio, bool_masked_pos, ids_keep, name):
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
            ids_keep, ids_restore, mask = masking.ids_keep, masking.ids_restore, masking.mask
        elif ids_keep is not None:
            ids_restore, mask = _ids_restore_from_keep(ids_keep, length)
        elif noise is not None or mask_ratio is not None:
            if noise is None:
                noise = torch.rand(batch, length, device=device)
            if noise.shape != (batch, length):
                raise ValueError(f"{name}_noise must have shape {(batch, length)} (batch, {name} patches), got {tuple(noise.shape)}")
            masking = random_masking(noise, default_ratio if mask_ratio is None else mask_ratio)
            ids_keep, ids_restore, mask = masking.ids_keep, masking.ids_restore, masking.mask
        else:
            return torch.zeros(batch, length, device=device), None, None
        return mask.to(device), ids_restore, ids_keep

    def _encode(self, modality, values, noise, mask_ratio, bool_masked_pos, ids_keep, output_hidden_states, output_attentions):
        embeddings = self.audio_embeddings if modality == "audio" else self.video_embeddings
        length = math.prod(embeddings.grid_size(values))
        default_ratio = self.config.audio_mask_ratio if modality == "audio" else self.config.video_mask_ratio
        mask, ids_restore, ids_keep = self._mask(
            values.shape[0], length, values.device, noise, mask_ratio, default_ratio, bool_masked_pos, ids_keep, modality
        )
        # positions are added before masking (authors' code); only the kept tokens are embedded
        tokens, cls = embeddings(values, ids_keep)
        hidden = tokens if cls is None else torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        hidden, all_hidden, all_attentions = run_layers(
            self.modality_layers(modality), hidden, output_hidden_states, output_attentions
        )
        return dict(hidden=hidden, mask=mask, ids_restore=ids_restore, ids_keep=ids_keep, all_hidden=all_hidden, all_attentions=all_attentions)

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
            fuse: run the fusion layers; default: when both modalities are given. ``fuse=True`` with one modality
                runs them on that modality alone (cross-modal inpainting).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = bool(output_hidden_states)
        output_attentions = bool(output_attentions)
        if input_values is None and pixel_values is None:
            raise ValueError("MAViLModel needs input_values (audio), pixel_values (video) or both")
        encoded = {}
        if input_values is not None:
            spectrogram = _as_spectrogram(input_values, self.config)
            encoded["audio"] = self._encode(
                "audio", spectrogram, audio_noise, audio_mask_ratio, audio_bool_masked_pos, audio_ids_keep,
                output_hidden_states, output_attentions,
            )
        if pixel_values is not None:
            video = _as_video(pixel_values, self.config)
            encoded["video"] = self._encode(
                "video", video, video_noise, video_mask_ratio, video_bool_masked_pos, video_ids_keep,
                output_hidden_states, output_attentions,
            )
        if input_values is not None and pixel_values is not None and input_values.shape[0] != pixel_values.shape[0]:
            raise ValueError(f"batch sizes differ: {input_values.shape[0]} audio clips, {pixel_values.shape[0]} videos")

        fuse = len(encoded) == 2 if fuse is None else fuse
        fused = fusion_hidden = fusion_attentions = None
        fused_parts = {}
        if fuse:
            # [cls_a, audio, cls_v, video] (authors' forward_features_av: torch.cat along the token axis, audio first)
            fused = torch.cat([encoded[m]["hidden"] for m in MODALITIES if m in encoded], dim=1)
            fused, fusion_hidden, fusion_attentions = run_layers(
                self.fusion_layers, fused, output_hidden_states, output_attentions
            )
            start = 0
            for m in MODALITIES:
                if m in encoded:
                    length = encoded[m]["hidden"].shape[1]
                    fused_parts[m] = fused[:, start : start + length]
                    start += length
        last = fused if fused is not None else next(iter(encoded.values()))["hidden"]

        def get(modality, key):
            return encoded[modality][key] if modality in encoded else None

        output = MAViLModelOutput(
            last_hidden_state=last,
            audio_last_hidden_state=get("audio", "hidden"),
            video_last_hidden_state=get("video", "hidden"),
            fused_audio_hidden_state=fused_parts.get("audio"),
            fused_video_hidden_state=fused_parts.get("video"),
            audio_mask=get("audio", "mask"),
            video_mask=get("video", "mask"),
            audio_ids_restore=get("audio", "ids_restore"),
            video_ids_restore=get("video", "ids_restore"),
            audio_ids_keep=get("audio", "ids_keep"),
            video_ids_keep=get("video", "ids_keep"),
            audio_hidden_states=get("audio", "all_hidden"),
            video_hidden_states=get("video", "all_hidden"),
            fusion_hidden_states=fusion_hidden,
            audio_attentions=get("audio", "all_attentions"),
            video_attentions=get("video", "all_attentions"),
            fusion_attentions=fusion_attentions,
        )
        return output if return_dict else output.to_tuple()

    # -- retrieval ---------------------------------------------------------------------------------------------------

    def get_audio_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled audio-encoder output (no masking, no fusion)."""
        hidden = self(input_values=input_values, return_dict=True).audio_last_hidden_state
        return _pool(hidden, self.config.use_cls_token)

    def get_video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled video-encoder output (no masking, no fusion)."""
        hidden = self(pixel_values=pixel_values, return_dict=True).video_last_hidden_state
        return _pool(hidden, self.config.use_cls_token)

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised ``([N, D] audio, [N, D] video)`` embeddings; ``audio @ video.T`` ranks videos for each
        audio clip (audio->video retrieval) and its transpose audios for each video. Each modality is encoded on its
        own (fusion would mix the candidates being ranked)."""
        audio = nn.functional.normalize(self.get_audio_features(input_values), dim=-1)
        video = nn.functional.normalize(self.get_video_features(pixel_values), dim=-1)
        return audio, video


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


class MAViLForPreTraining(MAViLPreTrainedModel):
    """MAViL pretraining: masked reconstruction by per-modality decoders plus inter- and intra-modal InfoNCE.

    * Stage 1 (``config.reconstruction_target = "pixels"``): the decoders reconstruct the raw spectrogram and video
      patches of the masked tokens.
    * Stage 2 (``"teacher"``): a frozen teacher (a stage-1 model, later the previous student) encodes the *full*
      inputs; the decoders predict its fusion-layer features (aligned across modalities, contextualised) of the
      masked tokens. Give the teacher as ``teacher=`` (a model or a path), with :meth:`set_teacher`, or build the
      next stage with :meth:`from_previous_stage`. The teacher is not a submodule: it is neither trained nor saved
      with the student.
    * AV-MAE variants (Georgescu et al.): contrastive weights 0, ``decoder_type`` shared/joint, fusion depths,
      ``share_modality_encoders`` and ``inpainting`` in the config.

    Args:
        config: the model configuration.
        teacher: the stage-2 teacher (model or path); needed only when ``config.reconstruction_target = "teacher"``.
    """

    def __init__(self, config: MAViLConfig, teacher=None):
        super().__init__(config)
        self.mavil = MAViLModel(config)
        self.decoder = MAViLDecoder(config)
        projection = config.contrastive_projection_dim
        self.audio_projection = nn.Linear(config.hidden_size, projection) if projection else None
        self.video_projection = nn.Linear(config.hidden_size, projection) if projection else None
        object.__setattr__(self, "_teacher", None)  # deliberately not a registered submodule
        self.post_init()
        if teacher is not None:
            self.set_teacher(teacher)
        if config.inpainting != "none" and (config.inter_contrastive_weight or config.intra_contrastive_weight):
            raise ValueError(
                "inpainting (AV-MAE's cross-modal objective) hides one modality from the encoder, so there is no pair "
                "to contrast: set inter_contrastive_weight=0 and intra_contrastive_weight=0"
            )

    # -- teacher -----------------------------------------------------------------------------------------------------

    @property
    def teacher(self) -> MAViLModel | None:
        return self._teacher

    def set_teacher(self, teacher) -> None:
        """Use ``teacher`` (a MAViL model or the path of a saved one) as the frozen stage-2 teacher."""
        teacher = _teacher_module(teacher)
        expected = self.config.teacher_hidden_size or self.config.hidden_size
        if teacher.config.hidden_size != expected:
            raise ValueError(
                f"the teacher's features are {teacher.config.hidden_size}-d but this student predicts {expected}-d "
                "targets (config.teacher_hidden_size)"
            )
        if {id(p) for p in teacher.parameters()} & {id(p) for p in self.parameters()}:
            raise ValueError("the teacher shares parameters with the student; pass a copy (copy.deepcopy(model))")
        object.__setattr__(self, "_teacher", teacher)

    @classmethod
    def from_previous_stage(cls, previous, teacher=None, init_from_previous: bool = True, **config_overrides):
        """The next stage-2 iteration: the student predicts the features of ``previous`` (frozen).

        Args:
            previous: the stage-1 model or the previous student (a model or a path).
            teacher: another teacher instead of a frozen copy of ``previous``.
            init_from_previous: start the student from ``previous``'s weights (our choice; the paper's student
                initialisation was not recovered). The feature-prediction heads are new when ``previous`` was a
                stage-1 model.
            config_overrides: other config fields of the student.
        """
        if isinstance(previous, (str, os.PathLike)):
            previous = cls.from_pretrained(previous)
        if not isinstance(previous, MAViLForPreTraining):
            raise TypeError(f"previous must be a MAViLForPreTraining or its path, got {type(previous).__name__}")
        fields = previous.config.to_dict()
        fields.update(reconstruction_target="teacher", **config_overrides)
        for key in ("model_type", "transformers_version", "architectures"):
            fields.pop(key, None)
        student = cls(MAViLConfig(**fields))
        if init_from_previous:
            missing, unexpected = student.load_state_dict(previous.state_dict(), strict=False)
            allowed = ("decoder.audio.pixel_head.", "decoder.video.pixel_head.", "decoder.audio.teacher_head.", "decoder.video.teacher_head.")
            wrong = [k for k in list(missing) + list(unexpected) if not k.startswith(allowed)]
            if wrong:
                raise ValueError(f"the previous model does not match the student's architecture: {wrong}")
        student.set_teacher(teacher if teacher is not None else copy.deepcopy(previous.mavil))
        return student

    # -- helpers -----------------------------------------------------------------------------------------------------

    def patchify_audio(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """``[N, 1, T, F] -> [N, La, p*p]`` (time-major tokens)."""
        return patchify_2d(spectrogram, self.config.audio_patch_size)

    def patchify_video(self, video: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W] -> [N, Lv, t*p*p*C]`` (tokens (t, h, w), values (frame, row, col, channel))."""
        return patchify_3d(video, self.config.tubelet_size, self.config.video_patch_size)

    def _project(self, modality: str, pooled: torch.Tensor) -> torch.Tensor:
        projection = self.audio_projection if modality == "audio" else self.video_projection
        return projection(pooled) if projection is not None else pooled

    def _contrastive_features(self, encoded: MAViLModelOutput, modality: str) -> torch.Tensor:
        if self.config.contrastive_features == "fusion":
            hidden = getattr(encoded, f"fused_{modality}_hidden_state")
        else:
            hidden = getattr(encoded, f"{modality}_last_hidden_state")
        return self._project(modality, _pool(hidden, self.config.use_cls_token))

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised audio and video embeddings (through the contrastive projections when the config has them);
        see :meth:`MAViLModel.get_retrieval_embeddings`."""
        audio = self._project("audio", self.mavil.get_audio_features(input_values))
        video = self._project("video", self.mavil.get_video_features(pixel_values))
        return nn.functional.normalize(audio, dim=-1), nn.functional.normalize(video, dim=-1)

    @torch.no_grad()
    def _teacher_targets(self, input_values, pixel_values, audio_length: int, video_length: int):
        """The teacher's fusion features of every audio and video token ``([N, La, Dt], [N, Lv, Dt])``."""
        if self._teacher is None:
            raise ValueError(
                "stage 2 (config.reconstruction_target='teacher') needs a teacher: MAViLForPreTraining(config, "
                "teacher=model_or_path), model.set_teacher(...), or MAViLForPreTraining.from_previous_stage(...)"
            )
        teacher = self._teacher
        reference = next(self.parameters())
        if next(teacher.parameters()).device != reference.device:
            teacher.to(reference.device)
        k = self.config.teacher_num_target_layers
        out = teacher(input_values=input_values, pixel_values=pixel_values, fuse=True, output_hidden_states=k > 1, return_dict=True)
        layers = out.fusion_hidden_states[-k:] if k > 1 else (out.last_hidden_state,)
        if len(layers) < k:
            raise ValueError(f"teacher_num_target_layers={k} but the teacher has only {len(layers) - 1} fusion layers")
        cls = int(teacher.config.use_cls_token)
        targets = []
        for hidden in layers:
            if self.config.teacher_target_norm:
                hidden = nn.functional.layer_norm(hidden.float(), hidden.shape[-1:])
            targets.append(hidden)
        target = torch.stack(targets).mean(0)  # [N, S, Dt]
        audio = target[:, cls : cls + audio_length]
        video = target[:, 2 * cls + audio_length :]
        if video.shape[1] != video_length:
            raise ValueError(
                f"the teacher encodes {audio.shape[1]} audio and {video.shape[1]} video tokens; the student "
                f"{audio_length} and {video_length}: both must see the same input sizes"
            )
        return audio, video

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
        r"""
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
        batch = spectrogram.shape[0]
        audio_ratio = config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio
        video_ratio = config.video_mask_ratio if video_mask_ratio is None else video_mask_ratio
        audio_grid = self.mavil.audio_embeddings.grid_size(spectrogram)
        video_grid = self.mavil.video_embeddings.grid_size(video)
        audio_length, video_length = audio_grid[0] * audio_grid[1], video_grid[0] * video_grid[1] * video_grid[2]

        # -- first view: masked encoders + fusion ----------------------------------------------------------------------
        hide = {"audio_to_video": "video", "video_to_audio": "audio"}.get(config.inpainting)
        encoded = self.mavil(
            input_values=None if hide == "audio" else input_values,
            pixel_values=None if hide == "video" else pixel_values,
            audio_noise=audio_noise,
            video_noise=video_noise,
            audio_mask_ratio=audio_ratio,
            video_mask_ratio=video_ratio,
            fuse=True,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        masks, restores = {}, {}
        for m, length in (("audio", audio_length), ("video", video_length)):
            if m == hide:  # the inpainted modality: every token is hidden and reconstructed
                masks[m] = torch.ones(batch, length, device=spectrogram.device)
                restores[m] = torch.arange(length, device=spectrogram.device).expand(batch, -1)
            else:
                masks[m], restores[m] = getattr(encoded, f"{m}_mask"), getattr(encoded, f"{m}_ids_restore")

        audio_pred, video_pred = self.decoder(
            encoded.fused_audio_hidden_state, restores["audio"], audio_grid,
            encoded.fused_video_hidden_state, restores["video"], video_grid, batch,
        )

        # -- reconstruction targets ----------------------------------------------------------------------------------
        if config.reconstruction_target == "teacher":
            audio_target, video_target = self._teacher_targets(input_values, pixel_values, audio_length, video_length)
        else:
            # in the inputs' precision (float32 under autocast); masked_mse runs in float32
            audio_target = self.patchify_audio(spectrogram)
            video_target = self.patchify_video(video)
            if config.audio_norm_pix_loss:
                audio_target = normalize_per_patch(audio_target)
            if config.video_norm_pix_loss:
                video_target = normalize_per_patch(video_target)
        terms = {
            "audio_reconstruction_loss": masked_mse(audio_pred, audio_target, masks["audio"]),
            "video_reconstruction_loss": masked_mse(video_pred, video_target, masks["video"]),
        }
        weights = {
            "audio_reconstruction_loss": config.audio_reconstruction_weight,
            "video_reconstruction_loss": config.video_reconstruction_weight,
        }

        # -- contrastive terms ---------------------------------------------------------------------------------------
        audio_embeds = video_embeds = None
        if hide is None:
            audio_embeds = self._contrastive_features(encoded, "audio")
            video_embeds = self._contrastive_features(encoded, "video")
        if config.inter_contrastive_weight > 0:
            terms["inter_contrastive_loss"] = info_nce(
                audio_embeds, video_embeds, config.inter_contrastive_temperature, config.contrastive_symmetric
            )
            weights["inter_contrastive_loss"] = config.inter_contrastive_weight
        if config.intra_contrastive_weight > 0:
            # a second, independently masked view of each modality
            view2 = self.mavil(
                input_values=input_values,
                pixel_values=pixel_values,
                audio_noise=audio_noise_view2,
                video_noise=video_noise_view2,
                audio_mask_ratio=audio_ratio,
                video_mask_ratio=video_ratio,
                fuse=config.contrastive_features == "fusion",
                return_dict=True,
            )
            for m, first in (("audio", audio_embeds), ("video", video_embeds)):
                terms[f"{m}_intra_contrastive_loss"] = info_nce(
                    first, self._contrastive_features(view2, m), config.intra_contrastive_temperature,
                    config.contrastive_symmetric,
                )
                weights[f"{m}_intra_contrastive_loss"] = config.intra_contrastive_weight
        loss = sum(weights[name] * value for name, value in terms.items())

        output = MAViLForPreTrainingOutput(
            loss=loss,
            **terms,
            audio_logits=audio_pred,
            video_logits=video_pred,
            audio_mask=masks["audio"],
            video_mask=masks["video"],
            audio_ids_restore=restores["audio"],
            video_ids_restore=restores["video"],
            last_hidden_state=encoded.last_hidden_state,
            audio_embeds=audio_embeds,
            video_embeds=video_embeds,
            audio_hidden_states=encoded.audio_hidden_states,
            video_hidden_states=encoded.video_hidden_states,
            fusion_hidden_states=encoded.fusion_hidden_states,
        )
        return output if return_dict else output.to_tuple()


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

    In training, ``config.mask_time_prob``/``mask_freq_prob`` drop whole audio time rows/mel columns of tokens and
    ``config.mask_video_prob`` random video tokens (the authors' fine-tuning masking).
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

    def _finetune_masking(self, spectrogram, video, time_noise, freq_noise, video_noise):
        """Kept token indices of the training-time token dropping (``None``: keep everything)."""
        config = self.config
        audio_keep = video_keep = None
        audio_on = config.mask_time_prob > 0 or config.mask_freq_prob > 0
        if spectrogram is not None and (time_noise is not None or freq_noise is not None or (self.training and audio_on)):
            batch = spectrogram.shape[0]
            time_patches, freq_patches = self.mavil.audio_embeddings.grid_size(spectrogram)
            if time_noise is None:
                time_noise = torch.rand(batch, time_patches, device=spectrogram.device)
            if freq_noise is None:
                freq_noise = torch.rand(batch, freq_patches, device=spectrogram.device)
            if time_noise.shape != (batch, time_patches) or freq_noise.shape != (batch, freq_patches):
                raise ValueError(
                    f"time_noise/freq_noise must have shapes {(batch, time_patches)} and {(batch, freq_patches)}, got "
                    f"{tuple(time_noise.shape)} and {tuple(freq_noise.shape)}"
                )
            audio_keep = time_frequency_masking(time_noise, freq_noise, config.mask_time_prob, config.mask_freq_prob)
        if video is not None and (video_noise is not None or (self.training and config.mask_video_prob > 0)):
            batch = video.shape[0]
            grid = self.mavil.video_embeddings.grid_size(video)
            length = grid[0] * grid[1] * grid[2]
            if video_noise is None:
                video_noise = torch.rand(batch, length, device=video.device)
            if video_noise.shape != (batch, length):
                raise ValueError(f"video_noise must have shape {(batch, length)}, got {tuple(video_noise.shape)}")
            video_keep = random_masking(video_noise, config.mask_video_prob).ids_keep
        return audio_keep, video_keep

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        time_noise: torch.Tensor | None = None,
        freq_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
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
        audio_keep, video_keep = self._finetune_masking(spectrogram, video, time_noise, freq_noise, video_noise)
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
        has_cls = config.use_cls_token
        logits = {}
        if run_av:
            pooled = torch.cat(
                [_pool(encoded.fused_audio_hidden_state, has_cls), _pool(encoded.fused_video_hidden_state, has_cls)], dim=-1
            )  # [N, 2D]
            logits["audio_visual"] = self.audio_visual_classifier(self.dropout(self.audio_visual_norm(pooled)))
        if run_audio:
            pooled = _pool(encoded.audio_last_hidden_state, has_cls)
            logits["audio"] = self.audio_classifier(self.dropout(self.audio_norm(pooled)))
        if run_video:
            pooled = _pool(encoded.video_last_hidden_state, has_cls)
            logits["video"] = self.video_classifier(self.dropout(self.video_norm(pooled)))
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
    "MAViLModel",
    "MAViLPreTrainedModel",
]
