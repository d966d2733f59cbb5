"""Model-input checks: one function per input kind, the sizes it must have passed in (from the family's config).

Each returns the tensor in the layout the patch convolution reads and raises a ``TypeError``/``ValueError`` that says
what was expected, what came and which processor makes the right input; every one ends with
:func:`~hf_maskedav.modeling_utils.check_model_input` (non-empty batch, finite values).

* :func:`as_spectrogram` -- ``[N, T, F]`` or ``[N, C, T, F]`` fbank -> ``[N, C, T, F]``.
* :func:`as_video` -- ``[N, T, C, H, W]`` clip (transformers' video layout) -> ``[N, C, T, H, W]``.
* :func:`as_frame` -- ``[N, C, H, W]`` image (or one-frame ``[N, 1, C, H, W]`` clip) -> ``[N, C, H, W]``.
"""

from __future__ import annotations

import torch

from ..modeling_utils import check_model_input


def _tensor(values, name: str) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")


def _floating(values: torch.Tensor, name: str, what: str = "") -> None:
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor{what}, got {values.dtype}")


def as_spectrogram(
    input_values: torch.Tensor,
    *,
    num_mel_bins: int,
    processor: str,
    num_channels: int = 1,
    max_length: int | None = None,
    patch_size: int | None = None,
    whole_patches: bool = False,
) -> torch.Tensor:
    """Check a log-mel fbank and return it as ``[N, C, T, F]`` (time before mel bins, the feature extractors' order).

    Args:
        input_values: ``[N, T, F]`` or ``[N, C, T, F]``.
        num_mel_bins: ``F`` the model expects.
        processor: the class that makes these inputs from audio, named in the errors.
        num_channels: ``C`` of a 4-D input.
        max_length: when given, ``T`` must be exactly this (models whose position tables cannot change length).
        patch_size: when given (and ``max_length`` is not), ``T`` must hold at least one patch of this many frames,
            and with ``whole_patches`` a whole number of them.
    """
    _tensor(input_values, "input_values")
    if input_values.dim() == 3:
        input_values = input_values.unsqueeze(1)
    if input_values.dim() != 4 or input_values.shape[1] != num_channels:
        raise ValueError(
            f"input_values must have shape (batch, frames, mel_bins) or (batch, {num_channels}, frames, mel_bins); "
            f"got {tuple(input_values.shape)}. Use {processor} to make them from audio."
        )
    frames, mel_bins = input_values.shape[-2:]
    if mel_bins != num_mel_bins:
        raise ValueError(
            f"input_values has {mel_bins} mel bins but the model expects {num_mel_bins} (config.num_mel_bins); "
            "is the (frames, mel_bins) order swapped?"
        )
    if max_length is not None and frames != max_length:
        raise ValueError(
            f"input_values has {frames} frames but the model's position tables are built for {max_length} "
            f"(config.max_length); pad or crop the fbank to that length ({processor} does)"
        )
    if max_length is None and patch_size is not None:
        if frames < patch_size:
            raise ValueError(f"input_values has {frames} frames, fewer than one patch ({patch_size})")
        if whole_patches and frames % patch_size:
            raise ValueError(
                f"input_values has {frames} frames; the model needs a whole number of patches of {patch_size} frames "
                "(pad or crop the fbank)"
            )
    _floating(input_values, "input_values")
    check_model_input(input_values, "input_values")
    return input_values


def as_video(
    pixel_values: torch.Tensor,
    *,
    num_channels: int,
    num_frames: int,
    tubelet_size: int,
    patch_size: int,
    processor: str,
    image_size: int | None = None,
) -> torch.Tensor:
    """Check a ``[N, T, C, H, W]`` clip and return it as ``[N, C, T, H, W]`` (the official layout).

    Args:
        num_channels, num_frames, tubelet_size, patch_size: the model's; ``T`` must be a positive multiple of
            ``tubelet_size`` and ``H``, ``W`` multiples of ``patch_size``.
        processor: the class that makes these inputs from a video, named in the errors.
        image_size: when given, the clip must be exactly ``num_frames`` frames of ``image_size x image_size``
            (models whose position tables cannot change size).
    """
    _tensor(pixel_values, "pixel_values")
    if pixel_values.dim() != 5:
        raise ValueError(
            f"pixel_values must have shape (batch, frames, channels, height, width), got {tuple(pixel_values.shape)}; "
            f"use {processor} to make them from a video"
        )
    _floating(pixel_values, "pixel_values")
    _, frames, channels, height, width = pixel_values.shape
    if channels != num_channels:
        if channels == 1 and num_channels == 3:
            hint = " Grey-scale frames must be expanded to RGB first (the video processor does this)."
        elif frames == num_channels:
            hint = " It looks like (batch, channels, frames, height, width): use pixel_values.permute(0, 2, 1, 3, 4)."
        else:
            hint = " Is the layout (batch, frames, channels, height, width)?"
        raise ValueError(f"pixel_values has {channels} channels but the model expects {num_channels}.{hint}")
    if image_size is not None and (frames, height, width) != (num_frames, image_size, image_size):
        raise ValueError(
            f"pixel_values must have shape (batch, {num_frames}, {num_channels}, {image_size}, {image_size}) (frames, "
            f"channels, height, width), got {tuple(pixel_values.shape)}; use {processor} to make them"
        )
    if frames < tubelet_size or frames % tubelet_size:
        raise ValueError(
            f"pixel_values has {frames} frames, which cannot be cut into tubelets of {tubelet_size} frames; give a "
            f"multiple of {tubelet_size} (the model was configured for {num_frames})"
        )
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"frame size {height}x{width} is not divisible by the patch size {patch_size}; resize or crop first"
        )
    check_model_input(pixel_values, "pixel_values")
    return pixel_values.permute(0, 2, 1, 3, 4)


def as_frame(pixel_values: torch.Tensor, *, num_channels: int, image_size: int, processor: str) -> torch.Tensor:
    """Check one image per sample, ``[N, C, H, W]`` (or a one-frame clip ``[N, 1, C, H, W]``, as video processors
    give), and return ``[N, C, H, W]``."""
    _tensor(pixel_values, "pixel_values")
    if pixel_values.dim() == 5:
        if pixel_values.shape[1] != 1:
            raise ValueError(
                f"the model sees one frame per clip, got pixel_values of shape {tuple(pixel_values.shape)} with "
                f"{pixel_values.shape[1]} frames; pass one frame (the official evaluation uses the middle one) or run "
                "the model once per frame and average the predictions (the official 10-frame ensemble)"
            )
        pixel_values = pixel_values[:, 0]
    expected = (num_channels, image_size, image_size)
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
        raise ValueError(
            f"pixel_values must have shape (batch, {expected[0]}, {expected[1]}, {expected[2]}) (one frame), got "
            f"{tuple(pixel_values.shape)}; use {processor} to make them"
        )
    _floating(pixel_values, "pixel_values", " (normalised pixels)")
    check_model_input(pixel_values, "pixel_values")
    return pixel_values
