"""MAViL processor: one media file with an audio and a video track (or two arrays) -> ``input_values`` + ``pixel_values``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from ...video import VideoDecodingError
from ...video.frames import is_video_path

MODALITY_NAMES = ("audio", "video")


class MissingStreamError(ValueError):
    """A media file lacks the audio or video track a requested modality needs."""


def media_streams(path: str | os.PathLike) -> set[str]:
    """The kinds of stream (``"audio"``, ``"video"``...) a media file holds."""
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"media file not found: {path}")
    if os.path.getsize(path) == 0:
        raise VideoDecodingError(f"{path} is empty (0 bytes); it is not a media file")
    try:
        with av.open(path) as container:
            return {stream.type for stream in container.streams}
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise VideoDecodingError(f"{path} could not be opened as a media file ({error}); is it corrupt?") from error


def read_audio_track(path: str | os.PathLike, sampling_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """Decode the first audio track of a media file to a mono float32 waveform.

    Channels are averaged (as the MAViL expert does); with ``sampling_rate`` the waveform is resampled to it
    (torchaudio's band-limited resampler). Returns ``(waveform [S], sampling_rate)``.
    """
    import av

    path = os.fspath(path)
    chunks, rate = [], None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise MissingStreamError(f"{path} has no audio track (streams: {', '.join(kinds)})")
            stream = container.streams.audio[0]
            # float planar at the file's own rate and channel count; channels are averaged below
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(torch.from_numpy(out.to_ndarray().copy()))  # [channels, samples]
            for out in resampler.resample(None):
                chunks.append(torch.from_numpy(out.to_ndarray().copy()))
            rate = int(stream.rate)
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    except av.error.FFmpegError as error:
        raise VideoDecodingError(f"{path}: decoding its audio track failed ({error})") from error
    if not chunks:
        raise MissingStreamError(f"{path} has an audio track without decodable samples")
    waveform = torch.cat(chunks, dim=1).float().mean(dim=0)  # [S]
    from types import SimpleNamespace

    from ...data.audio_decoding import trim_to_stream_duration

    # the codec's last frame is padded (2.000 s of AAC decodes to 2.048 s): keep the stream's duration
    waveform = trim_to_stream_duration(waveform, SimpleNamespace(duration_seconds=duration), rate)
    if sampling_rate is not None and sampling_rate != rate:
        import torchaudio

        waveform = torchaudio.functional.resample(waveform, rate, sampling_rate)
        rate = sampling_rate
    return waveform, rate


def _as_list(value) -> list:
    if value is None:
        return []
    if is_video_path(value):
        return [value]
    return list(value)


class MAViLProcessor(ProcessorMixin):
    r"""Processor of MAViL: :class:`~hf_maskedav.AudioMAEFeatureExtractor` for the audio (Kaldi fbank, 1024 frames x
    128 mel bins, AudioSet statistics) and :class:`MAViLVideoProcessor` for the frames (first 4 s at 2 fps, 224x224).

    Call it with

    * one media path or a list of them (an .mp4 with an audio track, as AudioSet/VGGSound clips are): both tracks are
      decoded, the audio resampled to the feature extractor's rate and averaged over channels; or
    * ``audio=`` (waveforms, with ``sampling_rate``) and/or ``videos=`` (frames, with ``video_fps`` when known).

    Both modalities are required unless ``modalities`` asks for one (``modalities="audio"``/``"video"``), so a file
    without an audio or video track gets a clear error instead of a silently one-sided input.

    Returns a ``BatchFeature`` with ``input_values`` ``[N, 1024, 128]`` and/or ``pixel_values`` ``[N, 8, 3, 224, 224]``.
    """

    def __init__(self, feature_extractor, video_processor):
        super().__init__(feature_extractor, video_processor)

    def __call__(
        self,
        media: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        audio=None,
        videos=None,
        sampling_rate: int | None = None,
        video_fps: float | Sequence[float] | None = None,
        modalities: str | Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            media: path(s) of media files with the tracks ``modalities`` needs.
            audio: waveform(s) (1-D arrays/tensors or a list of them) when no ``media`` is given.
            videos: video(s) as arrays ``[T, H, W, 3]``/``[T, 3, H, W]``, lists of frames, or paths.
            sampling_rate: rate of ``audio``; resampled to the feature extractor's rate when different.
            video_fps: frame rate of the ``videos`` arrays (one value or one per video); without it the frames are
                taken as already at 2 fps.
            modalities: ``"audio"``, ``"video"`` or both (default).
            return_tensors: ``"pt"`` (default) or ``"np"``.
            kwargs: passed to the video processor (e.g. ``num_frames``).
        """
        modalities = self._modalities(modalities)
        audio_clips, video_items, metadata = [], [], None
        if media is not None:
            if audio is not None or videos is not None:
                raise ValueError("pass either media files or audio=/videos= arrays, not both")
            for path in _as_list(media):
                streams = media_streams(path)
                for modality in modalities:
                    if modality not in streams:
                        other = [m for m in MODALITY_NAMES if m != modality][0]
                        raise MissingStreamError(
                            f"{os.fspath(path)} has no {modality} track (streams: {', '.join(sorted(streams)) or 'none'}); "
                            f"to use only its {other}, pass modalities='{other}'"
                        )
                if "audio" in modalities:
                    audio_clips.append(read_audio_track(path, self.feature_extractor.sampling_rate)[0])
                if "video" in modalities:
                    video_items.append(os.fspath(path))
            rate = self.feature_extractor.sampling_rate
        else:
            if "audio" in modalities:
                if audio is None:
                    raise ValueError("no audio given; pass audio=... (and sampling_rate), or modalities='video'")
                if sampling_rate is None:
                    raise ValueError("pass the sampling_rate of the audio")
                audio_clips = self._resample(audio, sampling_rate)
            if "video" in modalities:
                if videos is None:
                    raise ValueError("no video given; pass videos=..., or modalities='audio'")
                video_items = videos
                if video_fps is not None:
                    count = len(_as_list(videos)) if not hasattr(videos, "ndim") else (videos.shape[0] if videos.ndim == 5 else 1)
                    fps = list(video_fps) if isinstance(video_fps, (list, tuple)) else [video_fps] * count
                    metadata = [{"fps": float(f)} for f in fps]
            rate = self.feature_extractor.sampling_rate

        data = {}
        if "audio" in modalities:
            features = self.feature_extractor(audio_clips, sampling_rate=rate, return_tensors="pt")
            data["input_values"] = features["input_values"]
        if "video" in modalities:
            pixels = self.video_processor(video_items, video_metadata=metadata, return_tensors="pt", **kwargs)
            data["pixel_values"] = pixels["pixel_values"]
        if "input_values" in data and "pixel_values" in data and len(data["input_values"]) != len(data["pixel_values"]):
            raise ValueError(
                f"got {len(data['input_values'])} audio clips but {len(data['pixel_values'])} videos; they must pair up"
            )
        if return_tensors in ("np", "numpy"):
            data = {k: v.cpu().numpy() for k, v in data.items()}
        elif return_tensors not in ("pt", "torch", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        return BatchFeature(data)

    @staticmethod
    def _modalities(modalities) -> tuple[str, ...]:
        if modalities is None:
            return MODALITY_NAMES
        if isinstance(modalities, str):
            modalities = (modalities,)
        modalities = tuple(dict.fromkeys(modalities))
        unknown = [m for m in modalities if m not in MODALITY_NAMES]
        if unknown or not modalities:
            raise ValueError(f"modalities must be 'audio', 'video' or both, got {list(modalities)}")
        return modalities

    def _resample(self, audio, sampling_rate: int) -> list[torch.Tensor]:
        from ...audio import prepare_waveforms

        clips = prepare_waveforms(audio, downmix_clips=True)
        target = self.feature_extractor.sampling_rate
        if sampling_rate == target:
            return clips
        import torchaudio

        return [torchaudio.functional.resample(clip, sampling_rate, target) for clip in clips]

    @property
    def model_input_names(self) -> list[str]:
        return ["input_values", "pixel_values"]


__all__ = ["MAViLProcessor", "MissingStreamError", "media_streams", "read_audio_track"]
