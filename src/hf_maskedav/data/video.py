"""Video and audio-visual training data: sources (Hub id, local videofolder, CSV lists, files, built-in demo), clip
datasets with repeated sampling, collation, bad-sample accounting.

The pieces, in the order a training script uses them:

1. :func:`load_video_source` opens one split: a Hub dataset id or a local dataset folder (both through
   ``datasets.load_dataset``, so a local folder with ``metadata.csv`` exercises the Hub code path), a ``videofolder``
   (``--data_dir``), a CSV list of paths and labels (the Kinetics layout of the official VideoMAE / MAE-ST /
   SlowFast loaders: ``path label`` per line, or a CSV with a header), plain files, or the built-in
   :class:`~hf_maskedav.data.demo_video.DemoVideoDataset`. Video columns are cast to ``Video(decode=False)``:
   decoding happens per sample, where a bad file can be skipped.
2. :class:`VideoClipDataset` decodes each video **once** and cuts ``repeats`` clips from it (repeated sampling, as
   MAE-ST's ``repeat_aug`` and VideoMAE V2's ``num_sample``: decoding, not the model, is usually the bottleneck),
   each with its own random start, crop and flip (:class:`~hf_maskedav.data.video_transforms.VideoClipRecipe`); in
   evaluation it cuts the centred clip, or ``num_clips x num_crops`` views for multi-view testing. With ``audio=`` it
   also cuts the audio window under each clip (from the file's audio track or an audio column).
3. :class:`VideoCollator` folds the clips into one batch ``[videos * clips, T, C, H, W]`` (labels repeated), and
   computes the audio features in the data-loader workers.
4. :class:`VideoBadSampleTracker` counts skipped videos, stops a run where most fail, and reports at the end.
"""

from __future__ import annotations

import csv
import glob
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

from ..video.decoding import VideoDecodingError, read_video
from .audio import BadSampleTracker, LabelSpec, first_good_item, infer_label_spec
from .audio_decoding import BadSampleError, decode_audio
from .cache import DecodedCache
from .demo_video import DemoVideoDataset
from .splits import SplitFilterError, apply_row_filter, is_row_filter, load_split, parse_row_filter
from .video_transforms import VideoClipRecipe

DEMO_VIDEO_DATASET_NAME = "demo"
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv")


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class VideoSource:
    """An opened video dataset split.

    Attributes:
        data: map-style rows (a ``datasets.Dataset`` or the demo dataset).
        video_column: the column holding the video (path, ``{"path", "bytes"}`` dict or bytes).
        labels: how to read the labels (None without labels).
        description: for logs and model cards.
        audio_column: a separate audio column for audio-visual training; None = the video file's audio track.
    """

    data: object
    video_column: str
    labels: LabelSpec | None
    description: str
    audio_column: str | None = None


def _expand_video_files(video_files) -> list[str]:
    if isinstance(video_files, (str, os.PathLike)):
        video_files = [video_files]
    paths = []
    for entry in map(str, video_files):
        if os.path.isdir(entry):
            paths += sorted(p for p in glob.glob(os.path.join(entry, "**", "*"), recursive=True)
                            if p.lower().endswith(VIDEO_EXTENSIONS))
        elif any(ch in entry for ch in "*?["):
            paths += sorted(glob.glob(entry, recursive=True))
        else:
            paths.append(entry)
    if not paths:
        raise ValueError(f"no video files found in {video_files!r}")
    return paths


def _split_csv_line(line: str) -> list[str]:
    if "\t" in line:
        return [field.strip() for field in line.split("\t")]
    if "," in line:
        return [field.strip() for field in next(csv.reader([line]))]
    return line.rsplit(None, 1)  # "path label" (paths may hold spaces; the label may not)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_video_csv(csv_file: str, data_root: str | None = None, video_column: str = "video",
                   label_column: str = "label"):
    """A CSV list of videos as a ``datasets.Dataset`` with ``video_column`` (absolute paths) and ``label_column``.

    Two layouts are read:

    * the Kinetics lists of the official loaders: one ``path label`` per line, separated by a space, a comma or a tab,
      no header (labels are class indices or names);
    * a CSV with a header row: the video column is ``video_column`` or the first of ``path``, ``video``,
      ``file_name``, ``filename``, ``file``; every other column is kept (e.g. ``label``, or ``labels`` as
      ``"a;b"`` for multi-label data).

    Relative paths are resolved against ``data_root`` (default: the CSV's folder).
    """
    import datasets

    root = data_root if data_root is not None else os.path.dirname(os.path.abspath(csv_file))
    with open(csv_file, newline="") as handle:
        rows = [_split_csv_line(line.rstrip("\n")) for line in handle if line.strip()]
    if not rows:
        raise ValueError(f"{csv_file} is empty")
    first = rows[0]
    resolve = lambda p: p if os.path.isabs(p) else os.path.join(root, p)  # noqa: E731
    headerless = len(first) == 1 or _is_int(first[-1]) or os.path.isfile(resolve(first[0]))
    if headerless:
        if any(len(r) > 2 for r in rows):
            raise ValueError(f"{csv_file}: lines without a header must be 'path label' or 'path'")
        columns = {video_column: [resolve(r[0]) for r in rows]}
        if all(len(r) == 2 for r in rows):
            labels = [r[1] for r in rows]
            columns[label_column] = [int(v) for v in labels] if all(_is_int(v) for v in labels) else labels
        return datasets.Dataset.from_dict(columns)
    header, body = first, rows[1:]
    names = [video_column, "path", "video", "file_name", "filename", "file"]
    found = next((n for n in names if n in header), None)
    if found is None:
        raise ValueError(f"{csv_file}: no video column among the header {header}; expected one of {names[1:]} or "
                         f"--video_column")
    columns = {}
    for position, name in enumerate(header):
        values = [r[position] if position < len(r) else None for r in body]
        if name == found:
            columns[video_column] = [resolve(v) for v in values]
        else:
            columns[name] = [int(v) for v in values] if values and all(v is not None and _is_int(v) for v in values) else values
    return datasets.Dataset.from_dict(columns)


def load_video_source(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    data_dir: str | None = None,
    csv_file: str | None = None,
    video_files=None,
    data_root: str | None = None,
    split: str = "train",
    video_column: str = "video",
    label_column: str | None = None,
    label_names: list[str] | None = None,
    multi_label: bool | None = None,
    audio_column: str | None = None,
    cache_dir: str | None = None,
    demo_multi_label: bool = False,
    demo_num_clips: int | None = None,
    demo_seed: int = 0,
    demo_cache_dir: str | None = None,
    demo_options: dict | None = None,
) -> VideoSource:
    """Open one split of a video (or audio-visual) dataset.

    Args:
        dataset_name: a Hub dataset id, a local dataset folder (videos plus ``metadata.csv`` with a ``file_name``
            column: ``datasets`` reads it as a videofolder, the same code path as a Hub id), or ``"demo"`` (the
            built-in moving-shapes dataset; the default when nothing else is given).
        data_dir: a local videofolder (``load_dataset("videofolder", data_dir=...)``; labels from ``metadata.csv``
            or from sub-folder names), or the ``data_dir`` of a Hub dataset.
        csv_file: a CSV list of videos (see :func:`read_video_csv`), one file per split; ``data_root`` resolves its
            relative paths.
        video_files: plain video files, folders or glob patterns (no labels).
        split: the split (datasets split syntax such as ``"train[:90%]"`` works for Hub/folder data), or a row filter
            ``COLUMN=VALUE[,VALUE...]`` / ``COLUMN!=VALUE[,...]`` of the only/``train`` split (or of a CSV list)
            (:mod:`hf_maskedav.data.splits`).
        video_column, label_column: column names (``label_column=None`` for unlabelled pretraining).
        label_names, multi_label: class names / multi-label reading, as for audio (:func:`infer_label_spec`).
        audio_column: a separate audio column for audio-visual data (default: the video files' audio tracks).
        demo_*: size, seed, single/multi-label variant and cache folder of the built-in dataset; ``demo_options``
            other :class:`~hf_maskedav.data.demo_video.DemoVideoDataset` arguments (clip geometry).
    """
    import datasets

    given = [name for name, value in (("video_files", video_files), ("csv_file", csv_file)) if value is not None]
    if len(given) > 1 or (given and (dataset_name not in (None, DEMO_VIDEO_DATASET_NAME) or data_dir)):
        raise ValueError("give one source: a dataset (dataset_name/data_dir), a CSV file, or video files")
    if video_files is not None:
        if label_column is not None:
            raise ValueError("plain video files have no labels; use a CSV list or a videofolder with metadata.csv")
        paths = _expand_video_files(video_files)
        data = datasets.Dataset.from_dict({video_column: paths})
        return VideoSource(data, video_column, None, f"{len(paths)} video files", audio_column)
    if csv_file is not None:
        data = read_video_csv(csv_file, data_root, video_column, label_column or "label")
        row_filter = parse_row_filter(split)  # a CSV list is one split: a row filter applies to it, a name is ignored
        if row_filter is not None:
            data = apply_row_filter(data, row_filter, os.path.basename(csv_file))
        labels = infer_label_spec(data, label_column, label_names, multi_label)
        return VideoSource(data, video_column, labels, f"{os.path.basename(csv_file)} ({len(data)} videos)",
                           audio_column)
    if dataset_name in (None, DEMO_VIDEO_DATASET_NAME) and data_dir is None:
        if is_row_filter(split):
            raise SplitFilterError(f"the built-in demo dataset takes split names, not the row filter {split!r}")
        data = DemoVideoDataset(split, demo_num_clips, demo_seed, multi_label=demo_multi_label, cache_dir=demo_cache_dir,
                                **(demo_options or {}))
        labels = None
        if label_column is not None:
            column = "labels" if demo_multi_label else "label"
            labels = LabelSpec(column, list(data.label_names), demo_multi_label)
        return VideoSource(data, "video", labels, f"built-in demo video ({split}, {len(data)} clips)", audio_column)

    if dataset_name in (None, DEMO_VIDEO_DATASET_NAME):
        data, description = load_split(
            lambda s: datasets.load_dataset("videofolder", data_dir=data_dir, split=s, cache_dir=cache_dir), split,
            f"videofolder {data_dir}")
    else:
        data, description = load_split(
            lambda s: datasets.load_dataset(dataset_name, dataset_config_name, data_dir=data_dir, split=s,
                                            cache_dir=cache_dir),
            split, f"{dataset_name}{'/' + dataset_config_name if dataset_config_name else ''}")
    if video_column not in data.features:
        raise ValueError(f"video column {video_column!r} not found in {description}; its columns are "
                         f"{sorted(data.features)}. Pass --video_column")
    if isinstance(data.features[video_column], datasets.Video):
        data = data.cast_column(video_column, datasets.Video(decode=False))
    if audio_column is not None:
        if audio_column not in data.features:
            raise ValueError(f"audio column {audio_column!r} not found in {description}; its columns are "
                             f"{sorted(data.features)}")
        if isinstance(data.features[audio_column], datasets.Audio):
            data = data.cast_column(audio_column, datasets.Audio(decode=False))
    labels = infer_label_spec(data, label_column, label_names, multi_label)
    return VideoSource(data, video_column, labels, description, audio_column)


# ---------------------------------------------------------------------------------------------------------------------
# Clip dataset
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class AudioWindow:
    """Cut the audio under each video clip (audio-visual training).

    Attributes:
        sampling_rate: rate to decode/resample to (16 kHz for the fbank models).
        clip_samples: window length in samples (the audio model's input length,
            :func:`~hf_maskedav.data.clip_samples_for`). The window is centred on the video clip and moved inside
            the recording when it would stick out; shorter recordings are used whole.
        min_samples: shorter audio is a bad sample (one 25 ms analysis window).
    """

    sampling_rate: int = 16000
    clip_samples: int = 160000
    min_samples: int = 400


def _video_file(value):
    """``(path, temporary)`` for a stored video value: a path, a ``{"path", "bytes"}`` dict, or bytes."""
    if isinstance(value, dict):
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path"):
            value = value["path"]
        else:
            raise BadSampleError(f"video dict with neither 'bytes' nor 'path' (keys: {sorted(value)})")
    if isinstance(value, (bytes, bytearray)):
        handle = tempfile.NamedTemporaryFile(suffix=".video", delete=False)
        with handle:
            handle.write(value)
        return handle.name, True
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value), False
    if value is None:
        raise BadSampleError("missing video (None)")
    raise BadSampleError(f"unsupported video value of type {type(value).__name__}")


class VideoClipDataset(torch.utils.data.Dataset):
    """Map-style video clips: decode once, cut ``repeats`` augmented clips (training) or the evaluation views.

    Every item is one *video*: ``{"pixel_values": [R, T, 3, h, w], "label": ..., "index": int, "bad": [...]}`` (plus
    ``"waveforms"``: R audio windows, with ``audio=``). ``R`` is ``repeats`` in training and ``num_clips * num_crops``
    in evaluation (clip-major). When video ``i`` cannot be used (missing, corrupt, audio-only, no audio track when
    audio is needed, bad label...) the next ones are tried and the reason goes into the item's ``"bad"`` list, so
    batches stay full, processes keep the same number of steps, and the counts survive data-loader workers.

    Randomness (clip starts, crops, flips) comes from ``(seed, epoch, index)``: identical in every worker and after a
    resume.

    Args:
        source: from :func:`load_video_source`.
        recipe: frame sampling, augmentation and normalisation (:func:`~hf_maskedav.data.video_recipe`).
        train: random clips with augmentation; otherwise the evaluation views.
        seed: data seed.
        repeats: clips per decoded video in training (repeated sampling).
        num_clips, num_crops: evaluation views (temporal clips spread over the video x spatial crops).
        audio: an :class:`AudioWindow` to also return the audio under each clip.
        backend: video decoding backend (``"torchcodec"``, ``"pyav"`` or None for the best available).
        max_consecutive_bad: this many failures in a row stop with an error (most of the data is unreadable).
        decoded_cache_mb: with ``audio=``, keep up to this many MiB of decoded audio tracks in memory (each track
            decoded once per process, :class:`~hf_maskedav.data.cache.DecodedCache`); 0: decode every time. The
            frames are decoded per clip (only the frames the clips use).
    """

    def __init__(
        self,
        source: VideoSource,
        recipe: VideoClipRecipe,
        train: bool = True,
        seed: int = 0,
        repeats: int = 1,
        num_clips: int = 1,
        num_crops: int = 1,
        audio: AudioWindow | None = None,
        backend: str | None = None,
        max_consecutive_bad: int = 64,
        decoded_cache_mb: float = 0.0,
    ):
        if repeats < 1 or num_clips < 1 or num_crops < 1:
            raise ValueError(f"repeats, num_clips and num_crops must be >= 1, got {repeats}, {num_clips}, {num_crops}")
        self.source = source
        self.data = source.data
        self.recipe = recipe
        self.train = train
        self.seed = seed
        self.repeats = repeats
        self.num_clips, self.num_crops = num_clips, num_crops
        self.audio = audio
        self.backend = backend
        self.max_consecutive_bad = max_consecutive_bad
        self.audio_cache = DecodedCache(decoded_cache_mb) if audio is not None else None
        self.epoch = 0

    @property
    def clips_per_video(self) -> int:
        return self.repeats if self.train else self.num_clips * self.num_crops

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        """Called by accelerate's data loader at each epoch: changes the random clips."""
        self.epoch = epoch

    def _clips(self, path: str, rng: np.random.Generator | None):
        """Decode the union of the clips' frames once; return ``(pixel_values, clip frame indices, fps)``."""
        recipe, found = self.recipe, {}

        def choose(info):
            found["info"] = info
            if self.train:
                chosen = torch.stack([recipe.train_indices(info.num_frames, info.fps, rng) for _ in range(self.repeats)])
            else:
                chosen = recipe.eval_indices(info.num_frames, info.fps, self.num_clips)
            found["indices"] = chosen
            return chosen.flatten()

        frames = read_video(path, frame_indices=choose, backend=self.backend).frames  # [R*T, H, W, 3]
        indices = found["indices"]
        frames = frames.view(indices.shape[0], indices.shape[1], *frames.shape[1:])
        if self.train:
            pixel_values = torch.stack([recipe.train_clip(clip, rng) for clip in frames])
        else:
            pixel_values = torch.cat([recipe.eval_clip(clip, self.num_crops) for clip in frames])
        return pixel_values, indices, found["info"].fps

    def _audio_windows(
        self, example: dict, path: str, indices: torch.Tensor, fps: float | None, position: int | None
    ) -> list[torch.Tensor]:
        spec = self.audio
        value = example[self.source.audio_column] if self.source.audio_column else path
        if self.source.audio_column and self.source.audio_column not in example:
            raise BadSampleError(f"example has no audio column {self.source.audio_column!r}")
        waveform = self.audio_cache.get(position, lambda: decode_audio(value, spec.sampling_rate))
        if waveform.numel() < spec.min_samples:
            raise BadSampleError(f"{path}: only {waveform.numel()} audio samples")
        windows = []
        for clip in indices:
            if waveform.numel() <= spec.clip_samples:
                window = waveform
            else:
                centre = float(clip.float().mean() + 0.5) / (fps or 1.0) * spec.sampling_rate
                start = int(round(centre - spec.clip_samples / 2))
                start = min(max(start, 0), waveform.numel() - spec.clip_samples)
                window = waveform[start : start + spec.clip_samples]
            windows += [window] * (1 if self.train else self.num_crops)
        return windows

    def make(self, example: dict, rng: np.random.Generator | None, position: int | None = None) -> dict:
        """One video row -> item (raises :class:`BadSampleError` for a video that cannot be used); ``position``: the
        row's index, the key of the decoded-audio cache."""
        column = self.source.video_column
        if column not in example:
            raise BadSampleError(f"example has no video column {column!r} (keys: {sorted(example)})")
        path, temporary = _video_file(example[column])
        try:
            try:
                pixel_values, indices, fps = self._clips(path, rng)
            except (VideoDecodingError, FileNotFoundError, IndexError, RuntimeError) as error:
                raise BadSampleError(f"{path}: {error}") from error
            item = {"pixel_values": pixel_values}
            if self.audio is not None:
                item["waveforms"] = self._audio_windows(example, path, indices, fps, position)
        finally:
            if temporary:
                os.unlink(path)
        if self.source.labels is not None:
            item["label"] = self.source.labels.encode(example.get(self.source.labels.column))
        return item

    def __getitem__(self, index: int) -> dict:
        return first_good_item(self, index, "video", "video")


# ---------------------------------------------------------------------------------------------------------------------
# Collation and bad-sample accounting
# ---------------------------------------------------------------------------------------------------------------------


class VideoCollator:
    """Batch videos: fold their clips into ``pixel_values [videos * clips, T, C, H, W]`` (clips of a video adjacent),
    repeat the labels, and compute the audio features (``input_values``) of audio-visual items.

    Args:
        labels: the source's :class:`LabelSpec` (None without labels). Single-label batches get ``labels [B*R]``
            class indices; multi-label ones multi-hot ``labels [B*R, C]`` floats.
        feature_extractor: the audio feature extractor (an ``AudioMAEFeatureExtractor``) for items with
            ``"waveforms"``.
    """

    def __init__(self, labels: LabelSpec | None = None, feature_extractor=None):
        self.labels = labels
        self.feature_extractor = feature_extractor

    def __call__(self, items: list[dict]) -> dict:
        clips = items[0]["pixel_values"].shape[0]
        batch = {"pixel_values": torch.cat([item["pixel_values"] for item in items])}
        if self.labels is not None:
            if self.labels.multi_label:
                targets = torch.zeros(len(items), self.labels.num_labels)
                for row, item in enumerate(items):
                    targets[row, item["label"]] = 1.0
            else:
                targets = torch.tensor([item["label"] for item in items], dtype=torch.long)
            batch["labels"] = targets.repeat_interleave(clips, dim=0)
        if "waveforms" in items[0]:
            if self.feature_extractor is None:
                raise ValueError("audio-visual items need a feature_extractor in the VideoCollator")
            waveforms = [wave for item in items for wave in item["waveforms"]]
            batch["input_values"] = self.feature_extractor(
                waveforms, sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt"
            )["input_values"]
        batch["video_index"] = torch.tensor([item["index"] for item in items]).repeat_interleave(clips)
        batch["clips_per_video"] = clips
        batch["num_videos"] = len(items)
        batch["num_bad"] = torch.tensor(sum(len(item["bad"]) for item in items))
        batch["bad_samples"] = [reason for item in items for reason in item["bad"]]
        return batch


class VideoBadSampleTracker(BadSampleTracker):
    """:class:`~hf_maskedav.data.BadSampleTracker` counting *videos* (a batch's ``num_videos``), whatever the
    number of clips cut from each."""

    def update(self, batch: dict) -> None:
        reasons = batch.get("bad_samples") or []
        self.good += int(batch["num_videos"])
        self.bad += len(reasons)
        room = self.keep_examples - len(self.examples)
        if room > 0:
            self.examples.extend(reasons[:room])
        self.check()


__all__ = [
    "DEMO_VIDEO_DATASET_NAME",
    "VIDEO_EXTENSIONS",
    "AudioWindow",
    "VideoBadSampleTracker",
    "VideoClipDataset",
    "VideoCollator",
    "VideoSource",
    "load_video_source",
    "read_video_csv",
]
