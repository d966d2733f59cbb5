"""AV-MAE configuration."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import NON_NEGATIVE, UNIT_INTERVAL, check_divisible, check_ranges

MODALITIES = ("audio", "video")
# Scenic ``ViViTMultiMaskedAutoencoder`` option values (``config.model.encoder_strategy`` / ``decoder_strategy``)
ENCODER_STRATEGIES = ("separate_encoders", "separate_encoders_and_concat", "concat_and_encode", "same_encoder")
DECODER_STRATEGIES = ("same_decoder", "separate_decoders", "concat_and_decode")


@strict
class AVMAEConfig(PreTrainedConfig):
    r"""Configuration of AV-MAE ("Audiovisual Masked Autoencoders", Georgescu et al., ICCV 2023), as released in
    google-research/scenic ``projects/av_mae`` (Flax).

    The defaults describe the released AudioSet ViT-L models: a 1000 x 128 log-mel spectrogram (16x16 patches, 62 x 8
    = 496 time-major tokens: the last 8 frames fall outside the "VALID" patch grid) and 16 RGB frames (2x16x16
    tubelets, 8 x 14 x 14 = 1568 tokens); fixed 1-D sinusoidal position tables over each modality's flattened tokens;
    no cls token.

    Input:
        num_mel_bins (128), max_length (1000): spectrogram size (mel bins, frames).
        audio_patch_size (16): square spectrogram patches.
        num_frames (16; the fine-tuned models take 32), image_size (224), video_patch_size (16), tubelet_size (2),
        num_channels (3). ``pixel_values`` are ``[batch, frames, channels, height, width]``.
        modalities (`list[str]`, both): the streams the checkpoint has (audio-only / video-only models exist).
    Encoder (pretraining, ``ViViTMultiMaskedAutoencoder``):
        hidden_size (1024), num_attention_heads (16), intermediate_size (4096), num_hidden_layers (24).
        encoder_strategy (`"separate_encoders_and_concat"`): how the encoder combines the modalities, with the names
            and meaning of Scenic's ``encoder_strategy`` (the paper's encoder ablation):
            - ``"separate_encoders_and_concat"`` (mid fusion, the AudioSet models): each modality is encoded by its
              own ``num_hidden_layers - num_fusion_layers`` layers, then ``num_fusion_layers`` joint layers run on
              the concatenated tokens; ``num_fusion_layers=0`` leaves the joint stack out, i.e. separate encoders
              (how the VGGSound models, Scenic ``separate_encoders``, are converted);
            - ``"separate_encoders"`` (late fusion): ``num_hidden_layers`` layers per modality, no joint layers;
            - ``"concat_and_encode"`` (early fusion): one stack of ``num_hidden_layers`` layers over the
              concatenated kept tokens of both modalities;
            - ``"same_encoder"`` (shared): one stack of ``num_hidden_layers`` layers whose weights run on each
              modality separately (the patch embeddings stay per modality).
            Every stack ends with its own LayerNorm (Scenic ``Encoder(normalise_output=True)``).
        num_fusion_layers (2): joint layers of ``"separate_encoders_and_concat"`` (Scenic ``fusion_layers``; unused
            by the other strategies).
        use_modality_tokens (False): a learned vector per modality (zeros at init) added to its tokens after the
            position table, in the encoder and in the decoder (Scenic ``use_modality_tokens``).
        hidden_act (`"gelu_pytorch_tanh"`: Flax ``nn.gelu`` is the tanh approximation), layer_norm_eps (1e-6, Flax
        default), qkv_bias, hidden_dropout_prob, attention_probs_dropout_prob, drop_path_rate.
    Pretraining:
        decoder_hidden_size (512), decoder_num_hidden_layers (4), decoder_num_attention_heads (8),
        decoder_intermediate_size (2048): decoder shape; every decoder has a per-modality projection, mask token,
            fixed 1-D table and output layer.
        decoder_strategy (`"same_decoder"`): Scenic's ``decoder_strategy``: ``"same_decoder"`` (the released models)
            runs one decoder stack on each modality separately; ``"separate_decoders"`` gives each modality its own
            stack; ``"concat_and_decode"`` runs one stack over the concatenated tokens of both modalities (joint
            decoding: the tokens of the two modalities attend to each other).
        use_inpainting (False): Scenic's modality inpainting (``use_inpainting``): each modality is reconstructed
            from the *other* modality's kept tokens. Its decoder input is the other modality's projected encoder
            outputs placed at the first positions, followed by its own mask token up to its length; the loss covers
            the positions after those (both modalities are still masked and encoded as usual). Needs both
            modalities, each with at least as many tokens as the other keeps.
        audio_mask_ratio (0.7), video_mask_ratio (0.9): random masking per modality (VGGSound: 0.5 / 0.9).
        audio_loss_weight, video_loss_weight (0.5): weights of the per-modality reconstruction MSE (masked tokens,
            averaged over the patch values, i.e. divided by the output dimension).
        norm_pix_loss (False): the released models regress raw patches.
    Fine-tuning (MBT, ``mbt_multilabel_classification``):
        bottleneck_fusion_layer (18; VGGSound 16): from this layer on, the modality streams exchange information
            only through ``num_bottleneck_tokens`` (4) shared bottleneck tokens (``>= num_hidden_layers``: never).
        Each modality has its own ``num_hidden_layers`` layers; a final LayerNorm, mean pooling per modality, one
        linear classifier applied to each and the logits averaged over modalities.
        classifier_dropout (0.0).
        initializer_range (0.02): std of mask tokens and bottleneck tokens at init.
    """

    model_type = "maskedav_avmae"

    num_mel_bins: int = 128
    max_length: int = 1000
    audio_patch_size: int = 16
    num_frames: int = 16
    image_size: int = 224
    video_patch_size: int = 16
    tubelet_size: int = 2
    num_channels: int = 3
    modalities: list[str] | tuple[str, ...] = MODALITIES
    hidden_size: int = 1024
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    encoder_strategy: Literal[
        "separate_encoders", "separate_encoders_and_concat", "concat_and_encode", "same_encoder"
    ] = "separate_encoders_and_concat"
    num_fusion_layers: int = 2
    use_modality_tokens: bool = False
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 4
    decoder_num_attention_heads: int = 8
    decoder_intermediate_size: int = 2048
    decoder_strategy: Literal["same_decoder", "separate_decoders", "concat_and_decode"] = "same_decoder"
    use_inpainting: bool = False
    audio_mask_ratio: float = 0.7
    video_mask_ratio: float = 0.9
    audio_loss_weight: float = 0.5
    video_loss_weight: float = 0.5
    norm_pix_loss: bool = False
    bottleneck_fusion_layer: int = 18
    num_bottleneck_tokens: int = 4
    classifier_dropout: float = 0.0

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # ``custom_pipelines`` in an --export_remote_code folder's config.json serves machines without hf_maskedav
        # (trust_remote_code=True). Here, the package's registered audio-video-classification task serves the folder
        # with no trust_remote_code, so the entry is dropped (the flattened copy of this class keeps it).
        if cls.__module__.startswith("hf_maskedav."):
            config_dict = {key: value for key, value in config_dict.items() if key != "custom_pipelines"}
        return super().from_dict(config_dict, **kwargs)

    @property
    def modality_encoder_depth(self) -> int:
        """Layers of each per-modality encoder stack (0 when one stack serves both modalities)."""
        if self.encoder_strategy == "separate_encoders_and_concat":
            return self.num_hidden_layers - self.num_fusion_layers
        if self.encoder_strategy == "separate_encoders":
            return self.num_hidden_layers
        return 0

    # token grids: the same formulas as MAViLConfig's (each config states its own grid: the models' contract)
    @property
    def audio_grid_size(self) -> tuple[int, int]:
        """Audio token grid ``(time, freq)`` (time-major tokens; "VALID" patches drop a partial last row)."""
        return (self.max_length // self.audio_patch_size, self.num_mel_bins // self.audio_patch_size)

    @property
    def video_grid_size(self) -> tuple[int, int, int]:
        side = self.image_size // self.video_patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    @property
    def num_audio_patches(self) -> int:
        time, freq = self.audio_grid_size
        return time * freq

    @property
    def num_video_patches(self) -> int:
        frames, height, width = self.video_grid_size
        return frames * height * width

    def validate_architecture(self):
        """Checked at construction: sizes and combinations the model cannot be built with."""
        check_divisible(
            self, ("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")
        )
        if self.hidden_size % 2 or self.decoder_hidden_size % 2:
            raise ValueError("hidden_size and decoder_hidden_size must be even (1-D sinusoidal position table)")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be a non-empty list of distinct names among {list(MODALITIES)}")
        if self.max_length < self.audio_patch_size or self.num_mel_bins < self.audio_patch_size:
            raise ValueError("the spectrogram is smaller than one patch")
        if self.num_frames < self.tubelet_size or self.image_size < self.video_patch_size:
            raise ValueError("the video is smaller than one tubelet")
        if self.encoder_strategy not in ENCODER_STRATEGIES:
            raise ValueError(f"encoder_strategy must be one of {list(ENCODER_STRATEGIES)}, got {self.encoder_strategy!r}")
        if self.decoder_strategy not in DECODER_STRATEGIES:
            raise ValueError(f"decoder_strategy must be one of {list(DECODER_STRATEGIES)}, got {self.decoder_strategy!r}")
        if self.use_inpainting and len(self.modalities) != 2:
            raise ValueError("use_inpainting reconstructs each modality from the other: it needs both modalities")
        if not 0 <= self.num_fusion_layers <= self.num_hidden_layers:
            raise ValueError(f"num_fusion_layers must be in [0, num_hidden_layers], got {self.num_fusion_layers}")
        check_ranges(
            self, [(("bottleneck_fusion_layer",), NON_NEGATIVE), (("audio_mask_ratio", "video_mask_ratio"), UNIT_INTERVAL)]
        )


__all__ = ["AVMAEConfig"]
