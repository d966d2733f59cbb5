"""Reading video files: torchcodec when it is usable, PyAV otherwise.

The API is small on purpose:

* :func:`probe_video` -- frame count, frame rate and size of a file (:class:`VideoInfo`), without decoding it.
* :func:`decode_video` -- the frames you ask for, as a ``uint8`` tensor ``[T, H, W, 3]`` (RGB, grey-scale videos
  expanded to three equal channels). Ask for explicit ``frame_indices``, or for ``num_frames`` frames taken every
  ``sample_rate`` frames (dense sampling, see :mod:`hf_maskedav.video.sampling`), or at ``fps`` frames per second,
  or for the whole video.
* :func:`read_video` -- the same, also returning the indices read and the :class:`VideoInfo`.

Files that cannot be read raise :class:`VideoDecodingError` (a ``ValueError``) that names the file and the problem:
corrupt or non-video data, an audio-only file, a video with no decodable frames. A missing file raises
``FileNotFoundError``.

Example::

    from hf_maskedav.video import decode_video
    frames = decode_video("clip.mp4", num_frames=16, sample_rate=4)      # [16, H, W, 3] uint8, centred clip
    frames = decode_video("clip.mp4", num_frames=16, sample_rate=4, position="random")  # training
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .sampling import clip_frame_indices

logger = logging.getLogger(__name__)

__all__ = [
    "DecodedVideo",
    "VideoDecodingError",
    "VideoInfo",
    "available_backends",
    "decode_video",
    "probe_video",
    "read_video",
]

BACKENDS = ("torchcodec", "pyav")


class VideoDecodingError(ValueError):
    """A file could not be read as a video (corrupt, not a video, audio only, no decodable frames)."""


@dataclass
class VideoInfo:
    """What a video file holds.

    Attributes:
        num_frames: number of frames (from the container header, or counted when the header has none).
        fps: average frame rate, or ``None`` when unknown.
        height, width: frame size in pixels.
        duration: length in seconds, or ``None`` when unknown.
        backend: the library that read it (``"torchcodec"`` or ``"pyav"``).
    """

    num_frames: int
    fps: float | None
    height: int
    width: int
    duration: float | None
    backend: str


@dataclass
class DecodedVideo:
    """Result of :func:`read_video`: ``frames`` ``[T, H, W, 3]`` uint8, the ``indices`` read and the file's ``info``."""

    frames: torch.Tensor
    indices: torch.Tensor
    info: VideoInfo = field(repr=False)


@functools.lru_cache(maxsize=None)
def _torchcodec_usable() -> bool:
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # ImportError, or OSError/RuntimeError when the FFmpeg libraries are missing
        return False
    return True


@functools.lru_cache(maxsize=None)
def _pyav_usable() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def available_backends() -> list[str]:
    """The decoding backends that work in this environment, preferred first."""
    usable = {"torchcodec": _torchcodec_usable(), "pyav": _pyav_usable()}
    return [name for name in BACKENDS if usable[name]]


def _choose_backend(backend: str | None) -> str:
    backends = available_backends()
    if backend is None:
        if not backends:
            raise ImportError(
                "no video decoding backend is available: install torchcodec (with FFmpeg) or PyAV (`pip install av`)"
            )
        return backends[0]
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if backend not in backends:
        raise ImportError(f"the {backend!r} video backend is not usable here; available: {backends or 'none'}")
    return backend


def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a path to a video file, got {type(path).__name__}")
    path = os.fspath(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    if Path(path).stat().st_size == 0:
        raise VideoDecodingError(f"{path} is empty (0 bytes); it is not a video")
    return path


def _check_streams_with_pyav(path: str) -> None:
    """Clear errors for corrupt and audio-only files, whichever backend decodes afterwards."""
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise VideoDecodingError(
            f"{path} could not be opened as a video ({error}); the file is corrupt or not a video container"
        ) from error
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            if "audio" in kinds:
                raise VideoDecodingError(
                    f"{path} has no video stream (streams found: {', '.join(kinds)}); it looks like an audio-only "
                    "file. Video models need a file with a video track."
                )
            raise VideoDecodingError(
                f"{path} has no video stream (streams found: {', '.join(kinds)}); the file is truncated, corrupt or "
                "not a video"
            )


# ----------------------------------------------------------------------------------------------------- torchcodec


def _torchcodec_decoder(path: str):
    from torchcodec.decoders import VideoDecoder

    try:
        return VideoDecoder(path, seek_mode="exact", dimension_order="NHWC")
    except Exception as error:  # torchcodec raises ValueError/RuntimeError with FFmpeg's message
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        lowered = str(error).lower()
        if "could not open" in lowered or "invalid data" in lowered:
            raise VideoDecodingError(
                f"{path} could not be opened as a video ({message}); the file is corrupt or not a video container"
            ) from error
        if "video stream" in lowered:
            raise VideoDecodingError(
                f"{path} has no video stream; it looks like an audio-only file. Video models need a file with a "
                "video track."
            ) from error
        raise VideoDecodingError(
            f"{path} could not be decoded as a video ({message}); the file is truncated or corrupt"
        ) from error


def _torchcodec_info(decoder) -> VideoInfo:
    meta = decoder.metadata
    return VideoInfo(
        num_frames=int(meta.num_frames or 0),
        fps=float(meta.average_fps) if meta.average_fps else None,
        height=int(meta.height),
        width=int(meta.width),
        duration=float(meta.duration_seconds) if meta.duration_seconds else None,
        backend="torchcodec",
    )


# ----------------------------------------------------------------------------------------------------------- PyAV


def _pyav_info(path: str) -> VideoInfo:
    import av

    try:
        return _pyav_info_unchecked(path)
    except av.error.FFmpegError as error:
        raise VideoDecodingError(
            f"{path}: reading the video stream failed ({error}); the file is truncated or corrupt"
        ) from error


def _pyav_info_unchecked(path: str) -> VideoInfo:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        num_frames = int(stream.frames or 0)
        if num_frames == 0:  # some containers (webm, some mkv) carry no frame count: count the decoded frames
            num_frames = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if duration is None and fps:
            duration = num_frames / fps
        return VideoInfo(num_frames, fps, int(stream.height), int(stream.width), duration, "pyav")


def _pyav_seek_plan(container, stream, first_wanted: int):
    """Where to start decoding for frames from ``first_wanted`` on, from a scan of the packets (no decoding).

    Returns ``(keyframe_pts, {pts: frame index})`` when a keyframe after the start precedes ``first_wanted``, else
    None (decode from the start). Frame ``i`` is the ``i``-th presentation time stamp, so the indices are exact for
    variable frame rates and B-frames alike; files without time stamps are decoded from the start.
    """
    stamps, keyframes = [], []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the flush packet
        if packet.pts is None:
            return None
        stamps.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    stamps.sort()
    if first_wanted >= len(stamps) or len(set(stamps)) != len(stamps):
        return None
    target = stamps[first_wanted]
    usable = [pts for pts in keyframes if pts <= target]
    if not usable or max(usable) <= stamps[0]:
        return None  # the nearest keyframe is the first frame: nothing to skip
    return max(usable), {pts: i for i, pts in enumerate(stamps)}


def _pyav_decode_from(container, stream, plan, wanted: set[int], last: int, found: dict) -> bool:
    """Decode after seeking to ``plan``'s keyframe; False when the time stamps do not match the scan (then the
    caller decodes from the start)."""
    keyframe_pts, index_of = plan
    container.seek(keyframe_pts, stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        i = index_of.get(frame.pts)
        if i is None:
            found.clear()
            return False
        if i in wanted:
            found[i] = torch.from_numpy(frame.to_ndarray(format="rgb24"))
        if i >= last:
            break
    return True


def _pyav_frames(path: str, indices: torch.Tensor) -> torch.Tensor:
    import av

    wanted = set(indices.tolist())
    last = max(wanted)
    found: dict[int, torch.Tensor] = {}
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            # Seek to the keyframe before the first wanted frame instead of decoding everything before it (a clip in
            # the middle of a 10-s video skips about half of the decoding).
            plan = _pyav_seek_plan(container, stream, min(wanted)) if min(wanted) > 0 else None
            if plan is None or not _pyav_decode_from(container, stream, plan, wanted, last, found):
                container.seek(0)
                for i, frame in enumerate(container.decode(stream)):
                    if i in wanted:
                        found[i] = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                    if i >= last:
                        break
    except av.error.FFmpegError as error:
        if not found:
            raise VideoDecodingError(f"{path}: decoding failed ({error}); the file is corrupt") from error
        logger.warning("%s: decoding stopped early (%s); using the frames read so far", path, error)
    return _gather(path, indices, found)


def _gather(path: str, indices: torch.Tensor, found: dict[int, torch.Tensor]) -> torch.Tensor:
    if not found:
        raise VideoDecodingError(f"{path}: no frame could be decoded; the file is corrupt or has no video frames")
    available = sorted(found)
    missing = [i for i in set(indices.tolist()) if i not in found]
    if missing:
        logger.warning(
            "%s: the header announces more frames than could be decoded (%d readable); frames %s are replaced by "
            "the last readable frame",
            path,
            available[-1] + 1,
            sorted(missing)[:8],
        )
    return torch.stack([found[i] if i in found else found[available[-1]] for i in indices.tolist()])


# ------------------------------------------------------------------------------------------------------ public API


def probe_video(path: str | os.PathLike, backend: str | None = None) -> VideoInfo:
    """Frame count, frame rate and size of a video file, without decoding its frames.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoDecodingError: the file is empty, corrupt, not a video, or has no video stream (audio only).
    """
    path = _check_path(path)
    backend = _choose_backend(backend)
    if _pyav_usable():
        _check_streams_with_pyav(path)
    if backend == "torchcodec":
        return _torchcodec_info(_torchcodec_decoder(path))
    return _pyav_info(path)


def _resolve_indices(
    info: VideoInfo,
    num_frames: int | None,
    sample_rate: float | None,
    fps: float | None,
    frame_indices,
    position: str | float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if callable(frame_indices):
        frame_indices = frame_indices(info)
    if frame_indices is not None:
        if num_frames is not None or sample_rate is not None or fps is not None:
            raise ValueError("give either frame_indices or num_frames/sample_rate/fps, not both")
        indices = torch.as_tensor(frame_indices, dtype=torch.long).flatten()
        if indices.numel() == 0:
            raise ValueError("frame_indices is empty")
        if int(indices.min()) < 0 or int(indices.max()) >= info.num_frames:
            raise IndexError(
                f"frame_indices must lie in [0, {info.num_frames - 1}] for this video of {info.num_frames} frames, "
                f"got range [{int(indices.min())}, {int(indices.max())}]"
            )
        return indices
    if sample_rate is not None and fps is not None:
        raise ValueError("give either sample_rate (frames between samples) or fps (target frame rate), not both")
    if num_frames is None:
        if sample_rate is not None or fps is not None:
            raise ValueError("sample_rate and fps need num_frames (how many frames to take)")
        return torch.arange(info.num_frames)
    if fps is not None:
        if not info.fps:
            raise VideoDecodingError("the video's frame rate is unknown, so fps-based sampling is impossible")
        sample_rate = info.fps / fps
    return clip_frame_indices(info.num_frames, num_frames, sample_rate or 1, position, generator)


def read_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    sample_rate: float | None = None,
    *,
    fps: float | None = None,
    frame_indices=None,
    position: str | float = "center",
    generator: torch.Generator | None = None,
    backend: str | None = None,
) -> DecodedVideo:
    """Decode frames of a video file. See :func:`decode_video` for the arguments.

    Returns:
        :class:`DecodedVideo` with ``frames`` ``[T, H, W, 3]`` uint8 RGB, the source ``indices`` and the ``info``.
    """
    path = _check_path(path)
    backend = _choose_backend(backend)
    if _pyav_usable():
        _check_streams_with_pyav(path)
    if backend == "torchcodec":
        decoder = _torchcodec_decoder(path)
        info = _torchcodec_info(decoder)
    else:
        info = _pyav_info(path)
    if info.num_frames < 1:
        raise VideoDecodingError(f"{path} has a video stream but no frames")
    indices = _resolve_indices(info, num_frames, sample_rate, fps, frame_indices, position, generator)
    if backend == "torchcodec":
        unique = torch.unique(indices)
        try:
            batch = decoder.get_frames_at(indices=unique.tolist()).data  # [U, H, W, C]
        except Exception as error:  # corrupt payload behind a valid header
            raise VideoDecodingError(f"{path}: decoding failed ({error}); the file is corrupt") from error
        frames = _gather(path, indices, {int(i): batch[k] for k, i in enumerate(unique.tolist())})
    else:
        frames = _pyav_frames(path, indices)
    if frames.shape[-1] == 1:  # defensive: backends return RGB, but never hand a model one channel
        frames = frames.expand(*frames.shape[:-1], 3)
    return DecodedVideo(frames=frames.contiguous(), indices=indices, info=info)


def decode_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    sample_rate: float | None = None,
    *,
    fps: float | None = None,
    frame_indices=None,
    position: str | float = "center",
    generator: torch.Generator | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Decode a video file into a ``uint8`` tensor ``[T, H, W, 3]`` (RGB).

    Args:
        path: the video file (any container/codec FFmpeg reads: mp4, webm, mkv, avi...).
        num_frames: frames to return. ``None`` (and no ``frame_indices``) returns every frame.
        sample_rate: distance between returned frames, in source frames (official ``--sampling_rate``: 4 for
            Kinetics). Defaults to 1 (consecutive frames).
        fps: instead of ``sample_rate``, sample the clip at this frame rate (``sample_rate = video_fps / fps``).
        frame_indices: explicit source frame indices (e.g. from :func:`~hf_maskedav.video.uniform_frame_indices`),
            or a function ``VideoInfo -> indices`` called once the file is opened (to sample from the frame count
            without opening the file twice); exclusive with the three arguments above.
        position: where the clip lies in the video: ``"center"``, ``"start"``, ``"end"``, ``"random"`` or a float in
            ``[0, 1]`` (see :func:`~hf_maskedav.video.clip_frame_indices`). Clips longer than the video repeat its
            last frame.
        generator: random generator for ``position="random"``.
        backend: ``"torchcodec"`` or ``"pyav"``; by default torchcodec when usable, PyAV otherwise.

    Grey-scale videos come back as three equal channels, so every model sees RGB.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoDecodingError: empty, corrupt or non-video data, audio-only file, no decodable frame.
        IndexError: ``frame_indices`` outside the video.
    """
    return read_video(
        path,
        num_frames,
        sample_rate,
        fps=fps,
        frame_indices=frame_indices,
        position=position,
        generator=generator,
        backend=backend,
    ).frames
