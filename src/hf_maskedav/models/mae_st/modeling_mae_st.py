"""MAE-ST: masked autoencoder on space-time patches (Feichtenhofer et al., "Masked Autoencoders As Spatiotemporal
Learners").

Official code: facebookresearch/mae_st (``models_mae.py`` pretraining, ``models_vit.py`` fine-tuning,
``util/video_vit.py`` blocks). Shapes in comments: N = batch, T/H/W = frames/height/width, T'/H'/W' = token grid,
L = T'*H'*W' tokens ordered (t, h, w), K = kept tokens, D/Dd = encoder/decoder width, u = frames per prediction.

Quirks kept for parity (each checked by the official fixtures):

* learned separable positions: ``spatial`` repeated over time + ``temporal`` repeated over space, the cls token has
  its own ``cls`` position; positions are gathered with the kept ids after masking;
* masking is the MAE recipe from ``noise`` (smallest kept, kept ids in ascending-noise order);
* the encoder's cls output is dropped; the decoder has its own cls token and positions;
* the decoder predicts ``u = tubelet * pred_t_dim // num_frames`` frames per token, the target uses frames
  ``linspace(0, T - 1, pred_t_dim).long()`` of the **normalised** clip, normalised per token with ``sqrt(var + eps)``;
* fine-tuning pools ``tokens[1:]`` with a mean, then applies the encoder's final ``norm`` to the pooled vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from ...layers import (
    SeparableSpaceTimePositionEmbedding,
    TransformerLayer,
    TubeletEmbed3D,
    as_video,
    embed_with_positions,
    ids_from_bool_mask,
    mask_from_noise,
    masked_mse,
    normalize_per_patch,
    num_kept,
    patchify_3d,
    restore_with_mask_tokens,
    run_layers,
    transformer_layers,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_mae_st import MAESTConfig


@dataclass
class MAESTModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, 1 + K, D]`` encoder output after the final norm, cls token first, then the kept
            tokens in the order they were kept (all ``L`` tokens in order without masking).
        mask: ``[N, L]`` 1 for masked tokens (all zeros without masking).
        ids_restore: ``[N, L]`` permutation putting ``[kept, masked]`` tokens back in token order.
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
class MAESTForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: MSE over the masked tokens only.
        logits: ``[N, L, u*p*p*C]`` predictions for every token (no cls row), values ordered (frame, row, column,
            channel).
        mask, ids_restore: as in :class:`MAESTModelOutput`.
        last_hidden_state: ``[N, 1 + K, D]`` encoder output.
        hidden_states, attentions: encoder per-layer outputs when requested.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def _as_video(pixel_values: torch.Tensor, config: MAESTConfig) -> torch.Tensor:
    """Check ``[N, T, C, H, W]`` pixel values and return them as ``[N, C, T, H, W]`` (:func:`as_video`).

    No logic of its own (MAE-ST and VideoMAE bind the same fields): the family's sizes and processor name, bound once.
    """
    return as_video(
        pixel_values,
        num_channels=config.num_channels,
        num_frames=config.num_frames,
        tubelet_size=config.tubelet_size,
        patch_size=config.patch_size,
        processor="MAESTVideoProcessor",
    )


class MAESTEmbeddings(nn.Module):
    """Tubelet embedding, cls token and learned separable space/time/cls positions (official ``sep_pos_embed``)."""

    def __init__(self, config: MAESTConfig):
        super().__init__()
        self.config = config
        grid_t, grid_h, grid_w = config.grid_size
        self.patch_embed = TubeletEmbed3D(config.num_channels, config.hidden_size, config.tubelet_size, config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = SeparableSpaceTimePositionEmbedding(config.hidden_size, grid_t, grid_h * grid_w)

    def forward(self, video: torch.Tensor, ids_keep: torch.Tensor | None = None):
        """``[N, C, T, H, W]`` -> patch tokens with positions ``[N, L, D]``, cls with its position ``[1, 1, D]``, grid.

        With ``ids_keep`` (``[N, K]``) only those tokens are cut, projected and returned (``[N, K, D]``), as if the
        full sequence had been gathered. Positions are interpolated (bicubic in space, linear in time) when the clip's
        grid differs from the config's.
        """
        grid = self.patch_embed.grid_size(*video.shape[-3:])
        positions = self.position_embeddings(num_frames=grid[0], grid_hw=grid[1:])  # [1, L, D]
        cls = self.cls_token + self.position_embeddings.cls
        return embed_with_positions(self.patch_embed, video, positions, ids_keep), cls, grid


class MAESTPreTrainedModel(PreTrainedModel):
    config: MAESTConfig
    config_class = MAESTConfig
    base_model_prefix = "mae_st"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Official ``initialize_weights`` (models_mae.py, ``trunc_init=False``): xavier-uniform Linear layers and
        patch convolution (on its flattened view), normal(0.02) mask token, truncated-normal(0.02) positions and cls
        tokens; a fresh classification head gets ``trunc_normal(head_init_std)`` as main_finetune.py gives it."""
        std = self.config.initializer_range
        if isinstance(self, MAESTForVideoClassification) and module is self.classifier:
            init.trunc_normal_(module.weight, std=self.config.head_init_std)
            init.zeros_(module.bias)
        elif init_mae_weights(module):  # Linear, Conv3d (flattened xavier), LayerNorm
            pass
        elif isinstance(module, SeparableSpaceTimePositionEmbedding):
            for param in (module.spatial, module.temporal, module.cls):
                if param is not None:
                    init.trunc_normal_(param, std=std)
        elif isinstance(module, MAESTEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
        elif isinstance(module, MAESTDecoder):
            init.trunc_normal_(module.cls_token, std=std)
            init.normal_(module.mask_token, std=std)


class MAESTModel(MAESTPreTrainedModel):
    """The MAE-ST encoder: a ViT with a cls token on space-time tubelets that sees only the kept tokens.

    Without ``noise``, ``mask_ratio`` or ``bool_masked_pos`` it encodes every token (feature extraction, fine-tuning).
    """

    def __init__(self, config: MAESTConfig):
        super().__init__(config)
        self.embeddings = MAESTEmbeddings(config)
        self.layers = transformer_layers(
            config, config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            qkv_bias="qkv" if config.qkv_bias else "none",
            drop_path_rate=config.drop_path_rate,
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.patch_embed

    def encode(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[MAESTModelOutput, tuple[int, int, int]]:
        """Like :meth:`forward` but ``last_hidden_state`` is the last block's output **before** the final norm
        (fine-tuning applies the norm after pooling); also returns the token grid."""
        video = _as_video(pixel_values, self.config)
        batch = video.shape[0]
        grid_t, grid_h, grid_w = self.embeddings.patch_embed.grid_size(*video.shape[-3:])
        length = grid_t * grid_h * grid_w

        mask = ids_restore = ids_keep = None
        if bool_masked_pos is not None:
            if noise is not None:
                raise ValueError("give either bool_masked_pos or noise, not both")
            if tuple(bool_masked_pos.shape) != (batch, length):
                raise ValueError(f"bool_masked_pos must have shape {(batch, length)}, got {tuple(bool_masked_pos.shape)}")
            masking = ids_from_bool_mask(bool_masked_pos.to(video.device))
        elif noise is not None or mask_ratio is not None:
            ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
            masking = mask_from_noise("random", noise, (length,), ratio, batch=batch, device=video.device)
        else:
            masking = None
        if masking is not None:
            ids_keep, ids_restore, mask = masking.ids_keep, masking.ids_restore, masking.mask
            # only the kept tokens are embedded: [N, K, D]
            tokens, cls, grid = self.embeddings(video, ids_keep)
        else:
            tokens, cls, grid = self.embeddings(video)  # [N, L, D]
            mask = torch.zeros(batch, length, device=tokens.device)

        hidden = torch.cat([cls.to(tokens.dtype).expand(batch, -1, -1), tokens], dim=1)  # [N, 1 + K, D]
        hidden, all_hidden, all_attentions = run_layers(self.layers, hidden, output_hidden_states, output_attentions)
        output = MAESTModelOutput(
            last_hidden_state=hidden,
            mask=mask,
            ids_restore=ids_restore,
            ids_keep=ids_keep,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output, grid

    def forward(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MAESTModelOutput | tuple:
        r"""
        Args:
            pixel_values: ``[N, T, C, H, W]`` normalised frames (what MAESTVideoProcessor returns). Other frame
                counts (multiples of ``tubelet_size``) and sizes (multiples of ``patch_size``) interpolate the
                position tables.
            noise: ``[N, L]`` masking noise; the tokens with the smallest noise are kept (official recipe). Drawn with
                ``torch.rand`` when only ``mask_ratio`` is given.
            mask_ratio: fraction of tokens to remove; ``config.mask_ratio`` when only ``noise`` is given.
            bool_masked_pos: ``[N, L]`` bool (True = masked) instead of ``noise``; the same count in every sample.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded, _ = self.encode(
            pixel_values, noise, mask_ratio, bool_masked_pos, bool(output_hidden_states), bool(output_attentions)
        )
        encoded.last_hidden_state = self.norm(encoded.last_hidden_state)
        if not return_dict:
            return encoded.to_tuple()
        return encoded


class MAESTDecoder(nn.Module):
    """Decoder: project, fill in mask tokens, prepend its own cls token, add its own separable positions, blocks."""

    def __init__(self, config: MAESTConfig):
        super().__init__()
        self.config = config
        dim = config.decoder_hidden_size
        grid_t, grid_h, grid_w = config.grid_size
        self.decoder_embed = nn.Linear(config.hidden_size, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = SeparableSpaceTimePositionEmbedding(dim, grid_t, grid_h * grid_w)
        self.layers = transformer_layers(
            config, config.decoder_num_hidden_layers, dim, config.decoder_num_attention_heads,
            config.decoder_intermediate_size, qkv_bias="qkv" if config.qkv_bias else "none",
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.pred = nn.Linear(dim, config.frames_per_prediction * config.patch_size**2 * config.num_channels)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """``[N, 1 + K, D]`` encoder output -> ``[N, L, u*p*p*C]`` predictions for every token."""
        hidden = self.decoder_embed(latent[:, 1:])  # official: the encoder's cls output is dropped
        tokens = restore_with_mask_tokens(hidden, self.mask_token, ids_restore)  # [N, L, Dd], token order
        positions = self.position_embeddings(num_frames=grid[0], grid_hw=grid[1:]).to(tokens.dtype)
        cls = (self.cls_token + self.position_embeddings.cls).to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        hidden = torch.cat([cls, tokens + positions], dim=1)
        hidden, _, _ = run_layers(self.layers, hidden)
        return self.pred(self.norm(hidden))[:, 1:]  # drop the cls row


class MAESTForPreTraining(MAESTPreTrainedModel):
    """MAE-ST with its decoder: masks 90% of the space-time tokens at random and reconstructs them.

    A training loop only passes ``pixel_values``: the mask is drawn inside. ``noise`` pins it, ``bool_masked_pos``
    gives it.
    """

    def __init__(self, config: MAESTConfig):
        super().__init__(config)
        self.mae_st = MAESTModel(config)
        self.decoder = MAESTDecoder(config)
        self.post_init()

    def target_frame_indices(self, num_frames: int) -> torch.Tensor:
        """Frames of a ``num_frames`` clip the decoder reconstructs: ``linspace(0, T - 1, n).long()`` with
        ``n = (T / tubelet) * frames_per_prediction`` (``pred_t_dim`` for the configured clip; official
        ``forward_loss``, which truncates, so 16 frames give [0, 2, 4, 6, 8, 10, 12, 15])."""
        count = (num_frames // self.config.tubelet_size) * self.config.frames_per_prediction
        return torch.linspace(0, num_frames - 1, count).long()

    def reconstruction_target(self, pixel_values: torch.Tensor, normalize: bool | None = None) -> torch.Tensor:
        """The target of every token, ``[N, L, u*p*p*C]``, from the (normalised) input frames chosen by
        :meth:`target_frame_indices`; with ``normalize`` (default ``config.norm_pix_loss``) each token is normalised
        by its mean and unbiased variance, ``(x - mean) / sqrt(var + 1e-6)``."""
        video = _as_video(pixel_values, self.config)  # [N, C, T, H, W]
        frames = video.index_select(2, self.target_frame_indices(video.shape[2]).to(video.device))
        patches = patchify_3d(frames, self.config.frames_per_prediction, self.config.patch_size)
        if self.config.norm_pix_loss if normalize is None else normalize:
            patches = normalize_per_patch(patches)
        return patches

    def forward(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MAESTForPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values: ``[N, T, C, H, W]`` normalised frames.
            noise: ``[N, L]`` pins the mask (smallest noise kept); drawn with ``torch.rand`` when omitted.
            mask_ratio: overrides ``config.mask_ratio``.
            bool_masked_pos: ``[N, L]`` bool (True = masked) instead of ``noise``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        ratio = None if bool_masked_pos is not None else (self.config.mask_ratio if mask_ratio is None else mask_ratio)
        grid = self.mae_st.embeddings.patch_embed.grid_size(*_as_video(pixel_values, self.config).shape[-3:])
        length = grid[0] * grid[1] * grid[2]
        # Every sample must mask at least one token (the loss is computed on masked tokens only). A drawn mask's count
        # is known now, without reading anything back from the device; a given mask is checked on its values.
        if bool_masked_pos is not None:
            masks_all = bool(bool_masked_pos.bool().any(dim=1).all())
        else:
            masks_all = num_kept(length, ratio) < length
        if not masks_all:
            raise ValueError("every sample must mask at least one token: the loss is computed on masked tokens only")
        encoded = self.mae_st(
            pixel_values,
            noise=noise,
            mask_ratio=ratio,
            bool_masked_pos=bool_masked_pos,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        pred = self.decoder(encoded.last_hidden_state, encoded.ids_restore, grid)  # [N, L, u*p*p*C]
        target = self.reconstruction_target(pixel_values)  # the input's precision; masked_mse runs in float32
        loss = masked_mse(pred, target, encoded.mask)

        if not return_dict:
            return (loss, pred, encoded.mask, encoded.ids_restore, encoded.last_hidden_state)
        return MAESTForPreTrainingOutput(
            loss=loss,
            logits=pred,
            mask=encoded.mask,
            ids_restore=encoded.ids_restore,
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class MAESTForVideoClassification(MAESTPreTrainedModel):
    """MAE-ST fine-tuning model (official ``models_vit.VisionTransformer``): mean of the patch tokens (cls excluded),
    then the encoder's final ``norm`` applied to the pooled vector, dropout, linear head.

    Because the pooled norm *is* the encoder's ``norm``, loading a pretraining checkpoint initialises it from the
    pretrained encoder norm, as the official fine-tuning does.
    """

    def __init__(self, config: MAESTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mae_st = MAESTModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values: ``[N, T, C, H, W]`` normalised frames.
            labels: class indices ``[N]``, or multi-hot ``[N, num_labels]`` with
                ``config.problem_type="multi_label_classification"``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded, _ = self.mae_st.encode(
            pixel_values, output_hidden_states=bool(output_hidden_states), output_attentions=bool(output_attentions)
        )
        pooled = self.mae_st.norm(encoded.last_hidden_state[:, 1:].mean(dim=1))  # [N, D]
        logits = self.classifier(self.dropout(pooled))
        check_head_matches_labels(self.config, logits)

        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        if not return_dict:
            output = tuple(v for v in (logits, encoded.hidden_states, encoded.attentions) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


__all__ = ["MAESTForPreTraining", "MAESTForVideoClassification", "MAESTModel", "MAESTPreTrainedModel"]
