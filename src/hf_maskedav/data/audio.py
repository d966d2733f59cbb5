"""Audio training data: sources (Hub id, local audiofolder, plain files, built-in demo), clip datasets, collation.

The pieces, in the order a training script uses them:

1. :func:`load_audio_source` opens the data: a Hub dataset id or a local dataset folder (both through
   ``datasets.load_dataset``, so a local folder with ``metadata.csv`` exercises the same code path as a Hub id),
   plain audio files, or the built-in :class:`~hf_maskedav.data.demo_audio.DemoAudioDataset`. Audio columns are
   cast to ``Audio(decode=False)``: decoding happens later, per sample, where a bad file can be skipped.
2. :class:`AudioClipDataset` (map-style) or :class:`StreamingAudioClipDataset` (iterable, sharded per process)
   decode, resample to 16 kHz, down-mix to mono and crop each clip, skipping bad samples and recording why.
3. :class:`AudioCollator` batches clips, optionally mixes them (mixup), and runs the feature extractor on the whole
   batch (in the data-loader workers), or leaves the waveforms for :func:`featurize` to turn into features on the
   training device.
4. :class:`BadSampleTracker` counts the skipped samples over the run, stops it with a clear error when most samples
   fail, and writes the report at the end.
"""

from __future__ import annotations

import glob
import os
import uuid
from dataclasses import dataclass, field
from itertools import count

import numpy as np
import torch

from .audio_decoding import BadSampleError, crop_or_pad, decode_audio
from .cache import DecodedCache
from .demo_audio import DemoAudioDataset
from .splits import SplitFilterError, is_row_filter, load_split

DEMO_DATASET_NAME = "demo"


# ---------------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class LabelSpec:
    """How to read the labels of a source: the column, the class names, single- or multi-label."""

    column: str
    names: list[str]
    multi_label: bool = False
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._index = {name: i for i, name in enumerate(self.names)}

    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def _one(self, value) -> int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < len(self.names):
                raise BadSampleError(f"label {value} is out of range for {len(self.names)} classes")
            return int(value)
        if isinstance(value, str):
            if value not in self._index:
                raise BadSampleError(f"unknown label {value!r} (not among the {len(self.names)} class names)")
            return self._index[value]
        raise BadSampleError(f"label {value!r} is neither a class index nor a class name")

    def encode(self, value) -> int | list[int]:
        """A stored label (index, name, list of them, or a ``;``/``,``-separated string) -> index or index list."""
        if value is None:
            raise BadSampleError(f"missing label in column {self.column!r}")
        if not self.multi_label:
            return self._one(value)
        return sorted({self._one(v) for v in _split_names(value)})


def _label_feature_kind(feature):
    """(is ClassLabel, is list, names) for a datasets feature, across datasets versions."""
    from datasets import ClassLabel

    if isinstance(feature, ClassLabel):
        return True, False, list(feature.names)
    inner = getattr(feature, "feature", None)
    if inner is not None:
        if isinstance(inner, ClassLabel):
            return True, True, list(inner.names)
        return False, True, None
    if isinstance(feature, list) and feature and isinstance(feature[0], ClassLabel):
        return True, True, list(feature[0].names)
    return False, isinstance(feature, list), None


def _split_names(value):
    if isinstance(value, str):
        return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    return value if isinstance(value, (list, tuple)) else [value]


def infer_label_spec(
    data, label_column: str | None, label_names: list[str] | None = None, multi_label: bool | None = None
) -> LabelSpec | None:
    """Class names and single/multi-label from the dataset's features, or by reading the label column.

    ``ClassLabel`` (or a list of them) gives the names directly. Otherwise the column is read once (map-style data
    only; it does not touch the audio): string labels become sorted class names, integer labels ``0..max``. Streaming
    data without ``ClassLabel`` needs ``label_names``. List-valued columns are multi-label; ``multi_label=True``
    also reads ``"a;b"``/``"a,b"`` strings as several labels.
    """
    if label_column is None:
        return None
    if isinstance(data, DemoAudioDataset):
        expected = "labels" if data.multi_label else "label"
        if label_column != expected:
            raise ValueError(f"the demo dataset's label column is {expected!r}, not {label_column!r}")
        return LabelSpec(label_column, list(data.label_names), data.multi_label)
    features = getattr(data, "features", None)
    if features is not None and label_column not in features:
        raise ValueError(
            f"label column {label_column!r} not found; the dataset has columns {sorted(features)}. "
            "Pass --label_column with one of them"
        )
    is_class_label, is_list, names = (
        _label_feature_kind(features[label_column]) if features is not None else (False, False, None)
    )
    if multi_label is not None:
        is_list = multi_label
    if label_names:
        return LabelSpec(label_column, list(label_names), is_list)
    if is_class_label:
        return LabelSpec(label_column, names, is_list)
    if not hasattr(data, "__len__"):
        raise ValueError(
            f"cannot infer the class names of the streamed column {label_column!r} (it is not a ClassLabel); "
            "pass them with --label_names"
        )
    values = list(data[label_column]) if hasattr(data, "column_names") else [row[label_column] for row in data]
    multi = is_list or (multi_label is None and any(isinstance(v, (list, tuple)) for v in values))
    flat = [x for v in values for x in (_split_names(v) if multi else [v]) if x is not None]
    if not flat:
        raise ValueError(f"label column {label_column!r} is empty")
    if all(isinstance(x, str) for x in flat):
        names = sorted(set(flat))
    elif all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in flat):
        if min(flat) < 0:
            raise ValueError(f"label column {label_column!r} holds negative class indices")
        names = [str(i) for i in range(int(max(flat)) + 1)]
    else:
        raise ValueError(f"label column {label_column!r} mixes strings and numbers; pass --label_names")
    return LabelSpec(label_column, names, multi)


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".webm", ".mp4")


@dataclass
class AudioSource:
    """An opened audio dataset split with its audio column and labels (``labels`` is None without labels)."""

    data: object
    audio_column: str
    labels: LabelSpec | None
    streaming: bool
    description: str


def _expand_files(audio_files) -> list[str]:
    if isinstance(audio_files, (str, os.PathLike)):
        audio_files = [audio_files]
    paths = []
    for entry in audio_files:
        entry = str(entry)
        if os.path.isdir(entry):
            found = sorted(
                p
                for p in glob.glob(os.path.join(entry, "**", "*"), recursive=True)
                if p.lower().endswith(AUDIO_EXTENSIONS)
            )
        elif any(ch in entry for ch in "*?["):
            found = sorted(glob.glob(entry, recursive=True))
        else:
            found = [entry]
        paths.extend(found)
    if not paths:
        raise ValueError(f"no audio files found in {audio_files!r}")
    return paths


def load_audio_source(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    data_dir: str | None = None,
    audio_files=None,
    split: str = "train",
    audio_column: str = "audio",
    label_column: str | None = None,
    label_names: list[str] | None = None,
    multi_label: bool | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
    demo_multi_label: bool = False,
    demo_num_clips: int | None = None,
    demo_seed: int = 0,
    demo_duration: float = 1.0,
) -> AudioSource:
    """Open one split of an audio dataset.

    Args:
        dataset_name: a Hub dataset id (``"ashraq/esc50"``, ``"google/speech_commands"``...), a local dataset folder
            (an audiofolder: audio files plus an optional ``metadata.csv`` with a ``file_name`` column), or
            ``"demo"`` (the built-in synthetic dataset; also the default when nothing is given).
        dataset_config_name: the dataset's configuration (``"v0.02"`` for speech_commands...).
        data_dir: a local audiofolder when no ``dataset_name`` is given (``load_dataset("audiofolder", ...)``), or
            the ``data_dir`` argument of a Hub dataset.
        audio_files: plain audio files (paths, directories searched recursively, or glob patterns), no labels.
        split: the split to open (datasets split syntax such as ``"train[:90%]"`` works for map-style data), or a row
            filter of the dataset's only/``train`` split: ``COLUMN=VALUE[,VALUE...]`` or ``COLUMN!=VALUE[,...]``
            (:mod:`hf_maskedav.data.splits`).
        audio_column, label_column: column names; ``label_column=None`` for unlabelled pretraining.
        label_names: class names, needed for streamed data whose labels are not a ``ClassLabel``.
        multi_label: force multi-label (True) or single-label (False) reading of the label column; by default
            list-valued columns are multi-label.
        streaming: stream the dataset instead of downloading/preparing it (Hub ids and local folders).
        demo_*: size, seed, clip length and single/multi-label variant of the built-in dataset.
    """
    import datasets

    if audio_files is not None:
        if dataset_name or data_dir:
            raise ValueError("give either audio_files or a dataset (dataset_name/data_dir), not both")
        if label_column is not None:
            raise ValueError("plain audio files have no labels; use an audiofolder with metadata.csv for labels")
        paths = _expand_files(audio_files)
        data = datasets.Dataset.from_dict({audio_column: paths}).cast_column(audio_column, datasets.Audio(decode=False))
        if streaming:
            data = data.to_iterable_dataset(num_shards=min(len(paths), 64))
        return AudioSource(data, audio_column, None, streaming, f"{len(paths)} audio files")

    if dataset_name in (None, DEMO_DATASET_NAME) and data_dir is None:
        if is_row_filter(split):
            raise SplitFilterError(f"the built-in demo dataset takes split names, not the row filter {split!r}")
        if streaming:
            raise ValueError("the built-in demo dataset is generated on the fly; it cannot be streamed")
        data = DemoAudioDataset(split, demo_num_clips, demo_seed, duration=demo_duration, multi_label=demo_multi_label)
        if label_column is not None:
            label_column = "labels" if demo_multi_label else "label"
        labels = infer_label_spec(data, label_column)
        return AudioSource(data, "audio", labels, False, f"built-in demo audio ({split}, {len(data)} clips)")

    if dataset_name is None:
        data, description = load_split(
            lambda s: datasets.load_dataset(
                "audiofolder", data_dir=data_dir, split=s, streaming=streaming, cache_dir=cache_dir
            ),
            split,
            f"audiofolder {data_dir}",
        )
    else:
        data, description = load_split(
            lambda s: datasets.load_dataset(
                dataset_name, dataset_config_name, data_dir=data_dir, split=s, streaming=streaming, cache_dir=cache_dir
            ),
            split,
            f"{dataset_name}{'/' + dataset_config_name if dataset_config_name else ''}",
        )
    features = data.features
    if features is not None and audio_column not in features:
        raise ValueError(
            f"audio column {audio_column!r} not found in {description}; its columns are {sorted(features)}. "
            "Pass --audio_column"
        )
    data = data.cast_column(audio_column, datasets.Audio(decode=False))
    labels = infer_label_spec(data, label_column, label_names, multi_label)
    return AudioSource(data, audio_column, labels, streaming, description)


# ---------------------------------------------------------------------------------------------------------------------
# Clip datasets
# ---------------------------------------------------------------------------------------------------------------------


class _ClipMaker:
    """Decode + check + crop one raw example; shared by the map-style and the streaming dataset."""

    def __init__(
        self, source: AudioSource, clip_samples: int, sampling_rate: int, min_samples: int,
        cache: DecodedCache | None = None,
    ):
        self.audio_column = source.audio_column
        self.labels = source.labels
        self.clip_samples = clip_samples
        self.sampling_rate = sampling_rate
        self.min_samples = min_samples
        self.cache = cache if cache is not None else DecodedCache(0)

    def __call__(self, example: dict, generator: np.random.Generator | None, position: int | None = None) -> dict:
        """``position``: the row's index in a map-style dataset, the key of the decoded-clip cache."""
        if self.audio_column not in example:
            raise BadSampleError(f"example has no audio column {self.audio_column!r} (keys: {sorted(example)})")
        waveform = self.cache.get(position, lambda: decode_audio(example[self.audio_column], self.sampling_rate))
        if waveform.numel() < self.min_samples:
            raise BadSampleError(
                f"{_where(example, self.audio_column)}: only {waveform.numel()} samples, fewer than the "
                f"{self.min_samples} of one analysis window"
            )
        item = {"waveform": crop_or_pad(waveform, self.clip_samples, generator)}
        # the clip as it will be every epoch (used whole, or cut at its start): its features can be kept
        item["fixed"] = generator is None or waveform.shape[-1] <= self.clip_samples
        if self.labels is not None:
            item["label"] = self.labels.encode(example.get(self.labels.column))
        return item


def _where(example: dict, audio_column: str) -> str:
    value = example.get(audio_column)
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    return str(example.get("id", "<sample>"))


class AudioClipDataset(torch.utils.data.Dataset):
    """Map-style clips: decode, resample, mono, crop (random in training), skipping bad samples.

    When sample ``i`` is bad, the next ones (``i+1``, ``i+2``...) are tried and the failure is recorded in the
    returned item's ``"bad"`` list, so batches stay full, every process keeps the same number of steps, and the
    counts survive data-loader workers. ``max_consecutive_bad`` failures in a row stop with an error: most of the
    data is unreadable.

    Args:
        source: from :func:`load_audio_source` (not streaming).
        clip_samples: maximum clip length in samples (longer clips are cropped).
        train: random crops (seeded by ``(seed, epoch, index)``, so identical in every worker and after a resume)
            instead of the first ``clip_samples``.
        seed: data seed.
        sampling_rate: target sampling rate.
        min_samples: shorter decoded clips are bad samples (the feature extractor needs one 25 ms window).
        decoded_cache_mb: keep up to this many MiB of decoded clips in memory, so each file is decoded once per
            process rather than once per epoch (:class:`~hf_maskedav.data.cache.DecodedCache`); 0: decode every time.
        share_decoded_with: another ``AudioClipDataset`` over the same rows (the same ``source``, the same
            ``sampling_rate``) whose decoded-clip cache this one uses instead of its own (``decoded_cache_mb`` is then
            ignored): e.g. whole training clips for a probe beside the cropped ones for training, each file decoded
            once for both.
    """

    def __init__(
        self,
        source: AudioSource,
        clip_samples: int,
        train: bool = True,
        seed: int = 0,
        sampling_rate: int = 16000,
        min_samples: int = 400,
        max_consecutive_bad: int = 64,
        decoded_cache_mb: float = 0.0,
        share_decoded_with: AudioClipDataset | None = None,
    ):
        if source.streaming:
            raise ValueError("AudioClipDataset needs map-style data; use StreamingAudioClipDataset for streaming")
        if share_decoded_with is not None and (
            share_decoded_with.data is not source.data or share_decoded_with.make.sampling_rate != sampling_rate
        ):
            raise ValueError(
                "share_decoded_with must be a dataset over the same rows (the same source) at the same sampling rate: "
                "the decoded-clip cache is keyed by row position and holds resampled clips"
            )
        self.source = source
        self.data = source.data
        self.cache = share_decoded_with.cache if share_decoded_with is not None else DecodedCache(decoded_cache_mb)
        self.make = _ClipMaker(source, clip_samples, sampling_rate, min_samples, self.cache)
        self.cache_token = uuid.uuid4().hex  # tells this dataset's rows from another's in a collator's cache
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.max_consecutive_bad = max_consecutive_bad

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        """Called by the data loader (accelerate) at each epoch: changes the random crops."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        item = first_good_item(self, index, "sample", "audio")
        # the key under which a collator may keep the clip's features (AudioCollator's features_cache_mb): its row in
        # this dataset, when the clip is the same every epoch; None for a random crop of a longer clip
        item["features_key"] = (self.cache_token, item["index"]) if item.pop("fixed") else None
        return item


def first_good_item(dataset, index: int, kind: str, column: str) -> dict:
    """Item ``index`` of a map-style clip dataset (audio or video), or, when it is bad, the next good one: each try
    ``dataset.make(example, rng, position)`` with the random generator of ``(seed, epoch, position)`` in training
    (identical in every worker and after a resume) and the row's position (the key of a decoded-sample cache); the
    skipped ones are listed in the item's ``"bad"`` for the tracker. Too many bad ones in a row
    (``dataset.max_consecutive_bad``) stop the run with the first errors."""
    bad, data = [], dataset.data
    for attempt in range(min(dataset.max_consecutive_bad, len(data))):
        position = (index + attempt) % len(data)
        generator = np.random.default_rng([dataset.seed, dataset.epoch, position]) if dataset.train else None
        try:
            item = dataset.make(data[position], generator, position)
        except BadSampleError as error:
            bad.append(f"{kind} {position}: {error}")
            continue
        item["index"] = position
        item["bad"] = bad
        return item
    raise RuntimeError(
        f"{len(bad)} consecutive {kind}s could not be used (starting at index {index}); most of the data seems "
        f"unreadable. First errors: {bad[:3]}. Check the files, the {column} column and that FFmpeg is installed."
    )


class StreamingAudioClipDataset(torch.utils.data.IterableDataset):
    """Iterable clips from a streamed dataset, sharded per process and per data-loader worker, repeated forever.

    The stream is split between processes with ``datasets.distributed.split_dataset_by_node`` (whole shards when
    the shard count divides by the world size, every ``world_size``-th example otherwise), shuffled with a buffer in
    training, and restarted with a new shuffling seed each pass, so every process can run for ``max_train_steps``
    without running dry at a different time than the others. Bad samples are skipped and reported in the next good
    item's ``"bad"`` list.
    """

    def __init__(
        self,
        source: AudioSource,
        clip_samples: int,
        train: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        sampling_rate: int = 16000,
        min_samples: int = 400,
        shuffle_buffer_size: int = 1000,
        repeat: bool = True,
        max_consecutive_bad: int = 64,
    ):
        from datasets.distributed import split_dataset_by_node

        data = source.data
        if train and hasattr(data, "shuffle"):
            data = data.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
        if world_size > 1:
            data = split_dataset_by_node(data, rank=rank, world_size=world_size)
        self.data = data
        self.make = _ClipMaker(source, clip_samples, sampling_rate, min_samples)
        self.train = train
        self.seed = seed
        self.rank = rank
        self.repeat = repeat
        self.max_consecutive_bad = max_consecutive_bad

    def __iter__(self):
        bad = []
        for epoch in count():
            if hasattr(self.data, "set_epoch"):
                self.data.set_epoch(epoch)
            produced = False
            for position, example in enumerate(self.data):
                generator = np.random.default_rng([self.seed, self.rank, epoch, position]) if self.train else None
                try:
                    item = self.make(example, generator)
                    del item["fixed"]  # a streamed row has no stable key: its features are never kept
                except BadSampleError as error:
                    bad.append(f"stream sample {position} (pass {epoch}): {error}")
                    if len(bad) >= self.max_consecutive_bad:
                        raise RuntimeError(
                            f"{len(bad)} consecutive streamed samples could not be used; most of the data seems "
                            f"unreadable. First errors: {bad[:3]}"
                        )
                    continue
                produced = True
                item["index"] = position
                item["bad"] = bad
                bad = []
                yield item
            if not self.repeat:
                return
            if not produced:
                raise RuntimeError("the streamed dataset produced no usable sample in a whole pass")


# ---------------------------------------------------------------------------------------------------------------------
# Collation and features
# ---------------------------------------------------------------------------------------------------------------------


class AudioCollator:
    """Batch clips: pad waveforms, make label tensors, optionally mixup, optionally compute the features.

    Args:
        feature_extractor: when given, the batch gets ``input_values`` computed here (in the data-loader workers);
            otherwise it carries ``waveforms`` + ``lengths`` for :func:`featurize` on the training device.
        labels: the source's :class:`LabelSpec` (None for unlabelled data). Single-label batches get integer
            ``labels [N]``, multi-label ones multi-hot float ``labels [N, C]``.
        mixup_prob: probability that a clip is mixed with another clip of the batch (official Audio-MAE fine-tuning:
            0.5, on waveforms, ``lam ~ Beta(10, 10)``); labels are mixed with the same weight and become soft
            ``[N, C]`` float targets.
        mixup_alpha: the Beta distribution's parameter.
        seed: mixup seed (the draws depend on the seed and the batch's sample indices only, so they are identical
            in every worker and after a resume).
        features_cache_mb: keep up to this many MiB of computed features in memory (:class:`DecodedCache`), for the
            clips that are the same every epoch (an :class:`AudioClipDataset` item's ``features_key``: clips used
            whole, or cut at their start; a random crop of a longer clip, or a clip mixed with another, is computed
            again). A clip's features do not depend on the rest of its batch, so the batches are the same as
            without the cache; on a small set of short clips every epoch after the first skips the fbank. 0: off.
    """

    def __init__(
        self,
        feature_extractor=None,
        labels: LabelSpec | None = None,
        mixup_prob: float = 0.0,
        mixup_alpha: float = 10.0,
        seed: int = 0,
        features_cache_mb: float = 0.0,
    ):
        if not 0.0 <= mixup_prob <= 1.0:
            raise ValueError(f"mixup_prob must be in [0, 1], got {mixup_prob}")
        if mixup_prob > 0 and labels is None:
            raise ValueError("mixup needs labels")
        self.feature_extractor = feature_extractor
        self.labels = labels
        self.mixup_prob = mixup_prob
        self.mixup_alpha = mixup_alpha
        self.seed = seed
        self.features_cache = DecodedCache(features_cache_mb)

    def _targets(self, items) -> torch.Tensor:
        if self.labels.multi_label or self.mixup_prob > 0:
            targets = torch.zeros(len(items), self.labels.num_labels)
            for row, item in enumerate(items):
                targets[row, item["label"]] = 1.0
            return targets
        return torch.tensor([item["label"] for item in items], dtype=torch.long)

    def __call__(self, items: list[dict]) -> dict:
        waveforms = [item["waveform"] for item in items]
        keys = [item.get("features_key") for item in items]
        targets = self._targets(items) if self.labels is not None else None
        if self.mixup_prob > 0 and len(items) > 1:
            rng = np.random.default_rng([self.seed] + [int(item["index"]) for item in items])
            mixed = []
            for i, wave in enumerate(waveforms):
                if rng.random() >= self.mixup_prob:
                    mixed.append(wave)
                    continue
                j = int(rng.integers(0, len(items) - 1))
                j = j + 1 if j >= i else j  # a partner other than i
                lam = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
                other = waveforms[j]
                length = max(len(wave), len(other))
                mix = lam * torch.nn.functional.pad(wave, (0, length - len(wave)))
                mix = mix + (1 - lam) * torch.nn.functional.pad(other, (0, length - len(other)))
                mixed.append(mix)
                targets[i] = lam * targets[i] + (1 - lam) * targets[j]
                keys[i] = None  # a mix is new every time
            waveforms = mixed

        batch = {}
        if self.feature_extractor is not None:
            batch["input_values"] = self._features(waveforms, keys)
        else:
            lengths = torch.tensor([len(w) for w in waveforms])
            padded = torch.zeros(len(waveforms), int(lengths.max()))
            for row, wave in enumerate(waveforms):
                padded[row, : len(wave)] = wave
            batch["waveforms"], batch["lengths"] = padded, lengths
        if targets is not None:
            batch["labels"] = targets
        batch["num_bad"] = torch.tensor(sum(len(item["bad"]) for item in items))
        batch["bad_samples"] = [reason for item in items for reason in item["bad"]]
        return batch

    def _features(self, waveforms: list[torch.Tensor], keys: list) -> torch.Tensor:
        """``input_values [N, frames, mel]``: kept ones from the cache, the others computed together (and kept)."""
        if not self.features_cache.max_bytes or keys.count(None) == len(keys):  # nothing to keep or reuse
            return self.feature_extractor(
                waveforms, sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt")["input_values"]
        rows = [self.features_cache.lookup(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            computed = self.feature_extractor(
                [waveforms[i] for i in missing], sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt"
            )["input_values"]
            for row, i in enumerate(missing):
                rows[i] = computed[row].clone()  # its own memory: a view would keep the whole batch alive
                self.features_cache.put(keys[i], rows[i])
        return torch.stack(rows)


def featurize(feature_extractor, batch: dict, device=None) -> torch.Tensor:
    """``input_values`` of a batch: already computed by the collator, or computed now (batched) on ``device``."""
    if "input_values" in batch:
        return batch["input_values"]
    waveforms = [wave[:length] for wave, length in zip(batch["waveforms"], batch["lengths"].tolist())]
    return feature_extractor(
        waveforms, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt", device=device
    )["input_values"]


def clip_samples_for(feature_extractor, max_length: int | None = None) -> int:
    """Waveform samples that fill exactly ``max_length`` fbank frames (25 ms windows, 10 ms hop)."""
    frames = max_length or feature_extractor.max_length
    rate = feature_extractor.sampling_rate
    return (frames - 1) * int(rate * 0.010) + int(rate * 0.025)


# ---------------------------------------------------------------------------------------------------------------------
# Bad samples over a run
# ---------------------------------------------------------------------------------------------------------------------


class BadSampleTracker:
    """Counts used and skipped samples over a run; raises when most samples fail; writes the final report.

    Args:
        max_bad_fraction: stop the run when more than this fraction of the samples seen so far were bad...
        min_samples: ...once at least this many samples were seen (a few bad files at the start are no reason).
        keep_examples: how many failure messages to keep for the report.
    """

    def __init__(self, max_bad_fraction: float = 0.5, min_samples: int = 32, keep_examples: int = 20):
        self.max_bad_fraction = max_bad_fraction
        self.min_samples = min_samples
        self.keep_examples = keep_examples
        self.good = 0
        self.bad = 0
        self.examples: list[str] = []

    def update(self, batch: dict) -> None:
        """Account one batch (its size and its ``bad_samples``) and check the bad fraction."""
        reasons = batch.get("bad_samples") or []
        size = next(v.shape[0] for k, v in batch.items() if k in ("input_values", "waveforms"))
        self.good += int(size)
        self.bad += len(reasons)
        room = self.keep_examples - len(self.examples)
        if room > 0:
            self.examples.extend(reasons[:room])
        self.check()

    def check(self) -> None:
        seen = self.good + self.bad
        if seen >= self.min_samples and self.bad > self.max_bad_fraction * seen:
            raise RuntimeError(
                f"{self.bad} of the {seen} samples read so far could not be used (more than "
                f"{self.max_bad_fraction:.0%}); stopping. First errors: {self.examples[:5]}. Check the dataset, the "
                "audio column, and that FFmpeg is installed for compressed formats."
            )

    def state_dict(self) -> dict:
        return {"good": self.good, "bad": self.bad, "examples": list(self.examples)}

    def load_state_dict(self, state: dict) -> None:
        self.good, self.bad, self.examples = int(state["good"]), int(state["bad"]), list(state["examples"])

    def totals(self, accelerator=None) -> dict:
        """Counts summed over all processes (call on every process)."""
        good, bad, examples = self.good, self.bad, list(self.examples)
        if accelerator is not None and accelerator.num_processes > 1:
            counts = accelerator.reduce(torch.tensor([good, bad], device=accelerator.device), reduction="sum")
            good, bad = (int(v) for v in counts.tolist())
            from accelerate.utils import gather_object

            gathered = gather_object([examples])  # one list per process
            examples = [reason for per_process in gathered for reason in per_process][: self.keep_examples]
        return {"used": good, "skipped": bad, "examples": examples}

    @staticmethod
    def report(totals: dict) -> str:
        seen = totals["used"] + totals["skipped"]
        if not totals["skipped"]:
            return f"bad samples: none ({totals['used']} samples used)"
        lines = [f"bad samples: {totals['skipped']} skipped of {seen} read ({totals['skipped'] / max(seen, 1):.1%})"]
        lines += [f"  - {e}" for e in totals["examples"]]
        return "\n".join(lines)


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioClipDataset",
    "AudioCollator",
    "AudioSource",
    "BadSampleTracker",
    "DEMO_DATASET_NAME",
    "LabelSpec",
    "StreamingAudioClipDataset",
    "clip_samples_for",
    "featurize",
    "infer_label_spec",
    "load_audio_source",
]
