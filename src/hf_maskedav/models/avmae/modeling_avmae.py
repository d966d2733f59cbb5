"""AV-MAE: audiovisual masked autoencoders (Georgescu et al., ICCV 2023), ported from google-research/scenic
``projects/av_mae`` (Flax): ``vivit_multimodal.ViViTMultiMaskedAutoencoder`` (pretraining) and ``mbt.MBT``
(fine-tuning with bottleneck fusion).

Shapes in comments: N = batch, D = encoder width, Dd = decoder width, La/Lv = audio/video tokens, Ka/Kv = kept tokens.
Audio tokens are time-major (``t * F' + f``), video tokens ``(t, h, w)``. In every mask 1 = masked.

No reference outputs of the official code could be produced for this port (the checkpoints are JAX/Flax and the
official code was not run here): see ``docs/cavmae_avmae.md``.
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
    MaskingIndices,
    PatchEmbed2D,
    PositionTable,
    TubeletEmbed3D,
    as_spectrogram,
    as_video,
    gather_tokens,
    mask_from_noise,
    masked_mse,
    normalize_per_patch,
    num_kept,
    patchify_2d,
    patchify_3d,
    restore_with_mask_tokens,
    run_layers,
    sinusoid_1d_table,
    transformer_layers,
)
from ...modeling_utils import check_head_matches_labels, classification_loss, init_mae_weights
from .configuration_avmae import AVMAEConfig


@dataclass
class AVMAEModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, Ka + Kv, D]`` the encoder outputs of the modalities given, audio first.
        audio_last_hidden_state, video_last_hidden_state: ``[N, K, D]`` encoder outputs per modality (after the joint
            fusion layers when the model has them and both modalities are given).
        audio_mask, video_mask: ``[N, L]`` 1 for masked tokens.
        audio_ids_restore, video_ids_restore: ``[N, L]`` permutations putting ``[kept, masked]`` back in order.
        audio_ids_keep, video_ids_keep: ``[N, K]`` kept tokens in the order the encoder saw them.
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


@dataclass
class AVMAEForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: ``audio_loss_weight * audio_loss + video_loss_weight * video_loss``.
        audio_loss, video_loss: MSE on the masked patches of each modality (mean over patch values and tokens).
        audio_logits: ``[N, La, p*p]`` predicted spectrogram patches; video_logits: ``[N, Lv, t*p*p*C]``.
        audio_mask, video_mask, audio_ids_restore, video_ids_restore: as in :class:`AVMAEModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    audio_loss: torch.FloatTensor | None = None
    video_loss: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    video_logits: torch.FloatTensor | None = None
    audio_mask: torch.FloatTensor | None = None
    video_mask: torch.FloatTensor | None = None
    audio_ids_restore: torch.LongTensor | None = None
    video_ids_restore: torch.LongTensor | None = None


def _sinusoid_table(width: int, length: int) -> torch.Tensor:
    """Scenic ``Add1DPositionEmbedding(posemb_init=None)``: interleaved sin/cos over the flattened tokens."""
    return sinusoid_1d_table(length, width)


def _as_spectrogram(input_values: torch.Tensor, config: AVMAEConfig) -> torch.Tensor:
    """``[N, T, F]`` (or ``[N, 1, T, F]``) log-mel -> ``[N, 1, T, F]`` (Flax NHWC with H = time, W = mel)."""
    return as_spectrogram(
        input_values, num_mel_bins=config.num_mel_bins, max_length=config.max_length, processor="AVMAEFeatureExtractor"
    )


def _as_video(pixel_values: torch.Tensor, config: AVMAEConfig) -> torch.Tensor:
    """``[N, T, C, H, W]`` (video-processor layout) -> ``[N, C, T, H, W]`` for the tubelet convolution."""
    return as_video(
        pixel_values, num_channels=config.num_channels, num_frames=config.num_frames, tubelet_size=config.tubelet_size,
        patch_size=config.video_patch_size, image_size=config.image_size, processor="AVMAEVideoProcessor",
    )


class AVMAEEmbeddings(nn.Module):
    """Spectrogram patches and video tubelets with fixed 1-D sinusoidal tables (Scenic ``tokenize_input`` +
    ``add_positional_embeddings('sinusoidal_1d')``), plus the optional modality tokens (Scenic
    ``add_modality_token``; the fine-tuning model MBT has none)."""

    def __init__(self, config: AVMAEConfig, modality_tokens: bool = False):
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.audio_patch_embed = self.video_patch_embed = None
        self.audio_modality_token = self.video_modality_token = None
        if "audio" in config.modalities:
            self.audio_patch_embed = PatchEmbed2D(1, dim, config.audio_patch_size)
            self.audio_position_embeddings = PositionTable(partial(_sinusoid_table, dim), config.num_audio_patches)
            if modality_tokens:
                self.audio_modality_token = nn.Parameter(torch.zeros(1, 1, dim))
        if "video" in config.modalities:
            self.video_patch_embed = TubeletEmbed3D(
                config.num_channels, dim, config.tubelet_size, config.video_patch_size
            )
            self.video_position_embeddings = PositionTable(partial(_sinusoid_table, dim), config.num_video_patches)
            if modality_tokens:
                self.video_modality_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, input_values=None, pixel_values=None) -> dict[str, torch.Tensor]:
        """``{"audio": [N, La, D], "video": [N, Lv, D]}`` for the modalities given."""
        if input_values is None and pixel_values is None:
            raise ValueError("pass input_values (audio), pixel_values (video) or both")
        tokens = {}
        if input_values is not None:
            if self.audio_patch_embed is None:
                raise ValueError(f"this model has no audio stream (config.modalities={list(self.config.modalities)})")
            spectrogram = _as_spectrogram(input_values, self.config).to(self.audio_patch_embed.proj.weight.dtype)
            x = self.audio_patch_embed(spectrogram) + self.audio_position_embeddings.table
            tokens["audio"] = x if self.audio_modality_token is None else x + self.audio_modality_token
        if pixel_values is not None:
            if self.video_patch_embed is None:
                raise ValueError(f"this model has no video stream (config.modalities={list(self.config.modalities)})")
            video = _as_video(pixel_values, self.config).to(self.video_patch_embed.proj.weight.dtype)
            x = self.video_patch_embed(video) + self.video_position_embeddings.table
            tokens["video"] = x if self.video_modality_token is None else x + self.video_modality_token
        return tokens


def _layers(config: AVMAEConfig, depth: int, hidden_size=None, heads=None, intermediate=None, drop_path_rate=0.0):
    """A stack of ``depth`` layers (encoder width unless given); every AV-MAE stack takes the config's dropouts."""
    return transformer_layers(
        config,
        depth,
        hidden_size or config.hidden_size,
        heads or config.num_attention_heads,
        intermediate or config.intermediate_size,
        qkv_bias="qkv" if config.qkv_bias else "none",
        drop_path_rate=drop_path_rate,
        dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
    )


def _run_concatenated(layers: nn.ModuleList, norm: nn.LayerNorm, parts: dict[str, torch.Tensor]) -> dict:
    """One stack (+ LayerNorm) over the concatenated tokens of the modalities, split back per modality (Scenic
    ``Transformer_concat``, ``concat_and_encode``, ``concat_and_decode``). Scenic concatenates in its dict order;
    attention is permutation-equivariant and the position tables are already added, so the order is immaterial."""
    names = list(parts)
    joint, _, _ = run_layers(layers, torch.cat([parts[n] for n in names], dim=1))
    joint = norm(joint)
    return dict(zip(names, torch.split(joint, [parts[n].shape[1] for n in names], dim=1)))


class AVMAEPreTrainedModel(PreTrainedModel):
    # the class attributes transformers reads, declared per family as transformers' own models do (data, not logic)
    config: AVMAEConfig
    config_class = AVMAEConfig
    base_model_prefix = "avmae"
    main_input_name = "input_values"
    input_modalities = ("audio", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @torch.no_grad()
    def _init_weights(self, module):
        """MAE-style initialisation; mask and bottleneck tokens normal(``initializer_range``)."""
        if init_mae_weights(module):
            return
        std = self.config.initializer_range
        if isinstance(module, (AVMAEEmbeddings, AVMAEDecoder)):  # modality tokens: zeros (Scenic)
            for token in (module.audio_modality_token, module.video_modality_token):
                if token is not None:
                    init.zeros_(token)
        if isinstance(module, AVMAEDecoder):
            for token in (module.audio_mask_token, module.video_mask_token):
                if token is not None:
                    init.normal_(token, std=std)
        elif isinstance(module, AVMAEForAudioVisualClassification) and module.bottleneck is not None:
            init.normal_(module.bottleneck, std=std)


class AVMAEModel(AVMAEPreTrainedModel):
    """The AV-MAE pretraining encoder, with Scenic's encoder strategies (``config.encoder_strategy``):
    a ViT stack (+ LayerNorm) per modality, then optional joint fusion layers (+ LayerNorm) over the concatenated
    kept tokens (``separate_encoders_and_concat``, the released AudioSet models; ``separate_encoders``); or one stack
    (+ LayerNorm) over the concatenated tokens (``concat_and_encode``) or run on each modality (``same_encoder``)."""

    def __init__(self, config: AVMAEConfig):
        super().__init__(config)
        self.embeddings = AVMAEEmbeddings(config, modality_tokens=config.use_modality_tokens)
        eps = config.layer_norm_eps
        self.audio_layers = self.audio_norm = self.video_layers = self.video_norm = None
        self.fusion_layers = self.fusion_norm = None
        self.layers = self.norm = None
        if config.encoder_strategy in ("separate_encoders", "separate_encoders_and_concat"):
            depth, rate = config.modality_encoder_depth, config.drop_path_rate
            for name in config.modalities:  # registration order = config.modalities, as the released layout
                if name == "audio":
                    self.audio_layers = _layers(config, depth, drop_path_rate=rate)
                    self.audio_norm = nn.LayerNorm(config.hidden_size, eps=eps)
                else:
                    self.video_layers = _layers(config, depth, drop_path_rate=rate)
                    self.video_norm = nn.LayerNorm(config.hidden_size, eps=eps)
            if config.encoder_strategy == "separate_encoders_and_concat" and config.num_fusion_layers:
                self.fusion_layers = _layers(config, config.num_fusion_layers)
                self.fusion_norm = nn.LayerNorm(config.hidden_size, eps=eps)
        else:  # concat_and_encode, same_encoder: one stack for both modalities (Scenic "Transformer")
            self.layers = _layers(config, config.num_hidden_layers, drop_path_rate=config.drop_path_rate)
            self.norm = nn.LayerNorm(config.hidden_size, eps=eps)
        self.post_init()

    @staticmethod
    def mask_tokens(name: str, tokens: torch.Tensor, noise: torch.Tensor | None, ratio: float) -> MaskingIndices:
        """Random masking of one modality's ``[N, L, D]`` tokens (noise drawn when omitted; smallest kept)."""
        batch, length = tokens.shape[:2]
        if num_kept(length, ratio) < 1:
            raise ValueError(
                f"{name}_mask_ratio {ratio} keeps no {name} token of {length} (int({length} * (1 - {ratio})) = 0): "
                f"lower {name}_mask_ratio or give the {name} more tokens"
            )
        return mask_from_noise("random", noise, (length,), ratio, batch=batch, device=tokens.device, name=f"{name}_noise")

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        return_dict: bool | None = None,
    ) -> AVMAEModelOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` normalised log-mel spectrogram (AVMAEFeatureExtractor).
            pixel_values: ``[N, frames, C, H, W]`` video in [-1, 1] (AVMAEVideoProcessor).
            audio_noise, video_noise: ``[N, L]`` masking noise (smallest kept); masking runs for a modality when its
                noise or mask ratio is given (Scenic masks at training time only; this model encodes every token
                when neither is given).
            audio_mask_ratio, video_mask_ratio: override the config's ratios (Scenic
                ``token_mask_probability_dict``).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        tokens = self.embeddings(input_values, pixel_values)
        audio_masking = video_masking = None
        if "audio" in tokens and (audio_noise is not None or audio_mask_ratio is not None):
            ratio = config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio
            audio_masking = self.mask_tokens("audio", tokens["audio"], audio_noise, ratio)
            tokens["audio"] = gather_tokens(tokens["audio"], audio_masking.ids_keep)
        if "video" in tokens and (video_noise is not None or video_mask_ratio is not None):
            ratio = config.video_mask_ratio if video_mask_ratio is None else video_mask_ratio
            video_masking = self.mask_tokens("video", tokens["video"], video_noise, ratio)
            tokens["video"] = gather_tokens(tokens["video"], video_masking.ids_keep)

        if config.encoder_strategy in ("separate_encoders", "separate_encoders_and_concat"):
            encoded = {}
            if "audio" in tokens:
                encoded["audio"] = self.audio_norm(run_layers(self.audio_layers, tokens["audio"])[0])
            if "video" in tokens:
                encoded["video"] = self.video_norm(run_layers(self.video_layers, tokens["video"])[0])
            if self.fusion_layers is not None and len(encoded) == 2:
                encoded = _run_concatenated(self.fusion_layers, self.fusion_norm, encoded)
        elif config.encoder_strategy == "same_encoder":
            encoded = {name: self.norm(run_layers(self.layers, x)[0]) for name, x in tokens.items()}
        else:  # concat_and_encode
            encoded = _run_concatenated(self.layers, self.norm, tokens)

        audio, video = encoded.get("audio"), encoded.get("video")
        output = AVMAEModelOutput(
            last_hidden_state=torch.cat([x for x in (audio, video) if x is not None], dim=1),
            audio_last_hidden_state=audio,
            video_last_hidden_state=video,
            audio_mask=_mask_or_zeros(audio_masking, audio),
            video_mask=_mask_or_zeros(video_masking, video),
            audio_ids_restore=None if audio_masking is None else audio_masking.ids_restore,
            video_ids_restore=None if video_masking is None else video_masking.ids_restore,
            audio_ids_keep=None if audio_masking is None else audio_masking.ids_keep,
            video_ids_keep=None if video_masking is None else video_masking.ids_keep,
        )
        return output if return_dict else output.to_tuple()

    def get_audio_features(self, input_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled encoder output of the audio alone (no masking; the joint layers need both)."""
        return self(input_values=input_values, return_dict=True).audio_last_hidden_state.mean(dim=1)

    def get_video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` mean-pooled encoder output of the video alone (no masking; the joint layers need both)."""
        return self(pixel_values=pixel_values, return_dict=True).video_last_hidden_state.mean(dim=1)

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """l2-normalised ``([N, D] audio, [N, D] video)`` features; ``audio @ video.T`` ranks videos for each audio
        clip. Each modality is encoded on its own (fusion would mix the candidates being ranked), as MAViL's."""
        audio = nn.functional.normalize(self.get_audio_features(input_values), dim=-1)
        video = nn.functional.normalize(self.get_video_features(pixel_values), dim=-1)
        return audio, video


def _mask_or_zeros(masking: MaskingIndices | None, encoded: torch.Tensor | None) -> torch.Tensor | None:
    """The ``[N, L]`` mask of a masked modality, zeros for one encoded whole, None for one not given."""
    if encoded is None:
        return None
    if masking is None:
        return torch.zeros(encoded.shape[:2], device=encoded.device)
    return masking.mask


def _inpainting_input(other: torch.Tensor, mask_token: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenic ``unshuffle_tokens_inpainting`` for one modality: the other modality's ``[N, K, Dd]`` projected kept
    tokens at positions ``0..K-1``, this modality's mask token at ``K..length-1``. Returns the ``[N, length, Dd]``
    decoder input and the ``[N, length]`` loss mask (1 at the mask-token positions)."""
    batch, kept, dim = other.shape
    if kept > length:
        raise ValueError(
            f"use_inpainting places the other modality's {kept} kept tokens in front of this modality's {length} "
            "positions: there are more kept tokens than positions (raise that modality's mask ratio)"
        )
    fill = mask_token.to(other.dtype).expand(batch, length - kept, dim)
    mask = torch.cat([other.new_zeros(batch, kept), other.new_ones(batch, length - kept)], dim=1)
    return torch.cat([other, fill], dim=1), mask


class AVMAEDecoder(nn.Module):
    """The pretraining decoder: per-modality projection, mask token, fixed 1-D table (+ modality token) and output
    layer around the decoder stack(s) of ``config.decoder_strategy``: one stack run on each modality separately
    (``same_decoder``, the released models), one stack per modality (``separate_decoders``), or one stack over the
    concatenated tokens of both (``concat_and_decode``)."""

    def __init__(self, config: AVMAEConfig):
        super().__init__()
        self.config = config
        dim = config.decoder_hidden_size
        self.audio_mask_token = self.video_mask_token = None
        self.audio_modality_token = self.video_modality_token = None
        for name in config.modalities:  # registration order = config.modalities, as the released layout
            if name == "audio":
                self.audio_projection = nn.Linear(config.hidden_size, dim)
                self.audio_mask_token = nn.Parameter(torch.zeros(1, 1, dim))
                self.audio_position_embeddings = PositionTable(
                    partial(_sinusoid_table, dim), config.num_audio_patches
                )
                self.audio_pred = nn.Linear(dim, config.audio_patch_size**2)
                if config.use_modality_tokens:
                    self.audio_modality_token = nn.Parameter(torch.zeros(1, 1, dim))
            else:
                self.video_projection = nn.Linear(config.hidden_size, dim)
                self.video_mask_token = nn.Parameter(torch.zeros(1, 1, dim))
                self.video_position_embeddings = PositionTable(
                    partial(_sinusoid_table, dim), config.num_video_patches
                )
                self.video_pred = nn.Linear(dim, config.tubelet_size * config.video_patch_size**2 * config.num_channels)
                if config.use_modality_tokens:
                    self.video_modality_token = nn.Parameter(torch.zeros(1, 1, dim))
        shape = (dim, config.decoder_num_attention_heads, config.decoder_intermediate_size)
        self.layers = self.norm = None
        self.audio_layers = self.audio_norm = self.video_layers = self.video_norm = None
        if config.decoder_strategy == "separate_decoders":  # Scenic Decoder_{key}
            for name in config.modalities:
                if name == "audio":
                    self.audio_layers = _layers(config, config.decoder_num_hidden_layers, *shape)
                    self.audio_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
                else:
                    self.video_layers = _layers(config, config.decoder_num_hidden_layers, *shape)
                    self.video_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        else:  # same_decoder, concat_and_decode: one stack (Scenic Decoder)
            self.layers = _layers(config, config.decoder_num_hidden_layers, *shape)
            self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, encoded: AVMAEModelOutput) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Encoder outputs -> ``({modality: [N, L, patch values]}, {modality: [N, L] loss mask})``: predictions for
        every token and the tokens the loss scores (the encoder's masks; with inpainting, the mask-token positions)."""
        config = self.config
        audio, video = encoded.audio_last_hidden_state, encoded.video_last_hidden_state
        inputs, loss_masks = {}, {}
        if config.use_inpainting:
            if audio is None or video is None:
                raise ValueError("use_inpainting reconstructs each modality from the other: pass both modalities")
            inputs["audio"], loss_masks["audio"] = _inpainting_input(
                self.video_projection(video), self.audio_mask_token, config.num_audio_patches
            )
            inputs["video"], loss_masks["video"] = _inpainting_input(
                self.audio_projection(audio), self.video_mask_token, config.num_video_patches
            )
        else:
            if audio is not None:
                inputs["audio"] = restore_with_mask_tokens(
                    self.audio_projection(audio), self.audio_mask_token, encoded.audio_ids_restore
                )  # [N, La, Dd]
                loss_masks["audio"] = encoded.audio_mask
            if video is not None:
                inputs["video"] = restore_with_mask_tokens(
                    self.video_projection(video), self.video_mask_token, encoded.video_ids_restore
                )  # [N, Lv, Dd]
                loss_masks["video"] = encoded.video_mask
        if "audio" in inputs:
            inputs["audio"] = inputs["audio"] + self.audio_position_embeddings.table
            if self.audio_modality_token is not None:
                inputs["audio"] = inputs["audio"] + self.audio_modality_token
        if "video" in inputs:
            inputs["video"] = inputs["video"] + self.video_position_embeddings.table
            if self.video_modality_token is not None:
                inputs["video"] = inputs["video"] + self.video_modality_token

        if config.decoder_strategy == "same_decoder":
            decoded = {name: self.norm(run_layers(self.layers, x)[0]) for name, x in inputs.items()}
        elif config.decoder_strategy == "separate_decoders":
            decoded = {}
            if "audio" in inputs:
                decoded["audio"] = self.audio_norm(run_layers(self.audio_layers, inputs["audio"])[0])
            if "video" in inputs:
                decoded["video"] = self.video_norm(run_layers(self.video_layers, inputs["video"])[0])
        else:  # concat_and_decode
            decoded = _run_concatenated(self.layers, self.norm, inputs)

        predictions = {}
        if "audio" in decoded:
            predictions["audio"] = self.audio_pred(decoded["audio"])
        if "video" in decoded:
            predictions["video"] = self.video_pred(decoded["video"])
        return predictions, loss_masks


class AVMAEForPreTraining(AVMAEPreTrainedModel):
    """AV-MAE pretraining: mask each modality, encode the kept tokens, reconstruct the raw patches of each (or, with
    ``use_inpainting``, each modality's patches from the other's kept tokens)."""

    def __init__(self, config: AVMAEConfig):
        super().__init__(config)
        self.avmae = AVMAEModel(config)
        self.decoder = AVMAEDecoder(config)
        self.post_init()

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """Output fields whose weighted sum is ``loss`` (what a training script logs per term)."""
        return tuple(f"{name}_loss" for name in ("audio", "video") if name in self.config.modalities)

    def get_retrieval_embeddings(self, input_values: torch.Tensor, pixel_values: torch.Tensor):
        """See :meth:`AVMAEModel.get_retrieval_embeddings` (AV-MAE has no contrastive projections)."""
        return self.avmae.get_retrieval_embeddings(input_values, pixel_values)

    def targets(self, name: str, values: torch.Tensor) -> torch.Tensor:
        """Patches to regress (Scenic ``get_spectogram_targets`` / ``extract_tubelets_from_video``)."""
        config = self.config
        if name == "audio":
            spectrogram = _as_spectrogram(values, config)
            time, freq = config.audio_grid_size
            p = config.audio_patch_size
            spectrogram = spectrogram[..., : time * p, : freq * p]  # the frames outside the patch grid
            patches = patchify_2d(spectrogram, p)  # [N, La, p*p], values (time, mel)
        else:
            patches = patchify_3d(_as_video(values, config), config.tubelet_size, config.video_patch_size)
        return normalize_per_patch(patches) if config.norm_pix_loss else patches

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        video_noise: torch.Tensor | None = None,
        audio_mask_ratio: float | None = None,
        video_mask_ratio: float | None = None,
        return_dict: bool | None = None,
    ) -> AVMAEForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values, pixel_values: as :class:`AVMAEModel` (the modalities of ``config.modalities``).
            audio_noise, video_noise: ``[N, L]`` noise pinning the masks (drawn when omitted).
            audio_mask_ratio, video_mask_ratio: override the config's ratios for this call.
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        encoded = self.avmae(
            input_values,
            pixel_values,
            audio_noise,
            video_noise,
            config.audio_mask_ratio if audio_mask_ratio is None else audio_mask_ratio,
            config.video_mask_ratio if video_mask_ratio is None else video_mask_ratio,
            return_dict=True,
        )
        predictions, loss_masks = self.decoder(encoded)
        loss, audio_loss, video_loss = 0.0, None, None
        if "audio" in predictions:
            pred = predictions["audio"]
            audio_loss = masked_mse(pred, self.targets("audio", input_values).to(pred.dtype), loss_masks["audio"])
            loss = loss + config.audio_loss_weight * audio_loss
        if "video" in predictions:
            pred = predictions["video"]
            video_loss = masked_mse(pred, self.targets("video", pixel_values).to(pred.dtype), loss_masks["video"])
            loss = loss + config.video_loss_weight * video_loss
        output = AVMAEForPreTrainingOutput(
            loss=loss,
            audio_loss=audio_loss,
            video_loss=video_loss,
            audio_logits=predictions.get("audio"),
            video_logits=predictions.get("video"),
            audio_mask=loss_masks.get("audio"),
            video_mask=loss_masks.get("video"),
            audio_ids_restore=encoded.audio_ids_restore,
            video_ids_restore=encoded.video_ids_restore,
        )
        return output if return_dict else output.to_tuple()


class AVMAEForAudioVisualClassification(AVMAEPreTrainedModel):
    """The AV-MAE fine-tuning model (Scenic ``mbt.MBT`` with bottlenecks): one ViT stream per modality; from layer
    ``config.bottleneck_fusion_layer`` on, each stream attends over ``[its tokens, bottleneck tokens]`` and the
    bottleneck outputs are averaged over the streams. Final LayerNorm, mean pooling per modality, one classifier,
    logits averaged over modalities (what the official model returns at inference).

    A model fine-tuned on both modalities needs both (the official model has no missing-modality mode).
    """

    def __init__(self, config: AVMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embeddings = AVMAEEmbeddings(config)
        depth, rate = config.num_hidden_layers, config.drop_path_rate
        self.audio_layers = self.video_layers = None
        for name in config.modalities:  # registration order = config.modalities, as the released layout
            if name == "audio":
                self.audio_layers = _layers(config, depth, drop_path_rate=rate)
            else:
                self.video_layers = _layers(config, depth, drop_path_rate=rate)
        fused = len(config.modalities) > 1 and config.bottleneck_fusion_layer < config.num_hidden_layers
        self.bottleneck = (
            nn.Parameter(torch.zeros(1, config.num_bottleneck_tokens, config.hidden_size)) if fused else None
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def stream_layer(self, name: str, index: int) -> nn.Module:
        """Layer ``index`` of one modality's stream."""
        return self.audio_layers[index] if name == "audio" else self.video_layers[index]

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_values: ``[N, T, F]`` normalised log-mel spectrogram (for models with an audio stream).
            pixel_values: ``[N, frames, C, H, W]`` video in [-1, 1] (for models with a video stream).
            labels: class indices ``[N]`` or multi-hot ``[N, num_labels]`` (AudioSet:
                ``problem_type="multi_label_classification"``).
        """
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        given = {"audio": input_values is not None, "video": pixel_values is not None}
        missing = [m for m in config.modalities if not given[m]]
        if missing:
            raise ValueError(
                f"this model was fine-tuned on {list(config.modalities)} and needs all of them; {missing[0]} is "
                "missing (the official bottleneck model has no missing-modality mode)"
            )
        tokens = self.embeddings(
            input_values if "audio" in config.modalities else None,
            pixel_values if "video" in config.modalities else None,
        )
        names = [m for m in ("video", "audio") if m in tokens]  # official modality_fusion order: rgb, spectrogram
        bottleneck = self.bottleneck.expand(tokens[names[0]].shape[0], -1, -1) if self.bottleneck is not None else None
        for index in range(config.num_hidden_layers):
            if bottleneck is None or index < config.bottleneck_fusion_layer:
                for name in names:
                    tokens[name] = self.stream_layer(name, index)(tokens[name])[0]
                continue
            outputs = []
            for name in names:
                length = tokens[name].shape[1]
                out = self.stream_layer(name, index)(torch.cat([tokens[name], bottleneck], dim=1))[0]
                tokens[name], _ = out[:, :length], outputs.append(out[:, length:])
            bottleneck = torch.stack(outputs, dim=-1).mean(dim=-1)
        logits = torch.stack(
            [self.classifier(self.dropout(self.norm(tokens[name]).mean(dim=1))) for name in names], dim=0
        ).mean(dim=0)
        check_head_matches_labels(config, logits)
        loss = classification_loss(config, logits, labels) if labels is not None else None
        output = SequenceClassifierOutput(loss=loss, logits=logits)
        return output if return_dict else output.to_tuple()


__all__ = [
    "AVMAEForAudioVisualClassification",
    "AVMAEForPreTraining",
    "AVMAEModel",
    "AVMAEPreTrainedModel",
]
