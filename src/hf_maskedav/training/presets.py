"""Named model sizes for the example scripts' ``--config_name``, one registry for every family, and the processors
that go with them.

:data:`PRESETS` maps a name to a :class:`Preset` -- the config class it builds (a name ``hf_maskedav`` exports, so an
entry can build any family's config), its config fields, and the fields of the processors the scripts pair with it
(the video processor; the fbank feature extractor of the audio-visual families). :func:`build_config` turns a preset
name, a config folder / JSON file or a Hub id into a config; :func:`video_processor_for` and
:func:`audiovisual_processor_for` give the processor a model trains with.

The tiny presets are what the scripts train by default: they fit the built-in demo data and pretrain on 2 CPU cores
in a few minutes (docs/training.md, docs/training_video.md have the measurements behind their mask ratios and
weights). The larger ones are the papers' shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .recipes import apply_fbank_options


@dataclass(frozen=True)
class Preset:
    """One named configuration.

    Args:
        config_class: the config class, by the name ``hf_maskedav`` exports it under (``"AudioMAEConfig"``...).
        config: config fields (the class defaults for the others).
        processor: video processor fields (video and audio-visual families; empty: derived from the config).
        feature_extractor: fbank feature extractor fields (audio-visual families).
        base: a named shape of the config class (``config_class.from_preset(base, **config)``), e.g. MaskFeat's
            ``"mvitv2-small-16x4-pretrain"``.
    """

    config_class: str
    config: dict = field(default_factory=dict)
    processor: dict = field(default_factory=dict)
    feature_extractor: dict = field(default_factory=dict)
    base: str | None = None

    @property
    def model_type(self) -> str:
        return _config_class(self.config_class).model_type


def _config_class(name: str):
    import hf_maskedav

    return getattr(hf_maskedav, name)


# ---- Audio-MAE -------------------------------------------------------------------------------------------------------
# "tiny" fits the built-in 1-second demo clips (96 frames x 64 mel bins, 8x8 patches -> 12 x 8 tokens). "base" is the
# released Audio-MAE ViT-B (1024 x 128 input, local decoder).
_AUDIOMAE_TINY = dict(
    num_mel_bins=64, max_length=96, patch_size=8, patch_stride=8, hidden_size=128, num_hidden_layers=4,
    num_attention_heads=4, intermediate_size=512, decoder_type="local", decoder_hidden_size=64,
    decoder_num_hidden_layers=2, decoder_num_attention_heads=4, decoder_intermediate_size=256,
    decoder_window_size=[4, 4], decoder_shift_size=[2, 0], decoder_meta_hidden_size=64,
    # 0.6 rather than the paper's 0.8: with only 96 tokens per clip, more visible context makes the tiny model learn
    # useful features within the default few-minute budget (linear probe on the demo data, docs/training.md)
    mask_ratio=0.6, norm_pix_loss=True,
)

# ---- video -----------------------------------------------------------------------------------------------------------
# The tiny presets fit the built-in demo clips (32 frames of 64x48 at 12 fps): 8 frames taken every 2 source frames
# (1.25 s), 32x32 crops, 8x8 patches and 2-frame tubelets -> 4x4x4 = 64 tokens. Mask ratios are lower than the papers'
# 90% (VideoMAE, MAE-ST): with 16 spatial cells per time step, 90% would leave one or two visible cells per frame.
_TINY_VIDEO = dict(num_frames=8, tubelet_size=2, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                   intermediate_size=512)
_TINY_DECODER = dict(decoder_hidden_size=64, decoder_num_hidden_layers=2, decoder_num_attention_heads=4,
                     decoder_intermediate_size=256)
_SMALL_VIDEOMAE = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                       decoder_hidden_size=192, decoder_num_attention_heads=3, decoder_intermediate_size=768)
_TINY_PROCESSOR = dict(num_frames=8, frame_sampling_rate=2, size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32})
# For small frames with a small object (the demo's "objects" variant, 64x64 at 8 fps): keep the full 64x64 resolution
# (a 32x32 resize leaves the object ~6 px, too few for its shape), 8x8 patches, 8 frames every 2 (1.9 s at 8 fps) ->
# 8x8x4 = 256 tokens; mask ratio 0.9 as the papers (64 cells per time step leave ~6 visible).
_TINY_PROCESSOR_64 = dict(num_frames=8, frame_sampling_rate=2, size={"shortest_edge": 64},
                          crop_size={"height": 64, "width": 64})

# ---- audio-visual ----------------------------------------------------------------------------------------------------
_TINY_AV = dict(
    num_mel_bins=64, max_length=128, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
    tubelet_size=2, hidden_size=128, num_attention_heads=4, intermediate_size=512, audio_num_hidden_layers=3,
    video_num_hidden_layers=3, fusion_num_hidden_layers=1, decoder_hidden_size=64, decoder_num_hidden_layers=2,
    decoder_num_attention_heads=4, decoder_intermediate_size=256,
)
# MAViL's video processor takes num_frames at fps frames per second from the start of the clip; at the demo's 12 fps,
# 6 fps is every second frame, as the video presets.
_TINY_AV_PROCESSOR = dict(num_frames=8, fps=6.0, size={"height": 32, "width": 32})
_TINY_AV_FBANK = dict(num_mel_bins=64, max_length=128)

PRESETS: dict[str, Preset] = {
    "audiomae-tiny": Preset("AudioMAEConfig", _AUDIOMAE_TINY),
    "audiomae-small": Preset("AudioMAEConfig", dict(num_mel_bins=128, max_length=1024, hidden_size=384,
                                                    num_hidden_layers=12, num_attention_heads=6,
                                                    intermediate_size=1536)),
    "audiomae-base": Preset("AudioMAEConfig"),
    "audiomae-large": Preset("AudioMAEConfig", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                                    intermediate_size=4096)),
    "videomae-tiny": Preset("MaskedAVVideoMAEConfig", dict(image_size=32, patch_size=8, **_TINY_VIDEO,
                                                           **_TINY_DECODER, mask_ratio=0.75), _TINY_PROCESSOR),
    "videomae-small": Preset("MaskedAVVideoMAEConfig", _SMALL_VIDEOMAE),
    "videomae-base": Preset("MaskedAVVideoMAEConfig"),
    # VideoMAE V2: the same shapes with dual masking, running-cell decoder mask 0.5 (all released V2 pretraining
    # scripts: --decoder_mask_type run_cell --decoder_mask_ratio 0.5)
    "videomae_v2-tiny": Preset("MaskedAVVideoMAEConfig", dict(image_size=32, patch_size=8, **_TINY_VIDEO,
                                                              **_TINY_DECODER, mask_ratio=0.75, decoder_mask_ratio=0.5),
                               _TINY_PROCESSOR),
    "videomae_v2-small": Preset("MaskedAVVideoMAEConfig", dict(_SMALL_VIDEOMAE, decoder_mask_ratio=0.5)),
    "videomae_v2-base": Preset("MaskedAVVideoMAEConfig", dict(decoder_mask_ratio=0.5)),
    "mae_st-tiny": Preset("MAESTConfig", dict(image_size=32, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                              pred_t_dim=8, mask_ratio=0.75), _TINY_PROCESSOR),
    "mae_st-base": Preset("MAESTConfig", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                              intermediate_size=3072)),
    "mae_st-large": Preset("MAESTConfig"),
    "maskfeat-tiny": Preset("MaskFeatConfig", dict(
        backbone="vit", image_size=32, num_frames=8, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8],
        patch_padding=[0, 0, 0], hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
        separate_position_embeddings=True, hog_cell_size=4, mask_window_size=[4, 4, 4], mask_ratio=0.4,
        image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225],
    ), dict(_TINY_PROCESSOR, size={"shortest_edge": 36})),  # SlowFast: short side 256 for 224 crops
    "videomae-tiny-64": Preset("MaskedAVVideoMAEConfig", dict(image_size=64, patch_size=8, **_TINY_VIDEO,
                                                              **_TINY_DECODER, mask_ratio=0.9), _TINY_PROCESSOR_64),
    "mae_st-tiny-64": Preset("MAESTConfig", dict(image_size=64, patch_size=8, **_TINY_VIDEO, **_TINY_DECODER,
                                                 pred_t_dim=8, mask_ratio=0.9), _TINY_PROCESSOR_64),
    # MaskFeat (ViT) at the objects variant's full 64x64 frame: 8x8 patches, 2-frame tubelets (4x8x8 tokens), HOG cells
    # of 4 pixels, the mask drawn on the whole token grid (MaskFeat's cube masking, ratio 0.4)
    "maskfeat-tiny-64": Preset("MaskFeatConfig", dict(
        backbone="vit", image_size=64, num_frames=8, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8],
        patch_padding=[0, 0, 0], hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
        separate_position_embeddings=True, hog_cell_size=4, mask_window_size=[4, 8, 8], mask_ratio=0.4,
        image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225],
    ), _TINY_PROCESSOR_64),
    "maskfeat-mvitv2-small": Preset("MaskFeatConfig", base="mvitv2-small-16x4-pretrain"),
    "maskfeat-mvitv2-large": Preset("MaskFeatConfig", base="mvitv2-large-16x4-pretrain"),
    # The paper's inter-modal InfoNCE weight (0.01, temperature 0.05) is tuned for long runs with large batches; over
    # a few hundred steps of 16 clips it stays at chance (ln 16) and the retrieval it should teach never appears. The
    # demo preset weights it 0.5 at temperature 0.1 (docs/training_video.md has the measurements).
    "mavil-tiny": Preset("MAViLConfig", dict(_TINY_AV, inter_contrastive_weight=0.5, inter_contrastive_temperature=0.1),
                         _TINY_AV_PROCESSOR, _TINY_AV_FBANK),
    # Georgescu et al.'s AV-MAE at the tiny sizes: separate encoders (3 layers) + 1 joint layer, one decoder over both
    # modalities' tokens (Scenic's concat_and_decode), modality tokens, raw targets, 0.5/0.5 reconstruction weights
    # (AVMAEConfig defaults); its processor takes every second frame (6 fps at the demo's 12 fps), frames in [-1, 1],
    # and the log-mel unnormalised (Scenic's pretraining feeds it so)
    "avmae-tiny": Preset("AVMAEConfig", dict(
        num_mel_bins=64, max_length=128, audio_patch_size=8, num_frames=8, image_size=32, video_patch_size=8,
        tubelet_size=2, hidden_size=128, num_attention_heads=4, intermediate_size=512, num_hidden_layers=4,
        num_fusion_layers=1, encoder_strategy="separate_encoders_and_concat", decoder_hidden_size=64,
        decoder_num_hidden_layers=2, decoder_num_attention_heads=4, decoder_intermediate_size=256,
        decoder_strategy="concat_and_decode", use_modality_tokens=True, audio_mask_ratio=0.8, video_mask_ratio=0.8,
    ), _TINY_PROCESSOR, dict(_TINY_AV_FBANK, do_normalize=False)),
    # the demo's "objects" variant (64x64 at 8 fps): full resolution, 4 frames at 4 fps (1 s, 4x8x8 = 128 tokens),
    # masks 0.5 / 0.5 (at 0.8 the small object and the short word are hidden from most masked views), inter-modal
    # weight 1.0 at 0.1: the measured best on that variant (audio probe 50.7 % and fused 47.3 % against 27-31 % and
    # 20-23 % random; docs/training_video.md, "Small-data recipe")
    "mavil-tiny-64": Preset("MAViLConfig", dict(_TINY_AV, image_size=64, num_frames=4, audio_mask_ratio=0.5,
                                                video_mask_ratio=0.5, inter_contrastive_weight=1.0,
                                                inter_contrastive_temperature=0.1),
                            dict(_TINY_AV_PROCESSOR, num_frames=4, fps=4.0, size={"height": 64, "width": 64}),
                            _TINY_AV_FBANK),
    "mavil-base": Preset("MAViLConfig"),
}

# pretrain_video.py --model: the family whose "<model>-tiny" preset is the default
PRETRAINING_FAMILIES = {"videomae": "maskedav_videomae", "videomae_v2": "maskedav_videomae", "mae_st": "maskedav_mae_st",
                        "maskfeat": "maskedav_maskfeat"}


def presets_of(config_class: str) -> list[str]:
    """The preset names that build ``config_class`` (e.g. for a script's ``--help``)."""
    return [name for name, preset in PRESETS.items() if preset.config_class == config_class]


def build_config(config_name: str, **overrides):
    """A config from a preset name (:data:`PRESETS`), a local folder / config JSON file, or a Hub id; ``overrides``
    set config fields (on a preset they are constructor arguments, so the config class validates them)."""
    if config_name in PRESETS:
        preset = PRESETS[config_name]
        config_class = _config_class(preset.config_class)
        fields = {**preset.config, **overrides}
        return config_class.from_preset(preset.base, **fields) if preset.base else config_class(**fields)
    from transformers import AutoConfig

    import hf_maskedav  # noqa: F401  (registers the model types with AutoConfig)

    config = AutoConfig.from_pretrained(config_name)  # a folder, a config JSON file or a Hub id
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


# ---- processors ------------------------------------------------------------------------------------------------------


def has_saved_processor(name: str | None) -> bool:
    """True for a Hub id, or a folder holding a saved processor (video processor, feature extractor or processor)."""
    if not name:
        return False
    if os.path.isdir(name):
        files = ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        return any(os.path.isfile(os.path.join(name, f)) for f in files)
    return not os.path.exists(name)


def processor_source(processor_name: str | None, *candidates: str | None) -> str | None:
    """Where a script loads its processor from: ``--processor_name``, else the first of ``candidates`` (the model
    folder, a teacher...) that holds a saved one, else None (built from the preset / config)."""
    return processor_name or next((c for c in candidates if has_saved_processor(c)), None)


def _video_processor_class(model_type: str):
    import hf_maskedav

    table = {"maskedav_videomae": "MaskedAVVideoMAEVideoProcessor", "maskedav_mae_st": "MAESTVideoProcessor",
             "maskedav_maskfeat": "MaskFeatVideoProcessor"}
    if model_type not in table:
        raise ValueError(f"not a video pretraining family: {model_type!r}; expected one of {sorted(table)}")
    return getattr(hf_maskedav, table[model_type])


def video_processor_for(config, config_name: str | None = None, processor_name: str | None = None):
    """The video processor a model trains with: loaded from ``processor_name`` (a folder or Hub id with a saved
    processor), else the family's processor with the preset's fields (tiny presets: 8 frames every 2, 32x32),
    the config's frame count and input size otherwise."""
    model_type = config.model_type
    processor_class = _video_processor_class(model_type)
    if processor_name:
        processor = processor_class.from_pretrained(processor_name)
    elif config_name in PRESETS and PRESETS[config_name].processor:
        processor = processor_class(**PRESETS[config_name].processor)
    else:
        side = int(config.image_size if not isinstance(config.image_size, (list, tuple)) else config.image_size[0])
        fields = dict(num_frames=int(config.num_frames), crop_size={"height": side, "width": side})
        if model_type == "maskedav_maskfeat":
            fields["size"] = {"shortest_edge": int(side * 256 / 224)}
            fields["image_mean"], fields["image_std"] = list(config.image_mean), list(config.image_std)
        else:
            fields["size"] = {"shortest_edge": side}
        if model_type == "maskedav_videomae":  # the config's statistics: the ones its pixel target un-normalises with
            fields["image_mean"], fields["image_std"] = list(config.pixel_mean), list(config.pixel_std)
        processor = processor_class(**fields)
    if hasattr(config, "check_video_processor"):  # VideoMAE: processor and target statistics must agree
        config.check_video_processor(processor)
    return processor


def audiovisual_processor_for(config, config_name: str | None = None, processor_name: str | None = None,
                              video_fps: float | None = None, feature_normalization: str | None = None,
                              top_db: float | None = None):
    """The audio-visual processor (feature extractor + video processor) matching a MAViL or AV-MAE config:
    ``MAViLProcessor`` (fbank, frames at ``fps`` from the clip's start, squashed to the input size) or
    ``AVMAEProcessor`` (log-mel, frames every ``frame_sampling_rate``, short side + centre crop, [-1, 1]).

    Loaded from ``processor_name``, else built from the preset's fields; either way the config decides the input
    geometry (``max_length`` and ``num_mel_bins`` of the feature extractor, ``num_frames`` and frame size of the video
    processor), so ``--clip_seconds``/``--num_frames``/``--config_overrides`` keep config and processor consistent.
    ``video_fps`` sets the rate at which MAViL's video processor takes its frames (``--video_fps``; AV-MAE samples
    every ``frame_sampling_rate`` frames instead). ``feature_normalization`` (``"dataset"`` or ``"per_clip"``,
    ``--feature_normalization``) sets how MAViL's fbank is normalised and ``top_db`` (``--top_db``) its floor below
    each clip's peak (:class:`AudioMAEFeatureExtractor`).
    """
    import hf_maskedav
    from transformers.image_utils import SizeDict

    avmae = config.model_type == "maskedav_avmae"
    family = "AVMAE" if avmae else "MAViL"
    processor_class = getattr(hf_maskedav, f"{family}Processor")
    if avmae and video_fps is not None:
        raise ValueError("--video_fps is a MAViL option: AV-MAE's video processor takes every frame_sampling_rate-th "
                         "frame (set it with --config_overrides on a saved processor, or in the preset)")
    if avmae and (feature_normalization is not None or top_db is not None):
        raise ValueError("--feature_normalization and --top_db are MAViL options (the Audio-MAE fbank): AV-MAE's log-mel is "
                         "normalised with fixed statistics or not at all (do_normalize on a saved processor)")
    side = int(config.image_size)
    if processor_name:
        processor = processor_class.from_pretrained(processor_name)
    else:
        preset = PRESETS.get(config_name) or Preset(f"{family}Config")
        extractor_class = getattr(hf_maskedav, "AVMAEFeatureExtractor" if avmae else "AudioMAEFeatureExtractor")
        video_class = getattr(hf_maskedav, f"{family}VideoProcessor")
        processor = processor_class(extractor_class(**preset.feature_extractor), video_class(**preset.processor))
    extractor, video = processor.feature_extractor, processor.video_processor
    extractor.num_mel_bins, extractor.max_length = int(config.num_mel_bins), int(config.max_length)
    video.num_frames = int(config.num_frames)
    if avmae:  # short side, then a centre crop of the input size
        if (getattr(video.crop_size, "height", None), getattr(video.crop_size, "width", None)) != (side, side):
            video.crop_size = SizeDict(height=side, width=side)
        if (getattr(video.size, "shortest_edge", None) or 0) < side:
            video.size = SizeDict(shortest_edge=side)
    elif (getattr(video.size, "height", None), getattr(video.size, "width", None)) != (side, side):
        video.size = SizeDict(height=side, width=side)
    if video_fps is not None:
        video.fps = float(video_fps)
    apply_fbank_options(extractor, feature_normalization, top_db)
    return processor


__all__ = [
    "PRESETS",
    "PRETRAINING_FAMILIES",
    "Preset",
    "audiovisual_processor_for",
    "build_config",
    "has_saved_processor",
    "presets_of",
    "processor_source",
    "video_processor_for",
]
