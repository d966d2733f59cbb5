"""Turn what users pass as audio (numpy arrays, tensors, lists, one clip or a batch) into checked float tensors."""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

# A 2-D clip whose shorter side is at most this is read as multi-channel audio (channels, samples)/(samples, channels).
MAX_CHANNELS = 8


def _to_float_tensor(clip, index: int) -> torch.Tensor:
    if isinstance(clip, torch.Tensor):
        tensor = clip.detach()
    else:
        array = np.asarray(clip)
        if array.dtype == object:
            raise TypeError(f"audio clip {index} could not be read as numbers (got an object array)")
        tensor = torch.from_numpy(np.array(array, copy=not array.flags.writeable or None, order="C"))
    if tensor.dtype in (torch.int16, torch.int32, torch.int8, torch.uint8):
        # Integer PCM: scale to [-1, 1) like torchaudio.load / soundfile do for float output.
        scale = {torch.int16: 32768.0, torch.int32: 2147483648.0, torch.int8: 128.0}.get(tensor.dtype)
        if tensor.dtype == torch.uint8:
            tensor = (tensor.float() - 128.0) / 128.0
        else:
            tensor = tensor.float() / scale
    elif tensor.dtype == torch.bool or not (tensor.is_floating_point() or tensor.dtype == torch.int64):
        raise TypeError(f"audio clip {index} has dtype {tensor.dtype}; pass float waveforms in [-1, 1]")
    return tensor.float()


def downmix(clip: torch.Tensor, index: int = 0) -> torch.Tensor:
    """Average a multi-channel clip ``(channels, samples)`` or ``(samples, channels)`` to mono, with a warning.

    The channel axis is the shorter one, which must hold at most ``MAX_CHANNELS`` channels; anything else is ambiguous
    and raises ``ValueError``.
    """
    short, long_ = sorted(clip.shape) if clip.dim() == 2 else (0, 0)
    if clip.dim() != 2 or not 0 < short <= MAX_CHANNELS or short == long_:
        raise ValueError(
            f"audio clip {index} has shape {tuple(clip.shape)}, which is neither mono (samples,) nor multi-channel "
            f"(channels, samples) with at most {MAX_CHANNELS} channels; pass one 1-D waveform per clip"
        )
    channel_axis = 0 if clip.shape[0] == short else 1
    logger.warning("audio clip %d has %d channels (shape %s); averaging them to mono", index, short, tuple(clip.shape))
    return clip.mean(dim=channel_axis)


def prepare_waveforms(raw_audio, min_samples: int = 1, downmix_clips: bool = False) -> list[torch.Tensor]:
    """Normalise the accepted audio inputs to a list of 1-D float32 tensors, with clear errors for bad audio.

    Accepted: one clip (1-D numpy array, tensor or list of floats), a batch as a 2-D array/tensor ``(batch, samples)``,
    or a list of clips of any lengths. Integer PCM is scaled to ``[-1, 1)``.

    Multi-channel audio: a 2-D array/tensor is always a batch ``(batch, samples)``. With ``downmix_clips``, a 2-D clip
    *inside a list* (``[stereo]``) is read as ``(channels, samples)`` or ``(samples, channels)`` (the shorter axis,
    at most ``MAX_CHANNELS``) and averaged to mono with a logged warning; without it, such a clip is an error.

    Raises:
        ValueError: for an empty clip, a clip shorter than ``min_samples``, non-finite samples, input of rank > 2, or
            a 2-D array that looks like ``(samples, channels)`` audio rather than a batch.
    """
    if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
        if raw_audio.ndim == 1:
            clips = [raw_audio]
        elif raw_audio.ndim == 2:
            if raw_audio.shape[1] <= MAX_CHANNELS < raw_audio.shape[0]:
                raise ValueError(
                    f"got a 2-D array of shape {tuple(raw_audio.shape)}; a 2-D array is read as (batch, samples), but "
                    f"this looks like one multi-channel clip (samples, channels). Average the channels first "
                    f"(audio.mean(axis=1)), or pass it inside a list ([audio]) to have it down-mixed"
                )
            clips = list(raw_audio)
        else:
            raise ValueError(
                f"audio must be 1-D (samples) or 2-D (batch, samples); got shape {tuple(raw_audio.shape)}. "
                "For multi-channel audio, average the channels first."
            )
    elif isinstance(raw_audio, (list, tuple)):
        if len(raw_audio) == 0:
            raise ValueError("got an empty list of audio clips")
        first = raw_audio[0]
        is_batch = isinstance(first, (np.ndarray, torch.Tensor, list, tuple))
        clips = list(raw_audio) if is_batch else [raw_audio]
    else:
        raise TypeError(
            f"unsupported audio input of type {type(raw_audio).__name__}; pass a numpy array, a torch tensor or a list"
        )
    out = []
    for index, clip in enumerate(clips):
        tensor = _to_float_tensor(clip, index)
        if tensor.dim() == 2 and downmix_clips:
            tensor = downmix(tensor, index)
        if tensor.dim() != 1:
            raise ValueError(
                f"audio clip {index} has shape {tuple(tensor.shape)}; each clip must be mono (1-D samples)"
            )
        if tensor.numel() == 0:
            raise ValueError(f"audio clip {index} is empty (0 samples)")
        if tensor.numel() < min_samples:
            raise ValueError(
                f"audio clip {index} has {tensor.numel()} samples, fewer than the {min_samples} needed for one "
                "analysis frame; pad it with zeros or drop it"
            )
        # One reduction instead of a mask: a NaN/Inf sample makes the sum non-finite; only when it is, look closer (a
        # sum can also overflow with huge finite values, which are not an error here).
        if not torch.isfinite(tensor.sum()) and not torch.isfinite(tensor).all():
            raise ValueError(
                f"audio clip {index} contains NaN or Inf samples; the file or array is corrupt (drop the clip, or "
                "replace the values, e.g. numpy.nan_to_num)"
            )
        out.append(tensor)
    return out
