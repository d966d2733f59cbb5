"""MAViL configuration."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config_checks import NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, check_divisible, check_ranges

CLASSIFIER_HEADS = ("audio_visual", "audio", "video")

# Switches MAViLConfig once had to emulate Georgescu et al.'s audiovisual MAE, with the value that is MAViL. Saved
# configs still carry them: MAViL's value is dropped on load, any other value is an AV-MAE model (AVMAEConfig).
AVMAE_SWITCHES = {
    "decoder_type": "separate",
    "inpainting": "none",
    "share_modality_encoders": False,
    "use_cls_token": True,
    "use_modality_embeddings": False,
}


# the range checks of validate_architecture: (fields, (test, what the error says they must be))
_FIELD_RANGES = (
    (("audio_num_hidden_layers", "video_num_hidden_layers", "fusion_num_hidden_layers"), NON_NEGATIVE),
    (("audio_mask_ratio", "video_mask_ratio", "mask_time_prob", "mask_freq_prob", "mask_video_prob"), UNIT_INTERVAL),
    (("inter_contrastive_temperature", "intra_contrastive_temperature"), POSITIVE),
    (
        ("audio_reconstruction_weight", "video_reconstruction_weight", "inter_contrastive_weight", "intra_contrastive_weight"),
        NON_NEGATIVE,
    ),
    (("teacher_num_target_layers",), (lambda v: v >= 1, ">= 1")),
)


@strict
class MAViLConfig(PreTrainedConfig):
    r"""Configuration of MAViL ("MAViL: Masked Audio-Video Learners", Huang et al., NeurIPS 2023). Georgescu et al.'s
    "Audiovisual Masked Autoencoders" (ICCV 2023) has its own family, :class:`~hf_maskedav.AVMAEConfig`; the switches
    MAViLConfig once had for it (``decoder_type`` shared/joint, ``inpainting``, ``share_modality_encoders``,
    ``use_cls_token=False``, ``use_modality_embeddings``) are refused with a pointer there.

    The defaults describe MAViL-Base as far as the paper and the authors' encoder code (roger-tseng/av-superb,
    ``upstream_models/mavil/``) fix it: two ViT-B encoders (audio: 1024x128 fbank, 16x16 patches, 512 tokens; video:
    8 frames of 224x224, 2x16x16 tubelets, 784 tokens), one cls token per modality, 2 fusion layers over the
    concatenated ``[cls_a, audio, cls_v, video]`` tokens, no final LayerNorm, 80% masking per modality, one 8-layer
    512-wide decoder per modality. Fields marked *(our choice)* are details neither the paper text we could read nor
    the authors' code fixes; they are documented in ``docs/mavil.md``.

    Audio input:
        num_mel_bins (`int`, 128), max_length (`int`, 1024): fbank size (mel bins, frames).
        audio_patch_size (`int`, 16): square, non-overlapping spectrogram patches (time-major tokens).
        audio_position_table (`"audiomae"` or `"time_major"`, `"audiomae"`): the fixed 2-D sin-cos table of the audio
            tokens. `"audiomae"` reproduces Audio-MAE's table (built on a swapped freq x time grid), so encoders
            initialised from our Audio-MAE checkpoints keep the positions they were trained with; `"time_major"` is
            the table the av-superb helper ``get_2d_sincos_pos_embed_flexible`` builds for the (time, freq) grid.
            Which one the released MAViL checkpoint used is unknown *(our choice)*; the converter measures both.
    Video input:
        num_frames (`int`, 8), image_size (`int`, 224), video_patch_size (`int`, 16), tubelet_size (`int`, 2),
        num_channels (`int`, 3). ``pixel_values`` are ``[batch, frames, channels, height, width]`` as transformers
        video processors make them. The video table is the fixed 3-D sin-cos table of the authors' code (a quarter of
        the channels for time, the rest a 2-D spatial code).
    Position tables:
        position_tables (`"fixed"` or `"stored"`, `"fixed"`): `"fixed"` builds the encoders' sin-cos tables from the
            config as non-persistent buffers; `"stored"` keeps them as persistent buffers in the state dict, so a
            checkpoint's own values are used as they are (the conversion of the authors' checkpoints sets it: their
            tables are stored values whose grid layout is unknown).
    Encoders:
        hidden_size (768), num_attention_heads (12), intermediate_size (3072): shared by every encoder layer (the
            fusion layers see both modalities' tokens, so widths must agree).
        audio_num_hidden_layers (12), video_num_hidden_layers (12): modality-specific layers.
        fusion_num_hidden_layers (2): joint layers over the concatenated tokens (the authors' fine-tuned models use 3;
            0 = two separate encoders side by side).
        hidden_act, layer_norm_eps (1e-6), qkv_bias, hidden_dropout_prob, attention_probs_dropout_prob,
        drop_path_rate: as in ViT. Stochastic depth rises linearly within each stack (the authors' inference code
            applies it to the audio stack only; at inference it is inactive either way).
        initializer_range (0.02): std of the cls/mask-token init.
    Pretraining (stage 1: masked reconstruction + contrastive; stage 2: teacher features):
        audio_mask_ratio (0.8), video_mask_ratio (0.8): unstructured random masking per modality from ``noise``.
        decoder_hidden_size (512), decoder_num_hidden_layers (8), decoder_num_attention_heads (16),
        decoder_intermediate_size (2048): shape of each modality's decoder (MAViL paper: one per modality).
            Decoders use global attention and fixed sin-cos tables at decoder width *(our choice)*.
        audio_norm_pix_loss, video_norm_pix_loss (`bool`, True): per-patch normalised pixel targets *(our choice,
            as Audio-MAE and MAE-ST)*.
        audio_reconstruction_weight, video_reconstruction_weight (1.0): weights of the reconstruction terms.
        inter_contrastive_weight (0.01), intra_contrastive_weight (0.01): weights of the audio<->video InfoNCE and of
            the two-masked-views InfoNCE per modality; 0 switches a term off *(our choice of
            values: CAV-MAE's 0.01)*.
        inter_contrastive_temperature (0.05), intra_contrastive_temperature (0.05): InfoNCE temperatures *(our
            choice: CAV-MAE's 0.05)*.
        contrastive_symmetric (`bool`, True): average both directions of each InfoNCE.
        contrastive_features (`"encoder"` or `"fusion"`, `"encoder"`): pool the modality-specific encoder outputs
            (before fusion, so the inter-modal task cannot be solved by attention across modalities) or the
            modality parts of the fusion output *(our choice)*. Pooling = mean over patch tokens (cls excluded).
        contrastive_projection_dim (`int` or None, None): a linear projection of the pooled features before the
            InfoNCE and for retrieval (None: none, CAV-MAE style) *(our choice)*.
        reconstruction_target (`"pixels"` or `"teacher"`, `"pixels"`): stage 1 (:class:`MAViLForPreTraining`)
            reconstructs raw spectrogram/pixel patches; stage 2 (:class:`MAViLForStage2PreTraining`) reconstructs a
            frozen teacher's fusion-encoder features of the masked tokens (the teacher sees the full inputs).
        teacher_hidden_size (`int` or None): width of the teacher features (None: ``hidden_size``).
        teacher_target_norm (`bool`, True): LayerNorm (no affine) on each teacher layer's features *(our choice)*.
        teacher_num_target_layers (`int`, 1): average of the teacher's last k fusion-layer outputs *(our choice: 1,
            the final, "contextualised" output)*.
    Fine-tuning:
        mask_time_prob, mask_freq_prob (0.0): training-time dropping of whole audio time rows / mel columns of
            tokens (the authors' ``random_masking_2d``); mask_video_prob (0.0): random video token dropping. Defaults
            of the forward arguments of the same names (the authors pass them per call).
        classifier_heads (`list[str]`): heads of :class:`MAViLForAudioVisualClassification` among
            `"audio_visual"` (LayerNorm + linear on the concatenated mean-pooled fusion outputs of both modalities,
            as the authors' ``fc_norm_av``/``head_av``), `"audio"` and `"video"` (on the mean-pooled modality
            encoder outputs, as their ``fc_norm_a``/``head_a``). Default: all three; the authors' A+V model is
            ``["audio_visual"]``.
        classifier_dropout (0.0): dropout before the heads.
    """

    model_type = "maskedav_mavil"

    # dataclass fields, one per config key (the audio_*/video_* pairs are separate keys of saved configs)
    # audio input
    num_mel_bins: int = 128
    max_length: int = 1024
    audio_patch_size: int = 16
    audio_position_table: Literal["audiomae", "time_major"] = "audiomae"
    # video input
    num_frames: int = 8
    image_size: int = 224
    video_patch_size: int = 16
    tubelet_size: int = 2
    num_channels: int = 3
    position_tables: Literal["fixed", "stored"] = "fixed"
    # encoders
    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    audio_num_hidden_layers: int = 12
    video_num_hidden_layers: int = 12
    fusion_num_hidden_layers: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    initializer_range: float = 0.02
    # pretraining
    audio_mask_ratio: float = 0.8
    video_mask_ratio: float = 0.8
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 8
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    audio_norm_pix_loss: bool = True
    video_norm_pix_loss: bool = True
    audio_reconstruction_weight: float = 1.0
    video_reconstruction_weight: float = 1.0
    inter_contrastive_weight: float = 0.01
    intra_contrastive_weight: float = 0.01
    inter_contrastive_temperature: float = 0.05
    intra_contrastive_temperature: float = 0.05
    contrastive_symmetric: bool = True
    contrastive_features: Literal["encoder", "fusion"] = "encoder"
    contrastive_projection_dim: int | None = None
    reconstruction_target: Literal["pixels", "teacher"] = "pixels"
    teacher_hidden_size: int | None = None
    teacher_target_norm: bool = True
    teacher_num_target_layers: int = 1
    # fine-tuning
    mask_time_prob: float = 0.0
    mask_freq_prob: float = 0.0
    mask_video_prob: float = 0.0
    classifier_heads: list[str] | tuple[str, ...] = CLASSIFIER_HEADS
    classifier_dropout: float = 0.0

    def __post_init__(self, **kwargs):
        for name, mavil_value in AVMAE_SWITCHES.items():
            if name in kwargs and kwargs.pop(name) != mavil_value:
                raise ValueError(
                    f"{name} is a switch of Georgescu et al.'s audiovisual MAE, which MAViLConfig no longer emulates "
                    f"(MAViL: {name}={mavil_value!r}): use AVMAEConfig (hf_maskedav.models.avmae) and its classes instead"
                )
        super().__post_init__(**kwargs)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # ``custom_pipelines`` in an --export_remote_code folder's config.json serves machines without hf_maskedav
        # (trust_remote_code=True). Here, the package's registered audio-video-classification task serves the folder
        # with no trust_remote_code, so the entry is dropped (the flattened copy of this class keeps it).
        if cls.__module__.startswith("hf_maskedav."):
            config_dict = {key: value for key, value in config_dict.items() if key != "custom_pipelines"}
        return super().from_dict(config_dict, **kwargs)

    @property
    def audio_grid_size(self) -> tuple[int, int]:
        """Audio token grid ``(time, freq)``."""
        return (self.max_length // self.audio_patch_size, self.num_mel_bins // self.audio_patch_size)

    @property
    def video_grid_size(self) -> tuple[int, int, int]:
        """Video token grid ``(time, height, width)``."""
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

    @property
    def audio_patch_dim(self) -> int:
        return self.audio_patch_size**2

    @property
    def video_patch_dim(self) -> int:
        return self.tubelet_size * self.video_patch_size**2 * self.num_channels

    def validate_architecture(self):
        """Checked at construction: sizes and combinations that the model cannot be built with."""
        check_divisible(
            self, ("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")
        )
        for name in ("hidden_size", "decoder_hidden_size"):
            # the video table splits D into D/4 (time) + 3D/4 (2-D space), which must itself be divisible by 4
            if getattr(self, name) % 16:
                raise ValueError(f"{name} must be divisible by 16 (3-D sin-cos position table), got {getattr(self, name)}")
        if self.max_length % self.audio_patch_size or self.num_mel_bins % self.audio_patch_size:
            raise ValueError(
                f"the spectrogram size {self.max_length}x{self.num_mel_bins} is not divisible by audio_patch_size "
                f"{self.audio_patch_size}"
            )
        check_divisible(self, ("image_size", "video_patch_size"), ("num_frames", "tubelet_size"))
        check_ranges(self, _FIELD_RANGES)
        unknown = [h for h in self.classifier_heads if h not in CLASSIFIER_HEADS]
        if unknown or not self.classifier_heads or len(set(self.classifier_heads)) != len(self.classifier_heads):
            raise ValueError(
                f"classifier_heads must be a non-empty list of distinct names among {list(CLASSIFIER_HEADS)}, got "
                f"{list(self.classifier_heads)}"
            )


__all__ = ["MAViLConfig"]
