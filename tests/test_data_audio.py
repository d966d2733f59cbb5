"""Audio data pipeline: demo dataset, Hub-id/audiofolder/files sources (on local data), decoding, bad samples."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from hf_maskedav import AudioMAEFeatureExtractor
from hf_maskedav.data import (
    DEMO_AUDIO_CLASSES,
    AudioClipDataset,
    AudioCollator,
    BadSampleError,
    BadSampleTracker,
    DecodedCache,
    DemoAudioDataset,
    StreamingAudioClipDataset,
    clip_samples_for,
    decode_audio,
    featurize,
    load_audio_source,
    spec_augment,
)

RATE = 16000


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.fixture(scope="module")
def audiofolder(tmp_path_factory):
    """An audiofolder with metadata.csv: 6 good clips (8 kHz, 16 kHz, 44.1 kHz stereo, flac...) and 3 bad files, in
    file order good, bad, good, bad, good, bad, good, good, good."""
    root = tmp_path_factory.mktemp("audiofolder")
    good = [
        ("f0.wav", 16000, 1, "dog"),
        ("f2.wav", 8000, 1, "cat"),
        ("f4.wav", 44100, 2, "dog"),
        ("f6.flac", 16000, 1, "cat"),
        ("f7.wav", 22050, 1, "bird"),
        ("f8.wav", 16000, 2, "bird"),
    ]
    rows = []
    for i, (name, rate, channels, label) in enumerate(good):
        soundfile.write(root / name, _tone(0.5 + 0.1 * i, rate, 300 + 100 * i, channels), rate)
        rows.append(f"{name},{label}")
    (root / "f1.wav").write_text("this is not audio at all")  # undecodable
    soundfile.write(root / "f3.wav", np.zeros(0, dtype=np.float32), 16000)  # empty
    nan = _tone(0.5, 16000)
    nan[100] = np.nan
    soundfile.write(root / "f5.wav", nan, 16000, subtype="FLOAT")  # non-finite
    rows += ["f1.wav,dog", "f3.wav,cat", "f5.wav,bird"]
    rows.sort()  # rows (not file names) give the dataset order
    (root / "metadata.csv").write_text("file_name,label\n" + "\n".join(rows) + "\n")
    return root


def test_demo_dataset_is_deterministic_balanced_and_not_trivial():
    a, b = DemoAudioDataset("train", num_clips=16), DemoAudioDataset("train", num_clips=16)
    np.testing.assert_array_equal(a[3]["audio"]["array"], b[3]["audio"]["array"])
    assert not np.array_equal(a[3]["audio"]["array"], DemoAudioDataset("train", seed=1)[3]["audio"]["array"])
    assert not np.array_equal(a[3]["audio"]["array"], DemoAudioDataset("test")[3]["audio"]["array"])
    labels = [a[i]["label"] for i in range(16)]
    assert sorted(set(labels)) == list(range(len(DEMO_AUDIO_CLASSES)))
    item = a[0]
    assert item["audio"]["sampling_rate"] == RATE and item["audio"]["array"].shape == (RATE,)
    assert item["audio"]["array"].dtype == np.float32 and np.abs(item["audio"]["array"]).max() <= 1.0
    # two clips of the same class differ (random frequency, timing, noise, level)
    assert not np.allclose(a[0]["audio"]["array"], a[8]["audio"]["array"])
    multi = DemoAudioDataset("validation", num_clips=20, multi_label=True)
    counts = [len(multi[i]["labels"]) for i in range(20)]
    assert set(counts) <= {1, 2, 3} and len(set(counts)) > 1
    with pytest.raises(ValueError, match="unknown demo split"):
        DemoAudioDataset("dev")


def test_decode_audio_resamples_downmixes_and_rejects_bad_values(audiofolder):
    stereo = decode_audio(str(audiofolder / "f4.wav"), RATE)  # 44.1 kHz stereo, 0.7 s
    assert stereo.dim() == 1 and abs(stereo.numel() - int(0.7 * RATE)) <= 2
    low = decode_audio({"path": str(audiofolder / "f2.wav"), "bytes": None}, RATE)  # 8 kHz
    assert abs(low.numel() - int(0.6 * RATE)) <= 2
    raw = (audiofolder / "f6.flac").read_bytes()
    torch.testing.assert_close(decode_audio({"bytes": raw, "path": None}, RATE), decode_audio(raw, RATE))
    array = decode_audio({"array": _tone(1.0, 8000), "sampling_rate": 8000}, RATE)
    assert array.numel() == RATE
    with pytest.raises(BadSampleError, match="could not decode"):
        decode_audio(str(audiofolder / "f1.wav"))
    with pytest.raises(BadSampleError, match="empty|could not decode"):
        decode_audio(str(audiofolder / "f3.wav"))
    with pytest.raises(BadSampleError, match="NaN"):
        decode_audio(str(audiofolder / "f5.wav"))
    with pytest.raises(BadSampleError, match="no such file"):
        decode_audio(str(audiofolder / "missing.wav"))


def test_audiofolder_through_the_hub_code_path_skips_and_counts_bad_files(audiofolder):
    # A local dataset folder goes through datasets.load_dataset(<name>) exactly as a Hub id does.
    source = load_audio_source(str(audiofolder), label_column="label")
    same = load_audio_source(data_dir=str(audiofolder), label_column="label")  # load_dataset("audiofolder", ...)
    assert len(source.data) == len(same.data) == 9
    assert source.labels.names == ["bird", "cat", "dog"] and not source.labels.multi_label
    fe = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=40)
    dataset = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=AudioCollator(fe, source.labels))
    tracker = BadSampleTracker(max_bad_fraction=0.5, min_samples=1)
    seen_labels = []
    for batch in loader:
        tracker.update(batch)
        assert batch["input_values"].shape == (3, 40, 32) and torch.isfinite(batch["input_values"]).all()
        seen_labels += batch["labels"].tolist()
    totals = tracker.totals()
    # 9 rows: each of the 3 bad files is replaced by the next (good) one, and counted
    assert totals == {"used": 9, "skipped": 3, "examples": totals["examples"]}
    assert len(totals["examples"]) == 3 and any("f1.wav" in e for e in totals["examples"])
    assert "3 skipped of 12" in BadSampleTracker.report(totals)
    assert set(seen_labels) <= {0, 1, 2}
    # crops are random in training but reproducible from (seed, epoch, index)
    twin = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=0)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        twin.set_epoch(epoch)
        torch.testing.assert_close(dataset[5]["waveform"], twin[5]["waveform"])
    dataset.set_epoch(0)
    crop0 = dataset[5]["waveform"]
    dataset.set_epoch(1)
    assert crop0.shape == dataset[5]["waveform"].shape == (clip_samples_for(fe),)
    assert not torch.equal(crop0, dataset[5]["waveform"])  # a 1 s clip cropped to 0.4 s: another window


@pytest.fixture
def decoded(monkeypatch):
    """The paths the audio datasets decode, in order (the real decoder still runs)."""
    import hf_maskedav.data.audio as audio_module

    paths = []
    original = audio_module.decode_audio
    monkeypatch.setattr(audio_module, "decode_audio", lambda value, *a: paths.append(value["path"]) or original(value, *a))
    return paths


def test_decoded_cache_decodes_each_clip_once_and_changes_no_batch(audiofolder, decoded):
    source = load_audio_source(str(audiofolder), label_column="label")
    fe = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=40)
    cached = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=0, decoded_cache_mb=16)
    plain = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=0)

    def epochs(dataset):
        batches = []
        for epoch in range(3):
            dataset.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=3, shuffle=True, collate_fn=AudioCollator(fe, source.labels),
                generator=torch.Generator().manual_seed(epoch),
            )
            batches += [batch["input_values"] for batch in loader]
        return batches

    decoded.clear()
    with_cache = epochs(cached)
    good_files = {path for path in decoded if not any(bad in path for bad in ("f1.wav", "f3.wav", "f5.wav"))}
    good_decodes = [path for path in decoded if path in good_files]
    assert len(good_files) == 6 and sorted(good_decodes) == sorted(good_files)  # each good clip decoded once in 3 epochs
    assert len(cached.cache) == 6 and cached.cache.hits > 0
    # failures are not cached: each bad file is tried again every epoch (and reported again)
    assert len(decoded) - len(good_decodes) == 3 * 3
    decoded.clear()
    without = epochs(plain)
    assert len([path for path in decoded if path in good_files]) > 6
    # the same random crops and features as decoding every time, and nothing downstream changed a cached clip in place
    assert len(with_cache) == len(without)
    for a, b in zip(with_cache, without):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for position, waveform in cached.cache._items.items():
        torch.testing.assert_close(waveform, decode_audio(source.data[position]["audio"]), rtol=0, atol=0)


def test_whole_clips_share_the_training_datasets_decoded_clips(audiofolder, decoded):
    """finetune_audio.py --head_init linear_probe reads the training split whole (the probe) and cropped (training):
    one decoded-clip cache for both, so each file is decoded once."""
    source = load_audio_source(str(audiofolder), label_column="label")
    fe = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=40)
    training = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=0, decoded_cache_mb=16)
    whole = AudioClipDataset(source, clip_samples_for(fe), train=False, share_decoded_with=training)
    assert whole.cache is training.cache
    good = [i for i in range(len(source.data)) if not any(b in source.data[i]["audio"]["path"] for b in ("f1.", "f3.", "f5."))]
    probe_items = [whole[i] for i in good]
    first = len(decoded)
    training_items = [training[i] for i in good]
    assert first == len(good) and len(decoded) == first  # the training reads decoded nothing more
    assert all(a["waveform"].shape[-1] >= b["waveform"].shape[-1] for a, b in zip(probe_items, training_items))
    other = load_audio_source(str(audiofolder), label_column="label")  # other rows object: positions could differ
    with pytest.raises(ValueError, match="same rows"):
        AudioClipDataset(other, clip_samples_for(fe), train=False, share_decoded_with=training)
    with pytest.raises(ValueError, match="same sampling rate"):  # the cache holds clips resampled to 16 kHz
        AudioClipDataset(source, clip_samples_for(fe), train=False, sampling_rate=8000, share_decoded_with=training)


def test_decoded_cache_keeps_to_its_budget():
    cache = DecodedCache(max_megabytes=1)  # room for 2 tensors of 0.4 MiB, not 3
    tensors = [torch.full((100_000,), float(i)) for i in range(3)]
    for i, tensor in enumerate(tensors):
        assert cache.get(i, lambda t=tensor: t) is tensor
    assert len(cache) == 2 and cache.used_bytes == 800_000 and cache.misses == 3
    calls = []
    assert torch.equal(cache.get(2, lambda: calls.append(2) or tensors[2]), tensors[2]) and calls == [2]  # not stored
    assert cache.get(0, lambda: calls.append(0)) is tensors[0] and calls == [2] and cache.hits == 1
    assert cache.get(None, lambda: calls.append(None) or tensors[1]) is tensors[1] and calls == [2, None]  # no key
    assert len(cache) == 2 and cache.misses == 4
    off = DecodedCache(max_megabytes=0)
    off.get("a", lambda: tensors[0])
    assert len(off) == 0 and "0 items" in repr(off)
    with pytest.raises(ValueError, match="0 turns the cache off"):
        DecodedCache(max_megabytes=-1)


def test_mostly_bad_data_stops_with_a_clear_error(tmp_path):
    for i in range(6):
        (tmp_path / f"bad{i}.wav").write_bytes(b"RIFF....garbage")
    soundfile.write(tmp_path / "good.wav", _tone(0.5, RATE), RATE)
    source = load_audio_source(audio_files=[str(tmp_path / "*.wav")])
    assert len(source.data) == 7 and source.labels is None
    dataset = AudioClipDataset(source, 8000, train=False)
    tracker = BadSampleTracker(max_bad_fraction=0.5, min_samples=4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=7, collate_fn=AudioCollator())
    with pytest.raises(RuntimeError, match="could not be used .*more than 50%"):
        for batch in loader:
            tracker.update(batch)
    only_bad = load_audio_source(audio_files=[str(tmp_path / "bad*.wav")])
    with pytest.raises(RuntimeError, match="consecutive samples could not be used"):
        AudioClipDataset(only_bad, 8000)[0]


def test_streaming_is_sharded_per_process(audiofolder):
    with pytest.raises(ValueError, match="--label_names"):
        load_audio_source(str(audiofolder), label_column="label", streaming=True)
    source = load_audio_source(
        str(audiofolder), label_column="label", label_names=["bird", "cat", "dog"], streaming=True
    )
    assert source.streaming
    per_rank = []
    for rank in range(2):
        stream = StreamingAudioClipDataset(source, 8000, train=False, rank=rank, world_size=2, repeat=False)
        items = list(stream)
        per_rank.append([round(float(item["waveform"].abs().sum()), 3) for item in items])
        bad = sum(len(item["bad"]) for item in items)
        assert bad <= 3
    assert per_rank[0] and per_rank[1]
    assert not set(per_rank[0]) & set(per_rank[1])  # disjoint shards
    assert len(per_rank[0]) + len(per_rank[1]) == 6  # every good clip once


def test_collator_mixup_and_device_features():
    source = load_audio_source("demo", split="validation", label_column="label", demo_num_clips=8)
    fe = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=48)
    dataset = AudioClipDataset(source, clip_samples_for(fe), train=False)
    items = [dataset[i] for i in range(8)]
    plain = AudioCollator(fe, source.labels)(items)
    assert plain["labels"].dtype == torch.long
    # features computed later on the device equal the collator's
    on_device = AudioCollator(None, source.labels)(items)
    assert "waveforms" in on_device and "input_values" not in on_device
    torch.testing.assert_close(featurize(fe, on_device, device="cpu"), plain["input_values"])
    mixed = AudioCollator(fe, source.labels, mixup_prob=1.0, seed=3)(items)
    again = AudioCollator(fe, source.labels, mixup_prob=1.0, seed=3)(items)
    torch.testing.assert_close(mixed["labels"], again["labels"])
    assert mixed["labels"].shape == (8, len(DEMO_AUDIO_CLASSES))
    torch.testing.assert_close(mixed["labels"].sum(1), torch.ones(8))
    assert (mixed["labels"].max(1).values < 1).all()  # every clip was mixed with another
    assert not torch.allclose(mixed["input_values"], plain["input_values"])


def test_collator_keeps_the_features_of_clips_that_are_the_same_every_epoch(tmp_path):
    """The features cache (AudioCollator's features_cache_mb, the scripts' --decoded_cache_mb): batches equal to the
    ones computed without it, epoch after epoch; a clip longer than the window (a new random crop each epoch) or a
    mixed clip is computed again, never taken from the cache."""
    lengths = [0.2, 0.3, 0.9, 0.25, 1.2, 0.35]  # seconds; the window below holds 0.505 s
    for i, seconds in enumerate(lengths):
        soundfile.write(tmp_path / f"c{i}.wav", _tone(seconds, RATE, 200 + 70 * i), RATE)
    (tmp_path / "metadata.csv").write_text("file_name,label\n" + "".join(f"c{i}.wav,{i % 2}\n" for i in range(6)))
    source = load_audio_source(data_dir=str(tmp_path), label_column="label")
    fe = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=48, normalization="per_clip")
    dataset = AudioClipDataset(source, clip_samples_for(fe), train=True, seed=1)
    whole = sum(seconds * RATE <= clip_samples_for(fe) for seconds in lengths)
    assert whole == 4
    cached, plain = AudioCollator(fe, source.labels, features_cache_mb=16), AudioCollator(fe, source.labels)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        items = [dataset[i] for i in range(6)]
        assert [item["features_key"] is None for item in items] == [s * RATE > clip_samples_for(fe) for s in lengths]
        batch = cached(items)
        torch.testing.assert_close(batch["input_values"], plain(items)["input_values"], rtol=0, atol=0)
        assert len(cached.features_cache) == whole  # the cropped clips were never kept
    assert cached.features_cache.hits == 2 * whole and cached.features_cache.misses == whole
    # the long clips' crops differ between epochs: they really were computed again
    dataset.set_epoch(0)
    first = cached([dataset[4]])["input_values"]
    dataset.set_epoch(1)
    assert not torch.equal(first, cached([dataset[4]])["input_values"])
    # mixed clips are new every time: nothing kept
    mixing = AudioCollator(fe, source.labels, mixup_prob=1.0, features_cache_mb=16)
    mixing([dataset[i] for i in range(6)])
    assert len(mixing.features_cache) == 0
    # another dataset's rows never collide with this one's in a shared collator
    other = AudioClipDataset(source, clip_samples_for(fe), train=False)
    assert other[0]["features_key"] != dataset[0]["features_key"]


def test_multi_label_labels_from_string_lists(tmp_path):
    for i in range(4):
        soundfile.write(tmp_path / f"c{i}.wav", _tone(0.3, RATE, 200 + 50 * i), RATE)
    (tmp_path / "metadata.csv").write_text(
        "file_name,tags\nc0.wav,speech;music\nc1.wav,music\nc2.wav,dog\nc3.wav,dog;speech\n"
    )
    single = load_audio_source(data_dir=str(tmp_path), label_column="tags")
    assert not single.labels.multi_label and "dog;speech" in single.labels.names  # strings are names unless asked
    source = load_audio_source(data_dir=str(tmp_path), label_column="tags", multi_label=True)
    assert source.labels.multi_label and source.labels.names == ["dog", "music", "speech"]
    batch = AudioCollator(None, source.labels)([AudioClipDataset(source, 4000, train=False)[i] for i in range(4)])
    expected = torch.tensor([[0, 1, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=torch.float32)
    torch.testing.assert_close(batch["labels"], expected)


def test_spec_augment_masks_one_band_each_way():
    x = torch.randn(16, 40, 24) + 5.0
    gen = torch.Generator().manual_seed(0)
    out = spec_augment(x, freq_mask_param=6, time_mask_param=10, generator=gen)
    assert out.shape == x.shape and not torch.equal(out, x)
    zero = out == 0
    freq_cols = zero.all(dim=1)  # [N, F] columns zeroed over all frames
    time_rows = zero.all(dim=2)
    assert (freq_cols.sum(1) <= 6).all() and (time_rows.sum(1) <= 10).all()
    assert torch.equal(zero, freq_cols[:, None, :] | time_rows[:, :, None])
    assert torch.equal(spec_augment(x), x)
