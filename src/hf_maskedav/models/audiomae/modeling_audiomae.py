"""Audio-MAE: masked autoencoder on log-mel spectrograms (Huang et al., "Masked Autoencoders that Listen").

Official code: facebookresearch/AudioMAE (``models_mae.py`` pretraining, ``models_vit.py`` fine-tuning). Shapes in
comments use N = batch, T/F = spectrogram frames/mel bins, T'/F' = token grid, L = T'*F' tokens (time-major:
token = t' * F' + f'), K = kept tokens, D = encoder width, Dd = decoder width, p = patch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from ...layers import (
    PatchEmbed2D,
    PositionTable,
    ShiftedWindowLayer,
    TransformerLayer,
    as_spectrogram,
    audiomae_position_table,
    checked_noise,
    gather_tokens,
    mask_from_noise,
    masked_mse,
    normalize_per_patch,
    patchify_2d,
    restore_with_mask_tokens,
    run_layers,
    time_frequency_masking,
    transformer_layers,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_audiomae import AudioMAEConfig


@dataclass
class AudioMAEModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, 1 + K, D]`` encoder output, cls token first, then the kept tokens in the order
            they were kept (all ``L`` tokens in order when nothing was masked).
        mask: ``[N, L]`` 1 for masked tokens, 0 for kept ones (all zeros without masking).
        ids_restore: ``[N, L]`` permutation that puts ``[kept, masked]`` tokens back in the original order.
        ids_keep: ``[N, K]`` indices of the kept tokens.
        hidden_states, attentions: per-layer outputs when requested.
    """

    last_hidden_state: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    ids_keep: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AudioMAEForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: reconstruction loss (MSE over masked patches only).
        logits: ``[N, L, p*p*C]`` predicted patches for every token (no cls row).
        mask, ids_restore: as in :class:`AudioMAEModelOutput`.
        last_hidden_state: ``[N, 1 + K, D]`` encoder output (the "latent").
        hidden_states, attentions: encoder per-layer outputs when requested.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def _as_spectrogram_batch(input_values: torch.Tensor, config: AudioMAEConfig) -> torch.Tensor:
    """``[N, T, F]`` or ``[N, C, T, F]`` -> ``[N, C, T, F]``, at least one patch long (:func:`as_spectrogram`)."""
    return as_spectrogram(
        input_values,
        num_mel_bins=config.num_mel_bins,
        num_channels=config.num_channels,
        patch_size=config.patch_size,
        processor="AudioMAEFeatureExtractor",
    )


class AudioMAEEmbeddings(nn.Module):
    """Patch embedding, cls token and the official (fixed, "scrambled") 2-D sin-cos position table."""

    def __init__(self, config: AudioMAEConfig):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed2D(config.num_channels, config.hidden_size, config.patch_size, config.patch_stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = PositionTable(
            partial(audiomae_position_table, config.hidden_size), *config.grid_size
        )

    def forward(self, spectrogram: torch.Tensor, ids_keep: torch.Tensor | None = None):
        """Returns patch tokens with positions ``[N, L, D]``, the cls token with its position ``[1, 1, D]`` and the grid.

        With ``ids_keep`` (``[N, K]``) only those tokens are cut, projected and returned (``[N, K, D]``), the values
        the full sequence would have at those positions.
        """
        grid = self.patch_embed.grid_size(*spectrogram.shape[-2:])
        positions = self.position_embeddings.for_grid(*grid)  # [1, 1 + L, D], cls row first
        spectrogram = spectrogram.to(self.patch_embed.proj.weight.dtype)
        cls = self.cls_token + positions[:, :1]
        # Positions are added before masking (official forward_encoder). Not layers.embed_with_positions: the float32
        # table is added without casting it to the tokens' dtype, so under autocast the residual stream stays float32.
        if ids_keep is None:
            return self.patch_embed(spectrogram) + positions[:, 1:], cls, grid  # [N, L, D]
        tokens = self.patch_embed.embed_selected(spectrogram, ids_keep)  # [N, K, D]
        return tokens + gather_tokens(positions[:, 1:].expand(tokens.shape[0], -1, -1), ids_keep), cls, grid


class AudioMAEPreTrainedModel(PreTrainedModel):
    config: AudioMAEConfig
    config_class = AudioMAEConfig
    base_model_prefix = "audiomae"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer", "ShiftedWindowLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Official MAE initialisation; fixed tables and window buffers are (re)built here."""
        if init_mae_weights(module):
            return
        if isinstance(module, AudioMAEEmbeddings):
            init.normal_(module.cls_token, std=self.config.initializer_range)
        elif isinstance(module, AudioMAEDecoder):
            init.normal_(module.mask_token, std=self.config.initializer_range)


class AudioMAEModel(AudioMAEPreTrainedModel):
    """The Audio-MAE encoder (a ViT on spectrogram patches) that sees only the visible tokens.

    Without ``noise``, ``mask_ratio`` or ``ids_keep`` it encodes every token (what feature extraction and fine-tuning
    want); :class:`AudioMAEForPreTraining` passes a mask ratio.

    Args:
        config: the model configuration.
        add_final_norm: keep the final LayerNorm (``norm``). The official fine-tuning model with mean pooling has
            none (it uses ``fc_norm`` after pooling instead).
    """

    def __init__(self, config: AudioMAEConfig, add_final_norm: bool = True):
        super().__init__(config)
        self.embeddings = AudioMAEEmbeddings(config)
        self.layers = transformer_layers(
            config, config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            qkv_bias="qkv" if config.qkv_bias else "none",
            drop_path_rate=config.drop_path_rate,
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if add_final_norm else None
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        ids_keep: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> AudioMAEModelOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` (or ``[N, 1, T, F]``) normalised log-mel fbank, as AudioMAEFeatureExtractor
                makes it.
            noise: ``[N, L]`` masking noise; the tokens with the smallest noise are kept (official MAE recipe).
                Drawn with ``torch.rand`` when ``mask_ratio`` is given without it.
            mask_ratio: fraction of tokens to remove; ``config.mask_ratio`` when only ``noise`` is given.
            ids_keep: ``[N, K]`` explicit indices of the tokens to keep (e.g. structured time/frequency masking),
                instead of ``noise``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = output_hidden_states if output_hidden_states is not None else False
        output_attentions = output_attentions if output_attentions is not None else False
        spectrogram = _as_spectrogram_batch(input_values, self.config)
        batch = spectrogram.shape[0]
        time_patches, freq_patches = self.embeddings.patch_embed.grid_size(*spectrogram.shape[-2:])
        length = time_patches * freq_patches

        mask = ids_restore = None
        if ids_keep is None and (noise is not None or mask_ratio is not None):
            ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
            masking = mask_from_noise(
                "random", noise, (length,), ratio, batch=batch, device=spectrogram.device, what="batch, num_patches"
            )
            ids_keep, ids_restore, mask = masking.ids_keep, masking.ids_restore, masking.mask
        # only the kept tokens are embedded: [N, K, D] (all L without masking)
        tokens, cls, grid = self.embeddings(spectrogram, ids_keep)
        if mask is None:
            if ids_keep is None:
                mask = torch.zeros(batch, length, device=tokens.device)
            else:
                mask = torch.ones(batch, length, device=tokens.device).scatter_(1, ids_keep, 0.0)

        hidden_states = torch.cat([cls.expand(batch, -1, -1), tokens], dim=1)  # [N, 1 + K, D]
        hidden_states, all_hidden, all_attentions = run_layers(
            self.layers, hidden_states, output_hidden_states, output_attentions
        )
        if self.norm is not None:
            hidden_states = self.norm(hidden_states)

        if not return_dict:
            return tuple(v for v in (hidden_states, mask, ids_restore, ids_keep, all_hidden, all_attentions) if v is not None)
        return AudioMAEModelOutput(
            last_hidden_state=hidden_states,
            mask=mask,
            ids_restore=ids_restore,
            ids_keep=ids_keep,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )


class AudioMAEDecoder(nn.Module):
    """Decoder: project, fill in mask tokens, add the fixed table, then local (windowed) or global blocks."""

    def __init__(self, config: AudioMAEConfig):
        super().__init__()
        self.config = config
        self.grid = config.grid_size
        dim = config.decoder_hidden_size
        self.decoder_embed = nn.Linear(config.hidden_size, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = PositionTable(partial(audiomae_position_table, dim), *self.grid)
        if config.decoder_type == "local":
            self.layers = nn.ModuleList(
                ShiftedWindowLayer(
                    dim,
                    config.decoder_num_attention_heads,
                    self.grid,
                    config.decoder_window_size,
                    config.decoder_shift_size if i % 2 else (0, 0),
                    config.decoder_intermediate_size,
                    layer_norm_eps=config.layer_norm_eps,
                    meta_hidden_size=config.decoder_meta_hidden_size,
                    meta_dropout=config.decoder_meta_dropout,
                )
                for i in range(config.decoder_num_hidden_layers)
            )
        else:
            self.layers = transformer_layers(
                config, config.decoder_num_hidden_layers, dim, config.decoder_num_attention_heads,
                config.decoder_intermediate_size, qkv_bias="qkv" if config.qkv_bias else "none",
            )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.pred = nn.Linear(dim, config.patch_size**2 * config.num_channels)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``[N, 1 + K, D]`` latent -> ``[N, L, p*p*C]`` predictions for every token."""
        if self.config.decoder_type == "local" and tuple(grid) != tuple(self.grid):
            raise ValueError(
                f"the local decoder is built for a token grid of {self.grid} (config.max_length="
                f"{self.config.max_length}); got an input with grid {grid}. Pad or crop the spectrogram to "
                f"{self.config.max_length} frames."
            )
        hidden = self.decoder_embed(latent)  # [N, 1 + K, Dd]
        tokens = restore_with_mask_tokens(hidden[:, 1:], self.mask_token, ids_restore)  # [N, L, Dd], original order
        hidden = torch.cat([hidden[:, :1], tokens], dim=1) + self.position_embeddings.for_grid(*grid)
        if self.config.decoder_type == "local":
            hidden = hidden[:, 1:]  # the windowed blocks work on the token grid only: drop cls first
            for layer in self.layers:
                hidden = layer(hidden)
            return self.pred(self.norm(hidden))  # [N, L, p*p*C]
        hidden, _, _ = run_layers(self.layers, hidden)
        return self.pred(self.norm(hidden))[:, 1:]  # drop the cls row


class AudioMAEForPreTraining(AudioMAEPreTrainedModel):
    """Audio-MAE with its decoder: masks the spectrogram and reconstructs the masked patches."""

    def __init__(self, config: AudioMAEConfig):
        super().__init__(config)
        if config.patch_stride != config.patch_size:
            raise ValueError(
                "pretraining needs non-overlapping patches (patch_stride == patch_size); overlapping patches "
                f"(patch_stride={config.patch_stride}) are supported for fine-tuning only"
            )
        self.audiomae = AudioMAEModel(config)
        self.decoder = AudioMAEDecoder(config)
        self.post_init()

    def patchify(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """``[N, 1, T, F] -> [N, L, p*p]`` (time-major tokens, (row, col) inside a patch)."""
        return patchify_2d(spectrogram, self.config.patch_size)

    def forward(
        self,
        input_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> AudioMAEForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` or ``[N, 1, T, F]`` normalised fbank.
            noise: ``[N, L]`` pins the mask (smallest noise kept); drawn with ``torch.rand`` when omitted.
            mask_ratio: overrides ``config.mask_ratio``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        spectrogram = _as_spectrogram_batch(input_values, self.config)
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        encoded = self.audiomae(
            spectrogram,
            noise=noise,
            mask_ratio=ratio,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        grid = self.audiomae.embeddings.patch_embed.grid_size(*spectrogram.shape[-2:])
        pred = self.decoder(encoded.last_hidden_state, encoded.ids_restore, grid)  # [N, L, p*p*C]

        target = self.patchify(spectrogram)  # [N, L, p*p*C], in the input's precision (float32 under autocast)
        if self.config.norm_pix_loss:
            target = normalize_per_patch(target)
        loss = masked_mse(pred, target, encoded.mask)

        if not return_dict:
            return (loss, pred, encoded.mask, encoded.ids_restore, encoded.last_hidden_state)
        return AudioMAEForPreTrainingOutput(
            loss=loss,
            logits=pred,
            mask=encoded.mask,
            ids_restore=encoded.ids_restore,
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class AudioMAEForAudioClassification(AudioMAEPreTrainedModel):
    """Audio-MAE encoder + mean pooling of the patch tokens + ``fc_norm`` + linear head (official fine-tuning).

    In training, ``config.mask_time_prob``/``config.mask_freq_prob`` drop whole time rows and mel columns of tokens
    (official ``random_masking_2d``), a strong augmentation for fine-tuning.
    """

    def __init__(self, config: AudioMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.audiomae = AudioMAEModel(config, add_final_norm=not config.use_mean_pooling)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.use_mean_pooling else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        time_noise: torch.Tensor | None = None,
        freq_noise: torch.Tensor | None = None,
        mask_time_prob: float | None = None,
        mask_freq_prob: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` or ``[N, 1, T, F]`` normalised fbank.
            labels: class indices ``[N]`` (single-label) or multi-hot ``[N, num_labels]`` floats (multi-label, with
                ``config.problem_type = "multi_label_classification"``).
            time_noise, freq_noise: ``[N, T']`` and ``[N, F']`` noise pinning the time/frequency token dropping.
                The dropping runs in training when ``config.mask_time_prob`` or ``config.mask_freq_prob`` is set,
                and whenever these are passed.
            mask_time_prob, mask_freq_prob: override the config's probabilities for this call (official
                ``forward(x, mask_t_prob=..., mask_f_prob=...)``).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        spectrogram = _as_spectrogram_batch(input_values, self.config)
        mask_time_prob = self.config.mask_time_prob if mask_time_prob is None else mask_time_prob
        mask_freq_prob = self.config.mask_freq_prob if mask_freq_prob is None else mask_freq_prob
        ids_keep = None
        structured = mask_time_prob > 0 or mask_freq_prob > 0
        if time_noise is not None or freq_noise is not None or (self.training and structured):
            time_patches, freq_patches = self.audiomae.embeddings.patch_embed.grid_size(*spectrogram.shape[-2:])
            batch = spectrogram.shape[0]
            device = spectrogram.device
            time_noise = checked_noise(time_noise, (batch, time_patches), device, "time_noise", "batch, time patches")
            freq_noise = checked_noise(freq_noise, (batch, freq_patches), device, "freq_noise", "batch, mel patches")
            ids_keep = time_frequency_masking(time_noise, freq_noise, mask_time_prob, mask_freq_prob)
        encoded = self.audiomae(
            spectrogram,
            ids_keep=ids_keep,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        hidden = encoded.last_hidden_state  # [N, 1 + K, D]
        if self.fc_norm is not None:
            pooled = self.fc_norm(hidden[:, 1:].mean(dim=1))  # mean of the patch tokens, cls excluded
        else:
            pooled = hidden[:, 0]
        logits = self.classifier(self.dropout(pooled))
        check_head_matches_labels(self.config, logits)

        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        if not return_dict:
            output = (logits, encoded.hidden_states, encoded.attentions)
            output = tuple(v for v in output if v is not None)
            return ((loss,) + output) if loss is not None else output
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


__all__ = [
    "AudioMAEForAudioClassification",
    "AudioMAEForPreTraining",
    "AudioMAEModel",
    "AudioMAEPreTrainedModel",
]
