"""Audio clip length in seconds <-> the model's ``max_length`` (fbank frames), for ``--clip_seconds``.

The Kaldi fbank of the feature extractors has a 10 ms frame shift: 100 frames per second. A length is *accepted* by a
config when its patches tile it exactly (``(max_length - patch) % stride == 0``) and the config class builds with it
(e.g. Audio-MAE's local decoder needs the token grid divisible by ``decoder_window_size``; MAViL needs a multiple of
``audio_patch_size``). Lengths are rounded **up** to the next accepted one, so a clip is never shortened.
"""

from __future__ import annotations

import math

FBANK_FRAMES_PER_SECOND = 100


def _patch(config) -> tuple[int, int]:
    patch = getattr(config, "audio_patch_size", None) or getattr(config, "patch_size")
    return int(patch), int(getattr(config, "patch_stride", None) or patch)


def accepts_max_length(config, length: int) -> bool:
    """Whether ``config`` with ``max_length=length`` tiles the spectrogram exactly and builds."""
    patch, stride = _patch(config)
    if length < patch or (length - patch) % stride:
        return False
    try:
        type(config).from_dict({**config.to_dict(), "max_length": int(length)})
    except Exception:  # noqa: BLE001  (the config class's own validation, whatever it raises)
        return False
    return True


def nearest_max_lengths(config, length: int, search: int = 4096) -> tuple[int | None, int | None]:
    """The accepted lengths just below (or equal) and just above (or equal) ``length``."""
    below = next((n for n in range(int(length), 0, -1) if accepts_max_length(config, n)), None)
    above = next((n for n in range(int(length), int(length) + search) if accepts_max_length(config, n)), None)
    return below, above


def max_length_for_seconds(config, seconds: float) -> tuple[int, int]:
    """``(requested, accepted)`` fbank frames for a clip of ``seconds``: ``ceil(100 * seconds)`` rounded up."""
    if seconds <= 0:
        raise ValueError(f"--clip_seconds must be positive, got {seconds}")
    requested = math.ceil(round(seconds * FBANK_FRAMES_PER_SECOND, 6))
    _, accepted = nearest_max_lengths(config, requested)
    if accepted is None:
        raise ValueError(f"no max_length from {requested} frames on is accepted by this {type(config).__name__}")
    return requested, accepted


def describe_rounding(config, seconds: float, requested: int, accepted: int) -> str:
    patch, stride = _patch(config)
    window = getattr(config, "decoder_window_size", None) if getattr(config, "decoder_type", None) == "local" else None
    why = f"patch {patch}" + (f", stride {stride}" if stride != patch else "")
    if window is not None:
        why += f", decoder window {list(window)} over the token grid"
    if accepted == requested:
        return f"--clip_seconds {seconds:g}: max_length {accepted} fbank frames ({accepted / 100:.2f} s)"
    return (
        f"--clip_seconds {seconds:g}: {requested} fbank frames rounded up to max_length {accepted} "
        f"({accepted / 100:.2f} s), the next length the model accepts ({why})"
    )


def invalid_max_length_message(config, length: int, error: Exception | None = None) -> str:
    below, above = nearest_max_lengths(config, length)
    nearest = " and ".join(str(n) for n in (below, above) if n is not None and n != length) or "none found"
    reason = f" ({str(error).strip().splitlines()[-1].strip()})" if error is not None else ""
    return f"max_length {length} is not accepted by this {type(config).__name__}{reason}; nearest valid lengths: {nearest}"


def add_clip_seconds_argument(group) -> None:
    group.add_argument(
        "--clip_seconds",
        type=float,
        default=None,
        help="audio clip length in seconds: sets the model's and the feature extractor's max_length (100 fbank frames "
        "per second), rounded up to the next length the model accepts (logged)",
    )


def add_audiovisual_clip_arguments(group) -> None:
    """``--clip_seconds``, ``--num_frames``, ``--video_fps`` of the MAViL scripts: the input geometry, set on the config
    and (through :func:`audiovisual_processor_for`) on the feature extractor and the video processor alike."""
    add_clip_seconds_argument(group)
    group.add_argument("--num_frames", type=int, default=None,
                       help="frames per video clip (config num_frames and video processor; a multiple of tubelet_size)")
    group.add_argument("--video_fps", type=float, default=None,
                       help="rate at which the video processor takes the frames (clip span = num_frames / video_fps s)")


__all__ = [
    "add_audiovisual_clip_arguments",
    "FBANK_FRAMES_PER_SECOND",
    "accepts_max_length",
    "add_clip_seconds_argument",
    "describe_rounding",
    "invalid_max_length_message",
    "max_length_for_seconds",
    "nearest_max_lengths",
]
