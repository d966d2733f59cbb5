"""Data for training: audio decoding, sources (Hub, audiofolder, files, built-in demo), clip datasets, collation."""

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
from .augment import spec_augment
from .audio_decoding import BadSampleError, crop_or_pad, decode_audio
from .demo_audio import DEMO_AUDIO_CLASSES, DEMO_AUDIO_SIZES, DemoAudioDataset, synthesize_clip

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEMO_AUDIO_CLASSES",
    "DEMO_AUDIO_SIZES",
    "DEMO_DATASET_NAME",
    "AudioClipDataset",
    "AudioCollator",
    "AudioSource",
    "BadSampleError",
    "BadSampleTracker",
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
    "synthesize_clip",
]
