"""CAV-MAE: contrastive audio-visual masked autoencoder (Gong et al., ICLR 2023).

Official code: YuanGongND/cav-mae, ``src/models/cav_mae.py`` (``CAVMAE`` pretraining, ``CAVMAEFT`` fine-tuning).
Shapes in comments: N = batch, D = encoder width, Dd = decoder width, La/Lv = audio/video patch tokens, Ka/Kv = kept
tokens, p = patch size. Audio tokens are frequency-major (``f * T' + t``), video tokens row-major. In every mask
1 = masked.

Why not a configuration of MAViL: CAV-MAE's shared layers keep three LayerNorm pairs around one attention/MLP (a joint
pass and one pass per modality), its audio tokens are frequency-major with a consistent 2-D table, it has no cls
token, it takes one frame instead of a clip, and its decoder runs on the concatenated tokens of both modalities; see
``docs/cavmae_avmae.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from ...layers import (
    MLP,
    DropPath,
    PatchEmbed2D,
    PositionTable,
    SelfAttention,
    TransformerLayer,
    as_frame,
    as_spectrogram,
    gather_tokens,
    info_nce,
    mask_from_noise,
    masked_mse,
    normalize_per_patch,
    patchify_2d,
    restore_with_mask_tokens,
    run_layers,
    sincos_2d_table,
    transformer_layers,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_cavmae import CLASSIFICATION_MODES, CAVMAEConfig

# ----------------------------------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class CAVMAEModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, Ka + Kv, D]`` joint output: audio and video tokens (audio first) through the shared
            layers with their joint norms, then ``norm``. None when only one modality is given.
        audio_last_hidden_state: ``[N, Ka, D]`` audio tokens through the shared layers with the audio norms, then
            ``audio_norm`` (official ``forward_feat`` / contrastive features).
        video_last_hidden_state: ``[N, Kv, D]`` the video counterpart.
        audio_mask, video_mask: ``[N, La]`` / ``[N, Lv]`` 1 for masked tokens (all zeros without masking).
        audio_ids_restore, video_ids_restore: ``[N, L]`` permutations putting ``[kept, masked]`` back in order.
        audio_ids_keep, video_ids_keep: ``[N, K]`` kept tokens, in the order the encoder saw them.
        audio_hidden_states, video_hidden_states: per-layer outputs of the modality-specific layers (input first).
        hidden_states: per-layer outputs of the joint pass through the shared layers.
        attentions: attention maps of the modality-specific (audio, then video) and joint shared layers.
    """

    last_hidden_state: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    video_last_hidden_state: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    video_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    video_ids_restore: torch.LongTensor | None = None
    audio_ids_keep: torch.LongTensor | None = None
    video_ids_keep: torch.LongTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class CAVMAEForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: ``mae_loss + contrastive_loss`` (official ``loss``).
        mae_loss: ``mae_loss_weight * (audio_mae_loss + video_mae_loss)``.
        audio_mae_loss, video_mae_loss: reconstruction MSE on the masked patches of each modality.
        contrastive_loss: ``contrastive_loss_weight * InfoNCE`` (official ``loss_c``, already weighted).
        contrastive_accuracy: fraction of videos whose most similar audio clip is their own (official ``c_acc``).
        audio_logits: ``[N, La, p*p]`` predicted audio patches for every token.
        video_logits: ``[N, Lv, p*p*C]`` predicted frame patches for every token.
        audio_mask, video_mask, audio_ids_restore, video_ids_restore: as in :class:`CAVMAEModelOutput`.
        last_hidden_state: ``[N, Ka + Kv, D]`` joint latent fed to the decoder.
        audio_last_hidden_state, video_last_hidden_state: ``[N, K, D]`` contrastive-branch features (before pooling).
        audio_hidden_states, video_hidden_states, hidden_states, attentions: on request, as the base model.
    """

    loss: torch.FloatTensor | None = None
    mae_loss: torch.FloatTensor | None = None
    audio_mae_loss: torch.FloatTensor | None = None
    video_mae_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    contrastive_accuracy: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    video_logits: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    video_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    video_ids_restore: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    audio_last_hidden_state: torch.FloatTensor | None = None
    video_last_hidden_state: torch.FloatTensor | None = None
    audio_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------------


def _as_spectrogram(input_values: torch.Tensor, config: CAVMAEConfig) -> torch.Tensor:
    """``[N, T, F]`` (or ``[N, 1, T, F]``) fbank -> ``[N, 1, F, T]``, the official ``unsqueeze(1).transpose(2, 3)``."""
    spectrogram = as_spectrogram(
        input_values,
        num_mel_bins=config.num_mel_bins,
        max_length=config.max_length,
        processor="CAVMAEFeatureExtractor",
    )
    return spectrogram.transpose(2, 3)


def _as_frame(pixel_values: torch.Tensor, config: CAVMAEConfig) -> torch.Tensor:
    """``[N, C, H, W]`` (or ``[N, 1, C, H, W]``, one-frame videos as video processors give) -> ``[N, C, H, W]``."""
    return as_frame(
        pixel_values, num_channels=config.num_channels, image_size=config.image_size, processor="CAVMAEVideoProcessor"
    )


# ----------------------------------------------------------------------------------------------------------------------
# Embeddings and layers
# ----------------------------------------------------------------------------------------------------------------------


def _position_table(config: CAVMAEConfig, width: int, grid: tuple[int, int]) -> nn.Module:
    """The 2-D sin-cos table of the official ``get_2d_sincos_pos_embed(D, rows, cols)``, fixed or learned.

    Token ``i`` gets ``[code(i % cols) | code(i // cols)]``; for audio rows are mel patches and cols time patches,
    consistent with the frequency-major token order.
    """
    mode = "learned" if config.trainable_position_embeddings else "fixed"
    return PositionTable(partial(sincos_2d_table, width), *grid, mode=mode)


class CAVMAEEmbeddings(nn.Module):
    """Patch embedding + 2-D sin-cos position table + a learned modality embedding (official ``modality_a/v``)."""

    def __init__(self, config: CAVMAEConfig, in_channels: int, grid: tuple[int, int]):
        super().__init__()
        self.patch_embed = PatchEmbed2D(in_channels, config.hidden_size, config.patch_size)
        self.position_embeddings = _position_table(config, config.hidden_size, grid)
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(values.to(self.patch_embed.proj.weight.dtype))  # [N, L, D]
        return tokens + self.position_embeddings.table + self.modality_embedding


class CAVMAESharedLayer(GradientCheckpointingLayer):
    """The shared pre-norm ViT layer of CAV-MAE: one attention and MLP, three LayerNorm pairs.

    ``modality=None`` uses ``norm1``/``norm2`` (joint pass over audio+video tokens), ``"audio"``/``"video"`` use that
    modality's pair (official ``Block.forward(x, modality)`` with ``'a'``/``'v'``).
    """

    def __init__(self, config: CAVMAEConfig, drop_path: float = 0.0):
        super().__init__()
        dim, eps = config.hidden_size, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.audio_norm1 = nn.LayerNorm(dim, eps=eps)
        self.video_norm1 = nn.LayerNorm(dim, eps=eps)
        self.attention = SelfAttention(
            config, dim, config.num_attention_heads, "qkv" if config.qkv_bias else "none",
            config.attention_probs_dropout_prob,
        )
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.audio_norm2 = nn.LayerNorm(dim, eps=eps)
        self.video_norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, config.intermediate_size, config.hidden_act, config.hidden_dropout_prob)
        self.drop_path = DropPath(drop_path)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, modality: str | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if modality is None:
            norm1, norm2 = self.norm1, self.norm2
        elif modality == "audio":
            norm1, norm2 = self.audio_norm1, self.audio_norm2
        elif modality == "video":
            norm1, norm2 = self.video_norm1, self.video_norm2
        else:
            raise ValueError(f"modality must be None, 'audio' or 'video', got {modality!r}")
        attn_output, attn_weights = self.attention(norm1(hidden_states), None, output_attentions)
        hidden_states = hidden_states + self.drop_path(self.dropout(attn_output))
        hidden_states = hidden_states + self.drop_path(self.mlp(norm2(hidden_states)))
        return hidden_states, attn_weights


# ----------------------------------------------------------------------------------------------------------------------
# Decoder
# ----------------------------------------------------------------------------------------------------------------------


class CAVMAEDecoder(nn.Module):
    """One decoder over ``[audio | video]`` tokens: project, fill mask tokens, fixed tables + modality embeddings,
    ViT layers, norm, then a prediction head per modality (official ``forward_decoder``)."""

    def __init__(self, config: CAVMAEConfig):
        super().__init__()
        dim = config.decoder_hidden_size
        self.decoder_embed = nn.Linear(config.hidden_size, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.audio_modality_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        self.video_modality_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        self.audio_position_embeddings = _position_table(config, dim, config.audio_grid_size)
        self.video_position_embeddings = _position_table(config, dim, config.video_grid_size)
        self.layers = transformer_layers(
            config, config.decoder_num_hidden_layers, dim, config.decoder_num_attention_heads,
            config.decoder_intermediate_size, qkv_bias="qkv" if config.qkv_bias else "none",
        )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.audio_pred = nn.Linear(dim, config.patch_size**2)
        self.video_pred = nn.Linear(dim, config.patch_size**2 * config.num_channels)

    def forward(self, latent: torch.Tensor, audio_ids_restore: torch.Tensor, video_ids_restore: torch.Tensor, audio_kept: int):
        """``[N, Ka + Kv, D]`` joint latent -> ``([N, La, p*p], [N, Lv, p*p*C])`` predictions for every token."""
        hidden = self.decoder_embed(latent)  # [N, Ka + Kv, Dd]
        audio = restore_with_mask_tokens(hidden[:, :audio_kept], self.mask_token, audio_ids_restore)  # [N, La, Dd]
        video = restore_with_mask_tokens(hidden[:, audio_kept:], self.mask_token, video_ids_restore)  # [N, Lv, Dd]
        audio = audio + self.audio_position_embeddings.table + self.audio_modality_embedding
        video = video + self.video_position_embeddings.table + self.video_modality_embedding
        hidden, _, _ = run_layers(self.layers, torch.cat([audio, video], dim=1))
        hidden = self.norm(hidden)
        num_audio = audio.shape[1]
        return self.audio_pred(hidden[:, :num_audio]), self.video_pred(hidden[:, num_audio:])


# ----------------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------------


class CAVMAEPreTrainedModel(PreTrainedModel):
    config: CAVMAEConfig
    config_class = CAVMAEConfig
    base_model_prefix = "cavmae"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer", "CAVMAESharedLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Official initialisation (xavier Linear and flattened patch convs, LayerNorm 1/0, tokens normal(0.02));
        position tables, fixed or learned, start as the 2-D sin-cos tables."""
        if init_mae_weights(module):
            return
        std = self.config.initializer_range
        if isinstance(module, CAVMAEEmbeddings):
            init.normal_(module.modality_embedding, std=std)
        elif isinstance(module, CAVMAEDecoder):
            init.normal_(module.mask_token, std=std)
            init.normal_(module.audio_modality_embedding, std=std)
            init.normal_(module.video_modality_embedding, std=std)


def _mask_tokens(tokens, noise, ratio, name):
    batch, length, _ = tokens.shape
    masking = mask_from_noise(
        "random", noise, (length,), ratio, batch=batch, device=tokens.device, name=name, what="batch, num_patches"
    )
    return gather_tokens(tokens, masking.ids_keep), masking


class CAVMAEModel(CAVMAEPreTrainedModel):
    """The CAV-MAE encoder: modality-specific layers, then shared layers run jointly and per modality.

    Without noise or mask ratios every token is encoded (feature extraction, fine-tuning); with them each modality is
    masked independently (audio first, as the official code draws its noise).
    """

    def __init__(self, config: CAVMAEConfig):
        super().__init__(config)
        self.audio_embeddings = CAVMAEEmbeddings(config, 1, config.audio_grid_size)
        self.video_embeddings = CAVMAEEmbeddings(config, config.num_channels, config.video_grid_size)
        depth = config.num_modality_specific_layers + config.num_shared_layers
        drop_path = torch.linspace(0, config.drop_path_rate, max(depth, 1)).tolist()
        # the modality-specific layers take the first rates of the encoder's stochastic-depth list
        specific = dict(
            qkv_bias="qkv" if config.qkv_bias else "none",
            drop_path_rate=config.drop_path_rate,
            drop_path_depth=max(depth, 1),
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.audio_layers = transformer_layers(
            config, config.num_modality_specific_layers, config.hidden_size, config.num_attention_heads,
            config.intermediate_size, **specific,
        )
        self.video_layers = transformer_layers(
            config, config.num_modality_specific_layers, config.hidden_size, config.num_attention_heads,
            config.intermediate_size, **specific,
        )
        self.shared_layers = nn.ModuleList(
            CAVMAESharedLayer(config, drop_path[config.num_modality_specific_layers + i])
            for i in range(config.num_shared_layers)
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.audio_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.video_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def embed_and_mask(self, input_values, pixel_values, audio_noise=None, video_noise=None, audio_mask_ratio=None,
                       video_mask_ratio=None):
        """Tokens of each given modality (kept tokens when masking) and their masking indices.

        Returns ``{"audio": (tokens [N, Ka, D], MaskingIndices or None), "video": (...)}`` for the modalities given.
        Masking runs for a modality when its noise or mask ratio is given; audio is handled first.
        """
        out = {}
        for name, values, noise, ratio, default, embeddings, convert in (
            ("audio", input_values, audio_noise, audio_mask_ratio, self.config.audio_mask_ratio,
             self.audio_embeddings, _as_spectrogram),
            ("video", pixel_values, video_noise, video_mask_ratio, self.config.video_mask_ratio,
             self.video_embeddings, _as_frame),
        ):
            if values is None:
                if noise is not None:
                    raise ValueError(f"{name}_noise was given without the {name} input")
                continue
            tokens = embeddings(convert(values, self.config))  # [N, L, D]
            masking = None
            if noise is not None or ratio is not None:
                tokens, masking = _mask_tokens(tokens, noise, default if ratio is None else ratio, f"{name}_noise")
            out[name] = (tokens, masking)
        return out

    def shared_pass(self, hidden: torch.Tensor, modality: str | None = None, chained: bool = True,
                    output_hidden_states: bool = False, output_attentions: bool = False):
        """Run the shared layers with the joint (``modality=None``) or a modality's norms, then the matching final norm.

        ``chained=False`` reproduces the official pretraining contrastive branch, which applies every shared layer to
        the same input and keeps the last result. Returns ``(hidden, all_hidden or None, attentions or None)``.
        """
        all_hidden = (hidden,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        source = hidden
        for layer in self.shared_layers:
            hidden, weights = layer(hidden if chained else source, modality=modality, output_attentions=output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
            if output_attentions:
                all_attentions = all_attentions + (weights,)
        norm = {None: self.norm, "audio": self.audio_norm, "video": self.video_norm}[modality]
        return norm(hidden), all_hidden, all_attentions

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> CAVMAEModelOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` normalised fbank (CAVMAEFeatureExtractor); optional if ``pixel_values`` given.
            pixel_values: ``[N, C, H, W]`` (or ``[N, 1, C, H, W]``) normalised frame; optional if audio given.
            audio_noise, video_noise: ``[N, La]`` / ``[N, Lv]`` masking noise (smallest kept, official recipe).
            audio_mask_ratio, video_mask_ratio: mask that modality (``config`` ratios when only noise is given).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = bool(output_hidden_states)
        output_attentions = bool(output_attentions)
        if input_values is None and pixel_values is None:
            raise ValueError("pass input_values (audio), pixel_values (a frame) or both")
        embedded = self.embed_and_mask(
            input_values, pixel_values, audio_noise, video_noise, audio_mask_ratio, video_mask_ratio
        )
        specific = self.modality_specific(embedded, output_hidden_states, output_attentions)
        outputs, attentions = {}, () if output_attentions else None
        for name, (hidden, layer_hidden, layer_attn) in specific.items():
            tokens, masking = embedded[name]
            if masking is None:
                mask = torch.zeros(tokens.shape[0], tokens.shape[1], device=tokens.device)
            else:
                mask = masking.mask
            if output_attentions:
                attentions = attentions + layer_attn
            outputs[name] = dict(
                final=self.shared_pass(hidden, name)[0],
                hidden_states=layer_hidden,
                mask=mask,
                ids_restore=masking.ids_restore if masking is not None else None,
                ids_keep=masking.ids_keep if masking is not None else None,
            )
        joint = joint_hidden = None
        if len(specific) == 2:
            joint, joint_hidden, joint_attn = self.shared_pass(
                torch.cat([specific["audio"][0], specific["video"][0]], dim=1),
                None,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
            )
            if output_attentions:
                attentions = attentions + joint_attn

        def get(name, key):
            return outputs[name][key] if name in outputs else None

        output = CAVMAEModelOutput(
            last_hidden_state=joint,
            audio_last_hidden_state=get("audio", "final"),
            video_last_hidden_state=get("video", "final"),
            audio_mask=get("audio", "mask"),
            video_mask=get("video", "mask"),
            audio_ids_restore=get("audio", "ids_restore"),
            video_ids_restore=get("video", "ids_restore"),
            audio_ids_keep=get("audio", "ids_keep"),
            video_ids_keep=get("video", "ids_keep"),
            audio_hidden_states=get("audio", "hidden_states"),
            video_hidden_states=get("video", "hidden_states"),
            hidden_states=joint_hidden,
            attentions=attentions,
        )
        return output if return_dict else output.to_tuple()

    def modality_specific(self, embedded: dict, output_hidden_states=False, output_attentions=False):
        """Run each modality's own layers; returns ``{name: (hidden, hidden_states, attentions)}``."""
        layers = {"audio": self.audio_layers, "video": self.video_layers}
        return {
            name: run_layers(layers[name], tokens, output_hidden_states, output_attentions)
            for name, (tokens, _) in embedded.items()
        }

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised mean-pooled audio and video features (official ``forward_feat``, as used for retrieval)."""
        out = self(input_values=input_values, pixel_values=pixel_values, return_dict=True)
        audio = nn.functional.normalize(out.audio_last_hidden_state.mean(dim=1), dim=-1)
        video = nn.functional.normalize(out.video_last_hidden_state.mean(dim=1), dim=-1)
        return audio, video


class CAVMAEForPreTraining(CAVMAEPreTrainedModel):
    """CAV-MAE pretraining: masked reconstruction of both modalities by a joint decoder, plus audio-visual InfoNCE
    on the mean-pooled modality features (official ``CAVMAE.forward``)."""

    def __init__(self, config: CAVMAEConfig):
        super().__init__(config)
        self.cavmae = CAVMAEModel(config)
        self.decoder = CAVMAEDecoder(config)
        self.post_init()

    def patchify_audio(self, input_values: torch.Tensor) -> torch.Tensor:
        """``[N, T, F] -> [N, La, p*p]`` in the token order (frequency-major), values (mel, time) inside a patch."""
        return patchify_2d(_as_spectrogram(input_values, self.config), self.config.patch_size)

    def patchify_video(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, Lv, p*p*C]``, values (row, col, channel)."""
        return patchify_2d(_as_frame(pixel_values, self.config), self.config.patch_size)

    def contrastive(self, audio_features: torch.Tensor, video_features: torch.Tensor):
        """InfoNCE and accuracy of ``[N, D]`` pooled features (official ``forward_contrastive``).

        Single-direction: for each video, a softmax over the batch's audio clips (``log_softmax(a @ v.T, dim=0)``).
        """
        temperature = self.config.contrastive_temperature
        loss = info_nce(video_features, audio_features, temperature, symmetric=self.config.contrastive_symmetric)
        similarity = nn.functional.normalize(audio_features, dim=-1) @ nn.functional.normalize(video_features, dim=-1).t()
        labels = torch.arange(similarity.shape[0], device=similarity.device)
        accuracy = (similarity.argmax(dim=0) == labels).float().mean()
        if self.config.contrastive_symmetric:
            accuracy = 0.5 * (accuracy + (similarity.argmax(dim=1) == labels).float().mean())
        return loss, accuracy

    def forward(
        self,
        input_values: torch.Tensor,
        pixel_values: torch.Tensor,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        mae_loss_weight: float | None = None,
        contrastive_loss_weight: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> CAVMAEForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` normalised fbank.
            pixel_values: ``[N, C, H, W]`` normalised frame.
            audio_noise, video_noise: ``[N, La]`` / ``[N, Lv]`` noise pinning the masks (drawn with ``torch.rand``,
                audio first, when omitted).
            audio_mask_ratio, video_mask_ratio: override the config's ratios (official ``mask_ratio_a``/``_v``).
            mae_loss_weight, contrastive_loss_weight: override the config's loss weights for this call (official
                ``forward(..., mae_loss_weight, contrast_loss_weight)``).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        if input_values is None or pixel_values is None:
            raise ValueError("CAV-MAE pretraining needs both input_values (audio) and pixel_values (a frame)")
        output_hidden_states, output_attentions = bool(output_hidden_states), bool(output_attentions)
        encoder = self.cavmae
        embedded = encoder.embed_and_mask(
            input_values,
            pixel_values,
            audio_noise,
            video_noise,
            config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio,
            config.video_mask_ratio if video_mask_ratio is None else video_mask_ratio,
        )
        specific = encoder.modality_specific(embedded, output_hidden_states, output_attentions)
        audio, video = specific["audio"][0], specific["video"][0]  # [N, Ka, D], [N, Kv, D]
        latent, joint_hidden, joint_attn = encoder.shared_pass(
            torch.cat([audio, video], dim=1), None, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        chained = config.contrastive_shared_layers == "chained"
        audio_c = encoder.shared_pass(audio, "audio", chained=chained)[0]
        video_c = encoder.shared_pass(video, "video", chained=chained)[0]
        audio_masking, video_masking = embedded["audio"][1], embedded["video"][1]

        audio_pred, video_pred = self.decoder(latent, audio_masking.ids_restore, video_masking.ids_restore, audio.shape[1])
        audio_target = self.patchify_audio(input_values).to(audio_pred.dtype)
        video_target = self.patchify_video(pixel_values).to(video_pred.dtype)
        if config.norm_pix_loss:
            audio_target, video_target = normalize_per_patch(audio_target), normalize_per_patch(video_target)
        audio_mae = masked_mse(audio_pred, audio_target, audio_masking.mask)
        video_mae = masked_mse(video_pred, video_target, video_masking.mask)
        mae_loss = (config.mae_loss_weight if mae_loss_weight is None else mae_loss_weight) * (audio_mae + video_mae)
        nce, accuracy = self.contrastive(audio_c.mean(dim=1), video_c.mean(dim=1))
        contrastive_weight = config.contrastive_loss_weight if contrastive_loss_weight is None else contrastive_loss_weight
        contrastive_loss = contrastive_weight * nce
        loss = mae_loss + contrastive_loss

        attentions = None
        if output_attentions:
            attentions = specific["audio"][2] + specific["video"][2] + joint_attn
        output = CAVMAEForPreTrainingOutput(
            loss=loss,
            mae_loss=mae_loss,
            audio_mae_loss=audio_mae,
            video_mae_loss=video_mae,
            contrastive_loss=contrastive_loss,
            contrastive_accuracy=accuracy,
            audio_logits=audio_pred,
            video_logits=video_pred,
            audio_mask=audio_masking.mask,
            video_mask=video_masking.mask,
            audio_ids_restore=audio_masking.ids_restore,
            video_ids_restore=video_masking.ids_restore,
            last_hidden_state=latent,
            audio_last_hidden_state=audio_c,
            video_last_hidden_state=video_c,
            audio_hidden_states=specific["audio"][1],
            video_hidden_states=specific["video"][1],
            hidden_states=joint_hidden,
            attentions=attentions,
        )
        return output if return_dict else output.to_tuple()


class CAVMAEForAudioVisualClassification(CAVMAEPreTrainedModel):
    """CAV-MAE encoder + the official ``mlp_head`` (LayerNorm + Linear on mean-pooled tokens), in the five official
    modes (``CAVMAEFT.forward``):

    * ``"multimodal"``: audio+video tokens through the shared layers with the joint norms, ``norm``, mean of all;
    * ``"audioonly"`` / ``"videoonly"``: one modality through the shared layers with its own norms and final norm;
    * ``"missingaudioonly"`` / ``"missingvideoonly"``: one modality (the other is missing) for a model fine-tuned in
      ``"multimodal"`` mode: the average of the joint-norm and the modality-norm pooled features.

    ``mode`` defaults from ``config.classification_mode`` and the inputs given, so the audio-classification,
    video-classification and audio-video-classification pipelines all work with one model.
    """

    def __init__(self, config: CAVMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.cavmae = CAVMAEModel(config)
        self.classifier_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def resolve_mode(self, has_audio: bool, has_video: bool, mode: str | None = None) -> str:
        """The official mode for the inputs given (see the class docstring); checks an explicit ``mode``."""
        if not (has_audio or has_video):
            raise ValueError("pass input_values (audio), pixel_values (a frame) or both")
        if mode is None:
            trained = self.config.classification_mode
            if trained == "multimodal":
                mode = "multimodal" if has_audio and has_video else ("missingaudioonly" if has_audio else "missingvideoonly")
            else:
                mode = trained
        if mode not in CLASSIFICATION_MODES:
            raise ValueError(f"mode must be one of {list(CLASSIFICATION_MODES)}, got {mode!r}")
        needs_audio = mode in ("multimodal", "audioonly", "missingaudioonly")
        needs_video = mode in ("multimodal", "videoonly", "missingvideoonly")
        if (needs_audio and not has_audio) or (needs_video and not has_video):
            wanted = "audio and video" if needs_audio and needs_video else ("audio" if needs_audio else "video")
            raise ValueError(
                f"mode {mode!r} needs {wanted} input (this model was fine-tuned in {self.config.classification_mode!r} "
                "mode); pass the missing input or choose another mode"
            )
        return mode

    def pooled_features(self, input_values=None, pixel_values=None, mode: str | None = None,
                        output_hidden_states: bool = False, output_attentions: bool = False):
        """``[N, D]`` pooled features fed to the head in ``mode``; returns ``(features, mode, hidden, attentions)``."""
        encoder = self.cavmae
        mode = self.resolve_mode(input_values is not None, pixel_values is not None, mode)
        use_audio = mode in ("multimodal", "audioonly", "missingaudioonly")
        use_video = mode in ("multimodal", "videoonly", "missingvideoonly")
        embedded = encoder.embed_and_mask(input_values if use_audio else None, pixel_values if use_video else None)
        specific = encoder.modality_specific(embedded, output_hidden_states, output_attentions)
        hidden_states = tuple(h for name in ("audio", "video") if name in specific for h in (specific[name][1] or ()))
        attentions = tuple(a for name in ("audio", "video") if name in specific for a in (specific[name][2] or ()))
        if mode == "multimodal":
            joint, joint_hidden, joint_attn = encoder.shared_pass(
                torch.cat([specific["audio"][0], specific["video"][0]], dim=1), None,
                output_hidden_states=output_hidden_states, output_attentions=output_attentions,
            )
            features = joint.mean(dim=1)
            hidden_states += joint_hidden or ()
            attentions += joint_attn or ()
        else:
            name = "audio" if use_audio else "video"
            tokens = specific[name][0]
            features = encoder.shared_pass(tokens, name)[0].mean(dim=1)
            if mode.startswith("missing"):
                features = 0.5 * (features + encoder.shared_pass(tokens, None)[0].mean(dim=1))
        return features, mode, (hidden_states or None), (attentions or None)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mode: str | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` normalised fbank (optional if ``pixel_values`` is given).
            pixel_values: ``[N, C, H, W]`` or ``[N, 1, C, H, W]`` normalised frame (optional if audio is given).
            labels: class indices ``[N]`` or multi-hot ``[N, num_labels]`` (with
                ``problem_type="multi_label_classification"``, the AudioSet convention).
            mode: one of the official modes (see the class docstring); by default chosen from
                ``config.classification_mode`` and the inputs given.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features, _, hidden_states, attentions = self.pooled_features(
            input_values, pixel_values, mode, bool(output_hidden_states), bool(output_attentions)
        )
        logits = self.classifier(self.dropout(self.classifier_norm(features)))
        check_head_matches_labels(self.config, logits)
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states, attentions=attentions)
        return output if return_dict else output.to_tuple()


__all__ = [
    "CAVMAEForAudioVisualClassification",
    "CAVMAEForPreTraining",
    "CAVMAEModel",
    "CAVMAEPreTrainedModel",
]
