"""Video input for every hf_maskedav video model: decoding, frame sampling, in-memory layouts, a video processor.

* :func:`decode_video` / :func:`read_video` / :func:`probe_video` -- read files with torchcodec (PyAV fallback);
  ``decode_video(path, num_frames=16, sample_rate=4)`` returns a ``uint8`` tensor ``[T, H, W, 3]``.
* :func:`clip_frame_indices`, :func:`uniform_frame_indices`, :func:`multi_clip_frame_indices` -- which frames to read.
* :func:`to_rgb_video` -- arrays, tensors and lists of frames (grey-scale included) -> ``[T, 3, H, W]``.
* :class:`MaskedAVVideoProcessor` -- the transformers video processor the model families subclass.
"""

from .decoding import DecodedVideo, VideoDecodingError, VideoInfo, available_backends, decode_video, probe_video, read_video
from .frames import stack_frames, to_rgb_video
from .processing import MaskedAVVideoProcessor, MaskedAVVideosKwargs
from .sampling import clip_frame_indices, clip_span, multi_clip_frame_indices, uniform_frame_indices

__all__ = [
    "DecodedVideo",
    "MaskedAVVideoProcessor",
    "MaskedAVVideosKwargs",
    "VideoDecodingError",
    "VideoInfo",
    "available_backends",
    "clip_frame_indices",
    "clip_span",
    "decode_video",
    "multi_clip_frame_indices",
    "probe_video",
    "read_video",
    "stack_frames",
    "to_rgb_video",
    "uniform_frame_indices",
]
