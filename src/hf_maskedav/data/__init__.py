"""Data for training: audio and video decoding, sources (Hub, folders, CSV lists, files, built-in demos), clip datasets."""

from .audio import (
    AUDIO_EXTENSIONS,
    DEMO_DATASET_NAME,
    AudioClipDataset,
    AudioCollator,
    AudioSource,
    BadSampleTracker,
    LabelSpec,
    StreamingAudioClipDataset,
    clip_samples_for,
    featurize,
    infer_label_spec,
    load_audio_source,
)
from .augment import spec_augment, spectrogram_jitter
from .audio_decoding import BadSampleError, crop_or_pad, decode_audio
from .cache import DecodedCache
from .demo_audio import DEMO_AUDIO_CLASSES, DEMO_AUDIO_SIZES, DemoAudioDataset, synthesize_clip
from .demo_video import DEMO_VIDEO_CLASSES, DEMO_VIDEO_SIZES, DemoVideoDataset
from .splits import RowFilter, SplitFilterError, apply_row_filter, load_split, parse_row_filter
from .video import (
    AudioWindow,
    VideoBadSampleTracker,
    VideoClipDataset,
    VideoCollator,
    VideoSource,
    load_video_source,
    read_video_csv,
)
from .video_transforms import VideoClipRecipe, video_recipe

__all__ = [
    "RowFilter",
    "SplitFilterError",
    "apply_row_filter",
    "load_split",
    "parse_row_filter",
    "DEMO_VIDEO_CLASSES",
    "DEMO_VIDEO_SIZES",
    "AudioWindow",
    "DemoVideoDataset",
    "VideoBadSampleTracker",
    "VideoClipDataset",
    "VideoClipRecipe",
    "VideoCollator",
    "VideoSource",
    "load_video_source",
    "read_video_csv",
    "video_recipe",
    "AUDIO_EXTENSIONS",
    "DEMO_AUDIO_CLASSES",
    "DEMO_AUDIO_SIZES",
    "DEMO_DATASET_NAME",
    "AudioClipDataset",
    "AudioCollator",
    "AudioSource",
    "BadSampleError",
    "BadSampleTracker",
    "DecodedCache",
    "DemoAudioDataset",
    "LabelSpec",
    "StreamingAudioClipDataset",
    "clip_samples_for",
    "crop_or_pad",
    "decode_audio",
    "featurize",
    "infer_label_spec",
    "load_audio_source",
    "spec_augment",
    "spectrogram_jitter",
    "synthesize_clip",
]
