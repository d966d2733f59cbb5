"""VideoMAE: masked autoencoder on video tubelets (Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient
Learners for Self-Supervised Video Pre-Training"), and VideoMAE V2's dual masking (Wang et al., "VideoMAE V2: Scaling
Video Masked Autoencoders with Dual Masking").

Official code: MCG-NJU/VideoMAE (``modeling_pretrain.py``, ``modeling_finetune.py``, ``engine_for_pretraining.py``);
OpenGVLab/VideoMAEv2 (the same files, plus ``dataset/masking_generator.py``).
Shapes in comments: N = batch, T/H/W = frames/height/width, T'/H'/W' = token grid, L = T'*H'*W' tokens ordered
(t, h, w), K = visible tokens, M = masked tokens, D/Dd = encoder/decoder width, t x p x p = tubelet.

Quirks kept for parity (each checked by the official fixtures):

* the position table is a fixed 1-D sinusoid over the flattened token index, channels interleaved sin/cos, never
  stored in a checkpoint;
* attention has learned ``q_bias`` and ``v_bias`` and no key bias;
* no cls token; the decoder sees ``[visible..., masked...]`` (not unshuffled) and predicts the masked tokens only;
* the target un-normalises the input and normalises each tubelet **per channel** with the eps on the std;
* ``encoder_to_decoder`` has no bias.

VideoMAE V2 (``config.decoder_mask_ratio > 0`` or a ``decode_masked_pos`` argument): the decoder gets the visible
tokens and then one mask token for every token the running-cell mask keeps -- **including tokens the encoder saw**,
which then appear twice -- and predicts the kept ones; the loss counts only those that were also hidden from the
encoder, summed over the batch and divided by their number (OpenGVLab/VideoMAEv2 ``engine_for_pretraining.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from ...layers import (
    MaskingIndices,
    PositionTable,
    TransformerLayer,
    TubeletEmbed3D,
    as_video,
    checked_noise,
    embed_with_positions,
    gather_tokens,
    ids_from_bool_mask,
    ids_from_fixed_count_mask,
    mask_from_noise,
    masked_mse,
    normalize_per_patch_channel,
    num_masked_tokens,
    run_layers,
    running_cell_counts,
    running_cell_mask,
    sinusoid_1d_table,
    transformer_layers,
    video_pixel_targets,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_videomae import MaskedAVVideoMAEConfig


@dataclass
class MaskedAVVideoMAEModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, K, D]`` encoder output of the visible tokens in ascending token order (all ``L``
            tokens when nothing is masked).
        mask: ``[N, L]`` 1 for masked tokens (all zeros without masking).
        ids_restore: ``[N, L]`` permutation putting ``[visible, masked]`` tokens back in token order (``None``
            without masking).
        hidden_states, attentions: per-layer outputs when requested.
    """

    last_hidden_state: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MaskedAVVideoMAEForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: MSE between the predictions and the (normalised) pixels of the masked tubelets (with dual masking: of
            the tubelets both masked and reconstructed).
        logits: ``[N, M, t*p*p*C]`` predictions for the masked tokens in ascending token order, values ordered
            (frame, row, column, channel). With dual masking: ``[N, R, t*p*p*C]`` for the ``R`` tokens the decoder
            reconstructs (``decoder_mask`` 0), visible ones included.
        mask: ``[N, L]`` 1 for masked tokens.
        decoder_mask: ``[N, L]`` 1 for tokens the decoder does not reconstruct (``None`` without dual masking).
        last_hidden_state: ``[N, K, D]`` encoder output of the visible tokens.
        hidden_states, attentions: encoder per-layer outputs when requested.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    decoder_mask: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def videomae_position_table(
    embed_dim: int, base_grid: tuple[int, int, int], mode: str, grid_t: int, grid_h: int, grid_w: int
) -> torch.Tensor:
    """The ``[t*h*w, D]`` fixed table for a token grid.

    For the configured ``base_grid`` it is the official 1-D sinusoid over the flattened index (MCG-NJU/VideoMAE
    ``get_sinusoid_encoding_table``). For another grid, ``mode="regenerate"`` builds the 1-D table for the new token
    count (what the official fine-tuning code does for other clip sizes) and ``mode="trilinear"`` resizes the
    configured table over the (t, h, w) grid.
    """
    grid = (grid_t, grid_h, grid_w)
    if mode == "regenerate" or grid == tuple(base_grid):
        return sinusoid_1d_table(grid_t * grid_h * grid_w, embed_dim)
    if mode != "trilinear":
        raise ValueError(f"position_interpolation must be 'regenerate' or 'trilinear', got {mode!r}")
    bt, bh, bw = base_grid
    base = sinusoid_1d_table(bt * bh * bw, embed_dim).double()
    base = base.reshape(1, bt, bh, bw, embed_dim).permute(0, 4, 1, 2, 3)  # [1, D, T', H', W']
    resized = nn.functional.interpolate(base, size=grid, mode="trilinear", align_corners=False)
    return resized.permute(0, 2, 3, 4, 1).reshape(-1, embed_dim).float()


def _as_video(pixel_values: torch.Tensor, config: MaskedAVVideoMAEConfig) -> torch.Tensor:
    """Check ``[N, T, C, H, W]`` pixel values and return them as ``[N, C, T, H, W]`` (:func:`as_video`).

    No logic of its own (MAE-ST and VideoMAE bind the same fields): the family's sizes and processor name, bound once.
    """
    return as_video(
        pixel_values,
        num_channels=config.num_channels,
        num_frames=config.num_frames,
        tubelet_size=config.tubelet_size,
        patch_size=config.patch_size,
        processor="MaskedAVVideoMAEVideoProcessor",
    )


def _check_token_mask(name: str, mask: torch.Tensor, batch: int, grid: tuple[int, int, int]) -> None:
    """A per-token mask must be ``[N, T'*H'*W']`` for the clip it comes with."""
    length = grid[0] * grid[1] * grid[2]
    if tuple(mask.shape) != (batch, length):
        raise ValueError(
            f"{name} must have shape {(batch, length)} (batch, tokens of a {grid[0]}x{grid[1]}x{grid[2]} grid), "
            f"got {tuple(mask.shape)}"
        )


# config.mask_type -> the layers.mask_from_noise kind; VideoMAE's "random" masks int(ratio * L) tokens (V2's count)
MASK_KINDS = {"tube": "tube", "random": "count"}


class MaskedAVVideoMAEEmbeddings(nn.Module):
    """Tubelet embedding (Conv3d) plus the fixed 1-D sinusoid table (no cls token)."""

    def __init__(self, config: MaskedAVVideoMAEConfig):
        super().__init__()
        self.config = config
        self.patch_embed = TubeletEmbed3D(config.num_channels, config.hidden_size, config.tubelet_size, config.patch_size)
        self.position_embeddings = PositionTable(
            partial(videomae_position_table, config.hidden_size, config.grid_size, config.position_interpolation),
            *config.grid_size,
        )

    def forward(
        self, video: torch.Tensor, ids_keep: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """``[N, C, T, H, W]`` -> tokens with positions ``[N, L, D]`` (only the ``[N, K]`` tokens ``ids_keep`` when
        given: the others are neither cut nor projected) and the token grid."""
        grid = self.patch_embed.grid_size(*video.shape[-3:])
        positions = self.position_embeddings.for_grid(*grid)  # [1, L, D]
        return embed_with_positions(self.patch_embed, video, positions, ids_keep), grid


class MaskedAVVideoMAEDecoder(nn.Module):
    """Pretraining decoder: projection, mask tokens, its own fixed table, ViT blocks, norm and pixel head."""

    def __init__(self, config: MaskedAVVideoMAEConfig):
        super().__init__()
        self.config = config
        dim = config.decoder_hidden_size
        self.encoder_to_decoder = nn.Linear(config.hidden_size, dim, bias=False)  # official: no bias
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = PositionTable(
            partial(videomae_position_table, dim, config.grid_size, config.position_interpolation), *config.grid_size
        )
        self.layers = transformer_layers(
            config, config.decoder_num_hidden_layers, dim, config.decoder_num_attention_heads,
            config.decoder_intermediate_size, qkv_bias="qv" if config.qkv_bias else "none",
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.norm = nn.LayerNorm(dim, eps=config.head_norm_eps)
        self.head = nn.Linear(dim, config.tubelet_size * config.patch_size**2 * config.num_channels)

    def forward(self, latent, ids_visible, ids_decoded, grid) -> torch.Tensor:
        """``[N, K, D]`` visible latent -> ``[N, R, t*p*p*C]`` predictions for the tokens ``ids_decoded`` (V1: the
        masked tokens; V2: the tokens the running-cell mask keeps, visible ones included)."""
        hidden = self.encoder_to_decoder(latent)  # [N, K, Dd]
        positions = self.position_embeddings.for_grid(*grid).to(hidden.dtype).expand(hidden.shape[0], -1, -1)
        visible = hidden + gather_tokens(positions, ids_visible)
        queries = self.mask_token.to(hidden.dtype) + gather_tokens(positions, ids_decoded)  # [N, R, Dd]
        # Official order (modeling_pretrain.py): visible tokens first, then the mask tokens; no unshuffling.
        hidden, _, _ = run_layers(self.layers, torch.cat([visible, queries], dim=1))
        return self.head(self.norm(hidden[:, -ids_decoded.shape[1] :]))


class MaskedAVVideoMAEPreTrainedModel(PreTrainedModel):
    config: MaskedAVVideoMAEConfig
    config_class = MaskedAVVideoMAEConfig
    base_model_prefix = "videomae"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Official pretraining init (``modeling_pretrain.py``): xavier-uniform Linear layers, PyTorch's default Conv3d
        init, truncated-normal mask token. A fresh classification head is truncated-normal scaled by
        ``head_init_scale`` (``modeling_finetune.py``); fine-tuning starts from pretrained encoder weights, so the
        encoder keeps the pretraining init. The fixed tables are (re)built here."""
        std = self.config.initializer_range
        if isinstance(self, MaskedAVVideoMAEForVideoClassification) and module is self.classifier:
            if not isinstance(module, nn.Linear):  # num_labels=0: no head
                return
            init.trunc_normal_(module.weight, std=std * self.config.head_init_scale)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Conv3d):
            init.kaiming_uniform_(module.weight, a=5**0.5)  # PyTorch's default Conv init, kept by VideoMAE
            if module.bias is not None:
                bound = 1.0 / module.weight[0].numel() ** 0.5
                init.uniform_(module.bias, -bound, bound)
        elif init_mae_weights(module):  # xavier Linear, LayerNorm, fixed tables, q/v biases
            pass
        elif isinstance(module, MaskedAVVideoMAEDecoder):
            init.trunc_normal_(module.mask_token, std=std, a=-std, b=std)  # VideoMAE's trunc_normal_ wrapper


class MaskedAVVideoMAEModel(MaskedAVVideoMAEPreTrainedModel):
    """The VideoMAE encoder: a ViT on tubelets that sees only the visible tokens.

    Args:
        config: the model configuration.
        add_final_norm: keep the final LayerNorm; by default decided by ``config.use_final_norm`` (the bare encoder and
            the pretraining model have it).
    """

    def __init__(self, config: MaskedAVVideoMAEConfig, add_final_norm: bool | None = None):
        super().__init__(config)
        if add_final_norm is None:
            add_final_norm = True if config.use_final_norm is None else config.use_final_norm
        self.embeddings = MaskedAVVideoMAEEmbeddings(config)
        self.layers = transformer_layers(
            config, config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            qkv_bias="qv" if config.qkv_bias else "none",
            drop_path_rate=config.drop_path_rate,
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if add_final_norm else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.patch_embed

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskedAVVideoMAEModelOutput | tuple:
        r"""
        Args:
            pixel_values: ``[N, T, C, H, W]`` normalised frames (what the video processor returns). ``T`` may differ
                from ``config.num_frames`` and ``H, W`` from ``config.image_size``: the position table follows.
            bool_masked_pos: ``[N, L]`` bool, True = masked (removed before the encoder). Every sample must mask the
                same number of tokens. Tokens are ordered (t, h, w).
            noise: draw the configured mask (``config.mask_type``) from this noise instead: ``[N, H'*W']`` for tube
                masking, ``[N, L]`` for random masking; the cells/tokens with the largest noise are masked. The
                count is known in advance, so nothing is read back from the device (one ``torch.compile`` graph).
            mask_ratio: ratio of the drawn mask (``config.mask_ratio`` by default); giving it without ``noise``
                draws the noise with ``torch.rand``.

        Without ``bool_masked_pos``, ``noise`` or ``mask_ratio`` every token is encoded.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        video = _as_video(pixel_values, self.config)
        grid = self.embeddings.patch_embed.grid_size(*video.shape[-3:])
        if bool_masked_pos is None and noise is None and mask_ratio is None:
            masking = None  # every token is encoded
        else:
            masking = self._masking(video, grid, bool_masked_pos, noise, mask_ratio)
        encoded = self._encode(video, masking, output_hidden_states, output_attentions)
        if not return_dict:
            return encoded.to_tuple()
        return encoded

    def _masking(self, video, grid, bool_masked_pos, noise, mask_ratio) -> MaskingIndices:
        """The mask: given (``bool_masked_pos``, any fixed count) or drawn (``config.mask_type`` from ``noise``, drawn
        when None, at ``mask_ratio`` or ``config.mask_ratio``; the count is known in advance, so nothing is read back
        from the device)."""
        if bool_masked_pos is not None:
            if noise is not None:
                raise ValueError("give either bool_masked_pos or noise, not both")
            _check_token_mask("bool_masked_pos", bool_masked_pos, video.shape[0], grid)
            return ids_from_bool_mask(bool_masked_pos.to(video.device))
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        kind = MASK_KINDS[self.config.mask_type]
        return mask_from_noise(kind, noise, grid, ratio, batch=video.shape[0], device=video.device)

    def _encode(self, video, masking: MaskingIndices | None, output_hidden_states, output_attentions):
        """Encode a checked ``[N, C, T, H, W]`` clip: every token (``masking`` None) or the kept ones only."""
        if masking is None:
            tokens, grid = self.embeddings(video)  # [N, L, D]
            mask, ids_restore = torch.zeros(video.shape[0], math.prod(grid), device=tokens.device), None
        else:
            tokens, _ = self.embeddings(video, masking.ids_keep)  # [N, K, D], ascending token order
            mask, ids_restore = masking.mask, masking.ids_restore

        hidden, all_hidden, all_attentions = run_layers(self.layers, tokens, output_hidden_states, output_attentions)
        if self.norm is not None:
            hidden = self.norm(hidden)
        return MaskedAVVideoMAEModelOutput(
            last_hidden_state=hidden, mask=mask, ids_restore=ids_restore, hidden_states=all_hidden, attentions=all_attentions
        )


class MaskedAVVideoMAEForPreTraining(MaskedAVVideoMAEPreTrainedModel):
    """VideoMAE with its decoder: masks tubes of the clip and reconstructs the masked tubelets.

    A training loop only passes ``pixel_values``: the mask is drawn inside (``config.mask_type``, ``config.mask_ratio``).
    Pass ``noise`` to pin it, or ``bool_masked_pos`` to give it (as the official data loader does).

    VideoMAE V2 (dual masking): with ``config.decoder_mask_ratio > 0`` a running-cell decoder mask is drawn too; pass
    ``decode_masked_pos`` to give it (the official ``model(x, bool_masked_pos, decode_masked_pos)`` call).
    """

    def __init__(self, config: MaskedAVVideoMAEConfig):
        super().__init__(config)
        self.videomae = MaskedAVVideoMAEModel(config)
        self.decoder = MaskedAVVideoMAEDecoder(config)
        self.post_init()

    def reconstruction_target(self, pixel_values: torch.Tensor, normalize: bool | None = None) -> torch.Tensor:
        """The target of every token, ``[N, L, t*p*p*C]``, as the official ``engine_for_pretraining.py`` builds it.

        Un-normalise with ``config.pixel_mean``/``pixel_std``, cut into tubelets with values ordered (frame, row,
        column, channel), then, when ``normalize`` (default ``config.norm_pix_loss``), normalise each channel of each
        tubelet: ``(x - mean) / (sqrt(unbiased var) + 1e-6)`` (:func:`~hf_maskedav.layers.video_pixel_targets`).
        """
        video = _as_video(pixel_values, self.config)  # [N, C, T, H, W]
        grid = self.videomae.embeddings.patch_embed.grid_size(*video.shape[-3:])
        every_token = torch.arange(math.prod(grid), device=video.device).expand(video.shape[0], -1)
        patches = self._masked_targets(video, every_token, normalize=False)
        if self.config.norm_pix_loss if normalize is None else normalize:
            patches = normalize_per_patch_channel(patches, self.config.num_channels)
        return patches

    def _masked_targets(self, video: torch.Tensor, ids: torch.Tensor, normalize: bool | None = None) -> torch.Tensor:
        """The targets of the tokens ``ids`` of a checked ``[N, C, T, H, W]`` clip, ``[N, M, t*p*p*C]``."""
        config = self.config
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        normalize = config.norm_pix_loss if normalize is None else normalize
        return video_pixel_targets(video, ids, kernel, config.pixel_mean, config.pixel_std, normalize)

    def _decoder_mask(self, decode_masked_pos, decoder_noise, ratio, batch: int, grid):
        """VideoMAE V2's decoder mask as :class:`~hf_maskedav.layers.MaskingIndices` (``ids_keep`` = reconstructed
        tokens, ascending), given or drawn (running cell, ``config.decoder_mask_ratio``); ``None`` without one."""
        length = grid[0] * grid[1] * grid[2]
        device = self.decoder.mask_token.device
        if decode_masked_pos is not None:
            if decoder_noise is not None:
                raise ValueError("give either decode_masked_pos or decoder_noise, not both")
            _check_token_mask("decode_masked_pos", decode_masked_pos, batch, grid)
            decode_masked_pos = decode_masked_pos.to(device).bool()
            if decode_masked_pos.all(dim=1).any():
                raise ValueError("decode_masked_pos hides every token of a sample: the decoder must reconstruct some")
            return ids_from_bool_mask(decode_masked_pos)  # checks the equal count per sample
        ratio = self.config.decoder_mask_ratio if ratio is None else ratio
        if not ratio:
            return None
        counts = running_cell_counts(grid, ratio)  # tokens dropped for each of the 4 start pointers
        if len(set(counts)) != 1:
            raise ValueError(
                f"a running-cell decoder mask on a {grid[0]}x{grid[1]}x{grid[2]} grid drops {counts} tokens depending "
                "on its start, so a batch would not have a fixed count: use an even number of patches per side (as "
                "the official generator requires) or a multiple of 4 time slices"
            )
        decoder_noise = checked_noise(decoder_noise, (batch,), device, "decoder_noise", "one value per sample")
        start = (decoder_noise * 4).long().clamp(0, 3)  # the official np.random.randint(cell_size)
        return ids_from_fixed_count_mask(running_cell_mask(start, grid, ratio), length - counts[0])

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        decode_masked_pos: torch.Tensor | None = None,
        decoder_noise: torch.Tensor | None = None,
        decoder_mask_ratio: float | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskedAVVideoMAEForPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values: ``[N, T, C, H, W]`` normalised frames.
            bool_masked_pos: ``[N, L]`` bool mask (True = masked), the same count in every sample.
            noise: pins the drawn mask instead: ``[N, H'*W']`` for tube masking, ``[N, L]`` for random masking; the
                cells/tokens with the largest noise are masked.
            mask_ratio: overrides ``config.mask_ratio`` for a drawn mask.
            decode_masked_pos: VideoMAE V2's decoder mask, ``[N, L]`` bool, True = **not** reconstructed (official
                running-cell mask; :func:`~hf_maskedav.layers.videomae_v2_masks` draws it as the official loader).
                Every sample must reconstruct the same number of tokens.
            decoder_noise: pins the drawn running-cell mask instead: ``[N]`` values in ``[0, 1)``, the start pointer
                is ``int(4 * noise)`` (the official ``np.random.randint(4)``); drawn with ``torch.rand`` when None.
            decoder_mask_ratio: overrides ``config.decoder_mask_ratio`` for a drawn decoder mask (0 = V1 decoding).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        video = _as_video(pixel_values, self.config)
        grid = self.videomae.embeddings.patch_embed.grid_size(*video.shape[-3:])
        if bool_masked_pos is None:
            ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
            if num_masked_tokens(MASK_KINDS[self.config.mask_type], grid, ratio) == 0:
                raise ValueError(
                    f"mask_ratio {ratio} masks no token of a {grid[0]}x{grid[1]}x{grid[2]} grid: the loss is computed "
                    "on masked tokens only"
                )
        else:
            if noise is not None:
                raise ValueError("give either bool_masked_pos or noise, not both")
            bool_masked_pos = bool_masked_pos.to(video.device).bool()
            if not bool_masked_pos.any(dim=1).all():
                raise ValueError("every sample must mask at least one token: the loss is computed on masked tokens only")
            ratio = None
        masking = self.videomae._masking(video, grid, bool_masked_pos, noise, ratio)  # drawn once, here
        encoded = self.videomae._encode(video, masking, output_hidden_states, output_attentions)
        num_visible = encoded.last_hidden_state.shape[1]
        ids_shuffle = torch.argsort(encoded.ids_restore, dim=1)  # [visible ascending, masked ascending]
        ids_visible, ids_masked = ids_shuffle[:, :num_visible], ids_shuffle[:, num_visible:]
        decoder_mask = self._decoder_mask(decode_masked_pos, decoder_noise, decoder_mask_ratio, video.shape[0], grid)
        if decoder_mask is None:  # V1: the decoder reconstructs exactly the masked tokens
            ids_decoded = ids_masked
        else:  # V2: the tokens the running-cell mask keeps, ascending (visible ones included)
            ids_decoded = decoder_mask.ids_keep
        logits = self.decoder(encoded.last_hidden_state, ids_visible, ids_decoded, grid)  # [N, R, t*p*p*C]

        with torch.no_grad():  # official: labels are built under no_grad
            labels = self._masked_targets(video, ids_decoded)  # [N, R, t*p*p*C], the input's precision
        # in float32, as the official loss under autocast
        if decoder_mask is None:
            loss = nn.functional.mse_loss(logits.float(), labels.float())
        else:  # official V2 engine: only reconstructed tokens that the encoder did not see count
            loss = masked_mse(logits, labels, torch.gather(encoded.mask, 1, ids_decoded))

        decoder_mask = None if decoder_mask is None else decoder_mask.mask
        if not return_dict:
            return (loss, logits, encoded.mask, encoded.last_hidden_state)
        return MaskedAVVideoMAEForPreTrainingOutput(
            loss=loss,
            logits=logits,
            mask=encoded.mask,
            decoder_mask=decoder_mask,
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class MaskedAVVideoMAEForVideoClassification(MaskedAVVideoMAEPreTrainedModel):
    """VideoMAE encoder + mean of all tokens + ``fc_norm`` + dropout + linear head (official fine-tuning model).

    With ``config.use_mean_pooling=False`` it classifies the first token after the final norm instead (official
    ``--use_cls`` / transformers' behaviour for such configs). With ``config.num_labels=0`` there is no head
    (official ``num_classes=0``): ``logits`` are the pooled features (what VideoMAE V2's encoder-only remote-code Hub
    repos return).
    """

    def __init__(self, config: MaskedAVVideoMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        final_norm = config.use_final_norm if config.use_final_norm is not None else not config.use_mean_pooling
        self.videomae = MaskedAVVideoMAEModel(config, add_final_norm=final_norm)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.head_norm_eps) if config.use_mean_pooling else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels else nn.Identity()
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
        encoded = self.videomae(
            pixel_values, output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True
        )
        hidden = encoded.last_hidden_state  # [N, L, D]
        pooled = self.fc_norm(hidden.mean(dim=1)) if self.fc_norm is not None else hidden[:, 0]
        logits = self.classifier(self.dropout(pooled))
        if self.config.num_labels:
            check_head_matches_labels(self.config, logits)

        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        if not return_dict:
            output = tuple(v for v in (logits, encoded.hidden_states, encoded.attentions) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


__all__ = [
    "MaskedAVVideoMAEForPreTraining",
    "MaskedAVVideoMAEForVideoClassification",
    "MaskedAVVideoMAEModel",
    "MaskedAVVideoMAEPreTrainedModel",
]
