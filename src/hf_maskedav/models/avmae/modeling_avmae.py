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
    FixedPositionTable,
    PatchEmbed2D,
    TransformerLayer,
    TubeletEmbed3D,
    gather_tokens,
    masked_mse,
    normalize_per_patch,
    num_kept,
    patchify_2d,
    patchify_3d,
    random_masking,
    restore_with_mask_tokens,
    run_layers,
    sinusoid_1d_table,
)
from ...modeling_utils import (
    check_head_matches_labels,
    check_model_input,
    classification_loss,
    init_mae_weights,
)
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
    if not isinstance(input_values, torch.Tensor):
        raise TypeError(f"input_values must be a torch.Tensor, got {type(input_values).__name__}")
    if input_values.dim() == 3:
        input_values = input_values.unsqueeze(1)
    if input_values.dim() != 4 or input_values.shape[1] != 1:
        raise ValueError(
            f"input_values must have shape (batch, frames, mel_bins), got {tuple(input_values.shape)}; use "
            "AVMAEFeatureExtractor to make them"
        )
    frames, mel_bins = input_values.shape[-2:]
    if (frames, mel_bins) != (config.max_length, config.num_mel_bins):
        raise ValueError(
            f"input_values is {frames} frames x {mel_bins} mel bins; the model's position tables are built for "
            f"{config.max_length} x {config.num_mel_bins} (pad or crop the spectrogram; AVMAEFeatureExtractor does)"
        )
    if not input_values.is_floating_point():
        raise TypeError(f"input_values must be a floating-point tensor, got {input_values.dtype}")
    check_model_input(input_values, "input_values")
    return input_values


def _as_video(pixel_values: torch.Tensor, config: AVMAEConfig) -> torch.Tensor:
    """``[N, T, C, H, W]`` (video-processor layout) -> ``[N, C, T, H, W]`` for the tubelet convolution."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
    expected = (config.num_frames, config.num_channels, config.image_size, config.image_size)
    if pixel_values.dim() != 5 or tuple(pixel_values.shape[1:]) != expected:
        raise ValueError(
            f"pixel_values must have shape (batch, {', '.join(map(str, expected))}) (frames, channels, height, "
            f"width), got {tuple(pixel_values.shape)}; use AVMAEVideoProcessor to make them"
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values must be a floating-point tensor (normalised pixels), got {pixel_values.dtype}")
    check_model_input(pixel_values, "pixel_values")
    return pixel_values.transpose(1, 2)


class AVMAEEmbeddings(nn.Module):
    """Spectrogram patches and video tubelets with fixed 1-D sinusoidal tables (Scenic ``tokenize_input`` +
    ``add_positional_embeddings('sinusoidal_1d')``)."""

    def __init__(self, config: AVMAEConfig):
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.audio_patch_embed = None
        self.video_patch_embed = None
        if "audio" in config.modalities:
            self.audio_patch_embed = PatchEmbed2D(1, dim, config.audio_patch_size)
            self.audio_position_embeddings = FixedPositionTable(partial(_sinusoid_table, dim), config.num_audio_patches)
        if "video" in config.modalities:
            self.video_patch_embed = TubeletEmbed3D(
                config.num_channels, dim, config.tubelet_size, config.video_patch_size
            )
            self.video_position_embeddings = FixedPositionTable(partial(_sinusoid_table, dim), config.num_video_patches)

    def forward(self, input_values=None, pixel_values=None) -> dict[str, torch.Tensor]:
        """``{"audio": [N, La, D], "video": [N, Lv, D]}`` for the modalities given."""
        tokens = {}
        for name, values, convert in (("audio", input_values, _as_spectrogram), ("video", pixel_values, _as_video)):
            if values is None:
                continue
            embed = getattr(self, f"{name}_patch_embed")
            if embed is None:
                raise ValueError(f"this model has no {name} stream (config.modalities={list(self.config.modalities)})")
            x = embed(convert(values, self.config).to(embed.proj.weight.dtype))
            tokens[name] = x + getattr(self, f"{name}_position_embeddings").table
        if not tokens:
            raise ValueError("pass input_values (audio), pixel_values (video) or both")
        return tokens


def _layers(config: AVMAEConfig, depth: int, hidden_size=None, heads=None, intermediate=None, drop_path=None):
    drop_path = drop_path if drop_path is not None else [0.0] * depth
    return nn.ModuleList(
        TransformerLayer(
            config,
            hidden_size or config.hidden_size,
            heads or config.num_attention_heads,
            intermediate or config.intermediate_size,
            qkv_bias="qkv" if config.qkv_bias else "none",
            layer_norm_eps=config.layer_norm_eps,
            hidden_act=config.hidden_act,
            drop_path=drop_path[i],
            dropout=config.hidden_dropout_prob,
            attention_dropout=config.attention_probs_dropout_prob,
        )
        for i in range(depth)
    )


class AVMAEPreTrainedModel(PreTrainedModel):
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
        if isinstance(module, AVMAEDecoder):
            for name in ("audio_mask_token", "video_mask_token"):
                if getattr(module, name, None) is not None:
                    init.normal_(getattr(module, name), std=std)
        elif isinstance(module, AVMAEForAudioVisualClassification) and module.bottleneck is not None:
            init.normal_(module.bottleneck, std=std)


class AVMAEModel(AVMAEPreTrainedModel):
    """The AV-MAE pretraining encoder: a ViT stack (+ LayerNorm) per modality, then optional joint fusion layers
    (+ LayerNorm) over the concatenated kept tokens (Scenic ``separate_encoders_and_concat``)."""

    def __init__(self, config: AVMAEConfig):
        super().__init__(config)
        self.embeddings = AVMAEEmbeddings(config)
        depth = config.num_hidden_layers - config.num_fusion_layers
        drop_path = torch.linspace(0, config.drop_path_rate, max(depth, 1)).tolist()
        eps = config.layer_norm_eps
        for name in config.modalities:
            setattr(self, f"{name}_layers", _layers(config, depth, drop_path=drop_path))
            setattr(self, f"{name}_norm", nn.LayerNorm(config.hidden_size, eps=eps))
        self.fusion_layers = _layers(config, config.num_fusion_layers) if config.num_fusion_layers else None
        self.fusion_norm = nn.LayerNorm(config.hidden_size, eps=eps) if config.num_fusion_layers else None
        self.post_init()

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
                noise or mask ratio is given.
            audio_mask_ratio, video_mask_ratio: override the config's ratios.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        tokens = self.embeddings(input_values, pixel_values)
        masks = {}
        for name, noise, ratio, default in (
            ("audio", audio_noise, audio_mask_ratio, self.config.audio_mask_ratio),
            ("video", video_noise, video_mask_ratio, self.config.video_mask_ratio),
        ):
            if name not in tokens:
                continue
            x = tokens[name]
            if noise is None and ratio is None:
                masks[name] = None
                continue
            if noise is None:
                noise = torch.rand(x.shape[0], x.shape[1], device=x.device)
            if noise.shape != x.shape[:2]:
                raise ValueError(f"{name}_noise must have shape {tuple(x.shape[:2])}, got {tuple(noise.shape)}")
            ratio = default if ratio is None else ratio
            if num_kept(x.shape[1], ratio) < 1:
                raise ValueError(
                    f"{name}_mask_ratio {ratio} keeps no {name} token of {x.shape[1]} (int({x.shape[1]} * "
                    f"(1 - {ratio})) = 0): lower {name}_mask_ratio or give the {name} more tokens"
                )
            masks[name] = random_masking(noise, ratio)
            tokens[name] = gather_tokens(x, masks[name].ids_keep)

        encoded = {}
        for name, x in tokens.items():
            x, _, _ = run_layers(getattr(self, f"{name}_layers"), x)
            encoded[name] = getattr(self, f"{name}_norm")(x)
        if self.fusion_layers is not None and len(encoded) == 2:
            # Scenic concatenates in its dict order; attention is permutation-equivariant, so the order is immaterial.
            names = list(encoded)
            lengths = [encoded[n].shape[1] for n in names]
            joint, _, _ = run_layers(self.fusion_layers, torch.cat([encoded[n] for n in names], dim=1))
            joint = self.fusion_norm(joint)
            encoded = dict(zip(names, torch.split(joint, lengths, dim=1)))

        def get(name, field):
            masking = masks.get(name)
            if masking is None:
                if field == "mask" and name in encoded:
                    return torch.zeros(encoded[name].shape[:2], device=encoded[name].device)
                return None
            return getattr(masking, field)

        output = AVMAEModelOutput(
            last_hidden_state=torch.cat([encoded[n] for n in ("audio", "video") if n in encoded], dim=1),
            audio_last_hidden_state=encoded.get("audio"),
            video_last_hidden_state=encoded.get("video"),
            audio_mask=get("audio", "mask"),
            video_mask=get("video", "mask"),
            audio_ids_restore=get("audio", "ids_restore"),
            video_ids_restore=get("video", "ids_restore"),
            audio_ids_keep=get("audio", "ids_keep"),
            video_ids_keep=get("video", "ids_keep"),
        )
        return output if return_dict else output.to_tuple()


class AVMAEDecoder(nn.Module):
    """One decoder stack run on each modality separately (Scenic ``same_decoder``), with per-modality projection,
    mask token, fixed 1-D table and output layer."""

    def __init__(self, config: AVMAEConfig):
        super().__init__()
        dim = config.decoder_hidden_size
        patch_dims = {
            "audio": config.audio_patch_size**2,
            "video": config.tubelet_size * config.video_patch_size**2 * config.num_channels,
        }
        lengths = {"audio": config.num_audio_patches, "video": config.num_video_patches}
        self.audio_mask_token = self.video_mask_token = None
        for name in config.modalities:
            setattr(self, f"{name}_projection", nn.Linear(config.hidden_size, dim))
            setattr(self, f"{name}_mask_token", nn.Parameter(torch.zeros(1, 1, dim)))
            setattr(self, f"{name}_position_embeddings", FixedPositionTable(partial(_sinusoid_table, dim), lengths[name]))
            setattr(self, f"{name}_pred", nn.Linear(dim, patch_dims[name]))
        self.layers = _layers(
            config, config.decoder_num_hidden_layers, dim, config.decoder_num_attention_heads,
            config.decoder_intermediate_size,
        )
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, name: str, hidden: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """``[N, K, D]`` kept tokens of one modality -> ``[N, L, patch values]`` predictions for every token."""
        x = getattr(self, f"{name}_projection")(hidden)
        x = restore_with_mask_tokens(x, getattr(self, f"{name}_mask_token"), ids_restore)  # [N, L, Dd]
        x = x + getattr(self, f"{name}_position_embeddings").table
        x, _, _ = run_layers(self.layers, x)
        return getattr(self, f"{name}_pred")(self.norm(x))


class AVMAEForPreTraining(AVMAEPreTrainedModel):
    """AV-MAE pretraining: mask each modality, encode the kept tokens, reconstruct the raw patches of each."""

    def __init__(self, config: AVMAEConfig):
        super().__init__(config)
        self.avmae = AVMAEModel(config)
        self.decoder = AVMAEDecoder(config)
        self.post_init()

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
            audio_mask_ratio, video_mask_ratio: override the config's ratios.
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
        values = {"audio": input_values, "video": pixel_values}
        weights = {"audio": config.audio_loss_weight, "video": config.video_loss_weight}
        logits, losses, loss = {}, {}, 0.0
        for name in ("audio", "video"):
            hidden = getattr(encoded, f"{name}_last_hidden_state")
            if hidden is None:
                continue
            pred = self.decoder(name, hidden, getattr(encoded, f"{name}_ids_restore"))
            logits[name] = pred
            losses[name] = masked_mse(pred, self.targets(name, values[name]).to(pred.dtype), getattr(encoded, f"{name}_mask"))
            loss = loss + weights[name] * losses[name]
        output = AVMAEForPreTrainingOutput(
            loss=loss,
            audio_loss=losses.get("audio"),
            video_loss=losses.get("video"),
            audio_logits=logits.get("audio"),
            video_logits=logits.get("video"),
            audio_mask=encoded.audio_mask,
            video_mask=encoded.video_mask,
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
        drop_path = torch.linspace(0, config.drop_path_rate, max(config.num_hidden_layers, 1)).tolist()
        for name in config.modalities:
            setattr(self, f"{name}_layers", _layers(config, config.num_hidden_layers, drop_path=drop_path))
        fused = len(config.modalities) > 1 and config.bottleneck_fusion_layer < config.num_hidden_layers
        self.bottleneck = (
            nn.Parameter(torch.zeros(1, config.num_bottleneck_tokens, config.hidden_size)) if fused else None
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

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
                    tokens[name] = getattr(self, f"{name}_layers")[index](tokens[name])[0]
                continue
            outputs = []
            for name in names:
                length = tokens[name].shape[1]
                out = getattr(self, f"{name}_layers")[index](torch.cat([tokens[name], bottleneck], dim=1))[0]
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
