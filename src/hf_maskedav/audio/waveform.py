"""Turn what users pass as audio (numpy arrays, tensors, lists, one clip or a batch) into checked float tensors."""

from __future__ import annotations

import numpy as np
import torch


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


def prepare_waveforms(raw_audio, min_samples: int = 1) -> list[torch.Tensor]:
    """Normalise the accepted audio inputs to a list of 1-D float32 tensors, with clear errors for bad audio.

    Accepted: one clip (1-D numpy array, tensor or list of floats), a batch as a 2-D array/tensor ``(batch, samples)``,
    or a list of clips of any lengths. Integer PCM is scaled to ``[-1, 1)``.

    Raises:
        ValueError: for an empty clip, a clip shorter than ``min_samples``, non-finite samples, or input of rank > 2.
    """
    if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
        if raw_audio.ndim == 1:
            clips = [raw_audio]
        elif raw_audio.ndim == 2:
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
        if not torch.isfinite(tensor).all():
            raise ValueError(f"audio clip {index} contains NaN or Inf samples")
        out.append(tensor)
    return out
