"""Video and audio-visual training data: the built-in demo, sources (videofolder, Hub-style folder, CSV lists, files),
clip recipes, repeated sampling, bad-file skipping, collation, mixing, retrieval recall."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from hf_maskedav import (
    AVMAEVideoProcessor,
    MAESTVideoProcessor,
    MaskedAVVideoMAEVideoProcessor,
    MaskFeatVideoProcessor,
    MAViLVideoProcessor,
)
from hf_maskedav.data.demo_video import DEMO_VIDEO_CLASSES, DemoVideoDataset, render_clip, write_mp4
from hf_maskedav.data.video import (
    AudioWindow,
    VideoBadSampleTracker,
    VideoClipDataset,
    VideoCollator,
    load_video_source,
    read_video_csv,
)
from hf_maskedav.data.video_transforms import (
    VideoClipRecipe,
    multi_scale_crop_box,
    random_resized_crop_box,
    video_recipe,
)
from hf_maskedav.training.classification import mix_batch, one_hot_targets
from hf_maskedav.training.probe import recall_at_k
from hf_maskedav.video import read_video

SMALL = dict(num_frames=12, fps=12.0, height=32, width=48)  # tiny demo clips for the tests


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return DemoVideoDataset("train", num_clips=8, cache_dir=str(tmp_path_factory.mktemp("demo_cache")), **SMALL)


def _recipe(**overrides) -> VideoClipRecipe:
    fields = dict(num_frames=4, sampling_rate=2, crop_size=(16, 16), eval_short_side=16)
    return VideoClipRecipe(**{**fields, **overrides})


def _write_clips(folder, count: int, with_audio: bool = True) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(count):
        frames, wave = render_clip([i % 8], np.random.default_rng(i), **SMALL)
        name = f"clip{i}.mp4"
        write_mp4(os.path.join(folder, name), frames, 12.0, wave if with_audio else None)
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------------------------------
# Built-in demo
# ---------------------------------------------------------------------------------------------------------------------


def test_demo_files_are_real_mp4s_with_audio_and_deterministic(demo, tmp_path):
    assert len(demo) == 8 and [demo[i]["label"] for i in range(8)] == list(range(8))  # balanced classes
    decoded = read_video(demo[3]["video"])
    assert decoded.frames.shape == (12, 32, 48, 3) and decoded.info.fps == pytest.approx(12.0)
    import av

    with av.open(demo[3]["video"]) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        assert container.streams.video[0].codec_context.name == "h264"
    # the same clips (bytes) from a second, independent generation into another folder
    again = DemoVideoDataset("train", num_clips=8, cache_dir=str(tmp_path), **SMALL)
    assert again.fingerprint() == demo.fingerprint()
    # the file holds the rendered picture, up to compression (H.264 in yuv420p halves the colour resolution, which
    # blurs the saturated small shapes: a few grey levels on average; another clip would not correlate)
    frames, _ = demo.render(3)
    rendered, stored = frames.astype(float).ravel(), decoded.frames.numpy().astype(float).ravel()
    assert np.abs(rendered - stored).mean() < 12 and np.corrcoef(rendered, stored)[0, 1] > 0.95
    other, _ = demo.render(4)
    assert np.corrcoef(other.astype(float).ravel(), stored)[0, 1] < 0.5
    rows = list(csv.reader(open(os.path.join(demo.folder, "metadata.csv"))))
    assert rows[0] == ["file_name", "label"] and rows[4] == ["00003.mp4", DEMO_VIDEO_CLASSES[3]]
    other = DemoVideoDataset("test", num_clips=2, cache_dir=str(tmp_path), **SMALL)
    assert other.fingerprint() != DemoVideoDataset("train", num_clips=2, cache_dir=str(tmp_path), **SMALL).fingerprint()


def test_demo_multi_label_and_errors(tmp_path):
    data = DemoVideoDataset("validation", num_clips=6, multi_label=True, cache_dir=str(tmp_path), **SMALL)
    labels = [data[i]["labels"] for i in range(6)]
    assert all(1 <= len(v) <= 2 and v == sorted(set(v)) for v in labels) and any(len(v) == 2 for v in labels)
    with pytest.raises(ValueError, match="unknown demo split"):
        DemoVideoDataset("dev", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="even frame size"):
        DemoVideoDataset("train", num_clips=1, height=31, cache_dir=str(tmp_path))


# ---------------------------------------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------------------------------------


def test_family_recipes_follow_the_processors_and_official_augmentation():
    videomae = video_recipe(MaskedAVVideoMAEVideoProcessor(), "maskedav_videomae", "pretrain")
    assert (videomae.num_frames, videomae.sampling_rate, videomae.crop_size) == (16, 4.0, (224, 224))
    assert videomae.train_crop == "multi_scale" and not videomae.flip and videomae.mean == (0.485, 0.456, 0.406)
    mae_st = video_recipe(MAESTVideoProcessor(), "maskedav_mae_st", "pretrain")
    assert mae_st.train_crop == "random_resized" and mae_st.scale == (0.5, 1.0) and mae_st.flip
    assert mae_st.mean == (0.45, 0.45, 0.45) and mae_st.std == (0.225, 0.225, 0.225)
    assert video_recipe(MAESTVideoProcessor(), "maskedav_mae_st", "finetune").scale == (0.08, 1.0)
    maskfeat = video_recipe(MaskFeatVideoProcessor(), "maskedav_maskfeat", "pretrain")
    assert maskfeat.eval_short_side == 256 and maskfeat.crop_size == (224, 224)
    mavil = video_recipe(MAViLVideoProcessor(), "maskedav_mavil", "pretrain")
    assert (mavil.fps, mavil.eval_resize, mavil.eval_position, mavil.train_crop) == (2.0, "squash", "start", "resize")
    assert mavil.rate_for(30.0) == 15.0
    assert video_recipe(MAESTVideoProcessor(), "maskedav_mae_st", sampling_rate=2, flip=False).flip is False
    with pytest.raises(ValueError, match="train_crop"):
        VideoClipRecipe(train_crop="jitter")


def test_crop_boxes_stay_inside_the_frame():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = random_resized_crop_box(48, 64, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64 and h > 0 and w > 0
        top, left, h, w = multi_scale_crop_box(48, 64, (32, 32), (1, 0.875, 0.75, 0.66), rng)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
        assert min(h, w) >= int(48 * 0.66)


def test_eval_clip_matches_the_family_processor(demo):
    for processor, model_type in (
        (MaskedAVVideoMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 24},
                                        crop_size={"height": 24, "width": 24}), "maskedav_videomae"),
        (MaskFeatVideoProcessor(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 28},
                                crop_size={"height": 24, "width": 24}), "maskedav_maskfeat"),
        (MAViLVideoProcessor(num_frames=4, fps=6.0, size={"height": 24, "width": 24}), "maskedav_mavil"),
        (AVMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 28},
                             crop_size={"height": 24, "width": 24}), "maskedav_avmae"),
    ):
        source = _demo_source(demo, labels=False)
        recipe = video_recipe(processor, model_type)
        ours = VideoClipDataset(source, recipe, train=False)[5]["pixel_values"]
        reference = processor(source.data[5]["video"], return_tensors="pt")["pixel_values"]
        assert ours.shape == reference.shape == (1, 4, 3, 24, 24)
        assert (ours - reference).abs().max() < 0.06, model_type  # within about 3 grey levels


# ---------------------------------------------------------------------------------------------------------------------
# Clip datasets
# ---------------------------------------------------------------------------------------------------------------------


def _demo_source(demo, labels: bool = True, **kwargs):
    cache = str(demo.folder.parent.parent.parent)
    return load_video_source(label_column="label" if labels else None, demo_num_clips=8, demo_cache_dir=cache,
                             demo_options=SMALL, **kwargs)


def test_repeated_sampling_decodes_once_and_gives_different_clips(demo, monkeypatch):
    import hf_maskedav.data.video as video_module

    calls = []
    original = video_module.read_video
    monkeypatch.setattr(video_module, "read_video", lambda *a, **k: calls.append(1) or original(*a, **k))
    dataset = VideoClipDataset(_demo_source(demo), _recipe(), train=True, seed=3, repeats=4)
    item = dataset[2]
    assert len(calls) == 1 and item["pixel_values"].shape == (4, 4, 3, 16, 16) and item["label"] == 2
    clips = item["pixel_values"]
    assert not torch.allclose(clips[0], clips[1])  # own start/crop/flip per clip
    assert torch.equal(dataset[2]["pixel_values"], clips)  # same (seed, epoch, index): same clips (workers, resume)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[2]["pixel_values"], clips)
    views = VideoClipDataset(_demo_source(demo), _recipe(), train=False, num_clips=2, num_crops=3)[2]["pixel_values"]
    assert views.shape == (6, 4, 3, 16, 16)
    # clip-major: views 0-2 are the 3 crops of the first temporal clip (at the start), 3-5 of the last (at the end)
    first_clip = VideoClipDataset(_demo_source(demo), _recipe(eval_position="start"), train=False)[2]["pixel_values"]
    assert torch.equal(views[1], first_clip[0]) and not torch.allclose(views[0], views[3])


def test_collator_folds_clips_and_repeats_labels(demo):
    source = _demo_source(demo)
    dataset = VideoClipDataset(source, _recipe(), train=True, repeats=2)
    batch = VideoCollator(source.labels)([dataset[i] for i in (1, 4, 6)])
    assert batch["pixel_values"].shape == (6, 4, 3, 16, 16)
    assert batch["labels"].tolist() == [1, 1, 4, 4, 6, 6] and batch["clips_per_video"] == 2
    assert batch["num_videos"] == 3 and batch["bad_samples"] == []
    multi = load_video_source(label_column="labels", multi_label=True, demo_multi_label=True, demo_num_clips=4,
                              demo_cache_dir=str(demo.folder.parent.parent.parent), demo_options=SMALL)
    items = [VideoClipDataset(multi, _recipe(), train=False)[i] for i in range(3)]
    targets = VideoCollator(multi.labels)(items)["labels"]
    assert targets.shape == (3, 8) and targets.dtype == torch.float32
    assert [set(torch.nonzero(row).flatten().tolist()) for row in targets] == [set(multi.data[i]["labels"]) for i in range(3)]


def test_audio_windows_follow_the_clips(demo):
    from hf_maskedav import AudioMAEFeatureExtractor

    source = _demo_source(demo)
    window = AudioWindow(16000, 4000)
    dataset = VideoClipDataset(source, _recipe(), train=True, repeats=2, audio=window, seed=1)
    item = dataset[0]
    assert len(item["waveforms"]) == 2 and all(w.shape == (4000,) for w in item["waveforms"])
    extractor = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=24)
    batch = VideoCollator(source.labels, extractor)([item, dataset[1]])
    assert batch["input_values"].shape == (4, 24, 32) and batch["pixel_values"].shape[0] == 4
    # the window sits under its clip: the clip's centre time maps to the window's centre
    long_window = VideoClipDataset(source, _recipe(), train=False, audio=AudioWindow(16000, 100000))[0]
    assert long_window["waveforms"][0].numel() < 100000  # shorter recordings are used whole


def test_audio_visual_clips_decode_each_audio_track_once_with_the_cache(demo, monkeypatch):
    import hf_maskedav.data.video as video_module

    calls = []
    original = video_module.decode_audio
    monkeypatch.setattr(video_module, "decode_audio", lambda *a: calls.append(1) or original(*a))
    source = _demo_source(demo)
    cached = VideoClipDataset(source, _recipe(), train=True, seed=1, audio=AudioWindow(16000, 4000), decoded_cache_mb=8)
    plain = VideoClipDataset(source, _recipe(), train=True, seed=1, audio=AudioWindow(16000, 4000))
    for epoch in (0, 1):
        cached.set_epoch(epoch)
        plain.set_epoch(epoch)
        for index in (0, 3):
            a, b = cached[index], plain[index]
            assert all(torch.equal(x, y) for x, y in zip(a["waveforms"], b["waveforms"]))
    assert len(calls) == 2 + 4  # the cached dataset decoded videos 0 and 3 once each; the plain one every time
    video_only = VideoClipDataset(source, _recipe(), train=True, decoded_cache_mb=8)
    assert video_only.audio_cache is None  # nothing to keep without audio: frames are decoded per clip


# ---------------------------------------------------------------------------------------------------------------------
# Sources and bad files
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def videofolder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videofolder")
    names = _write_clips(folder, 6)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a real video")
    import av

    with av.open(str(folder / "sound_only.mp4"), "w") as container:  # an audio-only .mp4
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            container.mux(packet)
    rows = [(n, DEMO_VIDEO_CLASSES[i % 8]) for i, n in enumerate(names)] + [("broken.mp4", "still"), ("sound_only.mp4", "rise")]
    with open(folder / "metadata.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file_name", "label"), *rows])
    return folder


@pytest.mark.parametrize("how", ["videofolder", "hub_path"])
def test_videofolder_source_skips_and_reports_bad_files(videofolder, how):
    kwargs = dict(data_dir=str(videofolder)) if how == "videofolder" else dict(dataset_name=str(videofolder))
    source = load_video_source(**kwargs, label_column="label")
    assert len(source.data) == 8 and source.labels.names == sorted({"still", "slide", "rise", "fall", "flash", "bounce"})
    dataset = VideoClipDataset(source, _recipe(), train=True, repeats=2)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=VideoCollator(source.labels))
    tracker = VideoBadSampleTracker()
    labels = []
    for batch in loader:
        tracker.update(batch)
        labels += batch["labels"][::2].tolist()
    totals = tracker.totals()
    # each bad file is replaced by the next good one (wrapping around): count the skips that implies
    names = [os.path.basename(row["video"]["path"]) for row in source.data]
    bad = [n in ("broken.mp4", "sound_only.mp4") for n in names]
    expected = sum(next(k for k in range(8) if not bad[(i + k) % 8]) for i in range(8))
    assert totals["used"] == 8 and totals["skipped"] == expected >= 2
    assert any("broken.mp4" in e for e in totals["examples"]) and any("sound_only.mp4" in e and "no video stream" in e
                                                                      for e in totals["examples"])
    assert f"{expected} skipped of {8 + expected} read" in VideoBadSampleTracker.report(totals)


def test_csv_lists_headerless_and_with_header(videofolder, tmp_path):
    kinetics = tmp_path / "train.csv"
    kinetics.write_text("".join(f"clip{i}.mp4 {i % 3}\n" for i in range(6)) + "broken.mp4 1\n")
    source = load_video_source(csv_file=str(kinetics), data_root=str(videofolder), label_column="label")
    assert source.labels.names == ["0", "1", "2"] and len(source.data) == 7
    assert source.data[0]["video"] == os.path.join(str(videofolder), "clip0.mp4")
    item = VideoClipDataset(source, _recipe(), train=False)[6]  # the broken last line wraps to the first video
    assert item["index"] == 0 and len(item["bad"]) == 1

    with_header = tmp_path / "list.csv"
    with_header.write_text("path,labels\n" + "".join(f"{videofolder}/clip{i}.mp4,{'a;b' if i % 2 else 'b'}\n" for i in range(4)))
    source = load_video_source(csv_file=str(with_header), label_column="labels", multi_label=True)
    assert source.labels.multi_label and source.labels.names == ["a", "b"]
    assert VideoClipDataset(source, _recipe(), train=False)[1]["label"] == [0, 1]
    unlabelled = load_video_source(video_files=[str(videofolder / "clip*.mp4")])
    assert len(unlabelled.data) == 6 and unlabelled.labels is None
    assert read_video_csv(str(kinetics), str(videofolder))["label"][:3] == [0, 1, 2]
    with pytest.raises(ValueError, match="no video column"):
        bad = tmp_path / "bad.csv"
        bad.write_text("name,label\nx,1\n")
        read_video_csv(str(bad))


def test_mostly_unreadable_data_stops_with_a_clear_error(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    for i in range(3):
        (folder / f"junk{i}.mp4").write_bytes(b"not a video" * 10)
    source = load_video_source(video_files=[str(folder)])
    with pytest.raises(RuntimeError, match="most of the data seems unreadable"):
        VideoClipDataset(source, _recipe(), train=True)[0]
    tracker = VideoBadSampleTracker(max_bad_fraction=0.5, min_samples=4)
    with pytest.raises(RuntimeError, match="could not be used"):
        tracker.update({"num_videos": 1, "bad_samples": ["x: corrupt"] * 4})


def test_missing_audio_track_is_a_bad_sample_for_audio_visual_data(videofolder, tmp_path):
    folder = tmp_path / "mixed"
    names = _write_clips(folder, 2, with_audio=False) + []
    source = load_video_source(video_files=[str(folder / n) for n in names] + [str(videofolder / "clip3.mp4")])
    item = VideoClipDataset(source, _recipe(), train=False, audio=AudioWindow(16000, 2000))[0]
    assert item["index"] == 2 and len(item["bad"]) == 2 and "audio" in item["bad"][0]


# ---------------------------------------------------------------------------------------------------------------------
# Mixing and retrieval
# ---------------------------------------------------------------------------------------------------------------------


def test_mixup_cutmix_and_label_smoothing():
    targets = one_hot_targets(torch.tensor([0, 1, 2, 3]), 4, smoothing=0.1)
    assert torch.allclose(targets.sum(-1), torch.ones(4)) and targets.max() == pytest.approx(0.925)
    video = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 2, 3, 8, 8).clone()
    mixed, _, mixed_targets, lam = mix_batch(np.random.default_rng(0), video, targets, mixup_alpha=0.0, cutmix_alpha=1.0)
    pasted = (mixed[0] != video[0]).float().mean().item()
    assert pasted == pytest.approx(1 - lam, abs=1e-6) and torch.allclose(mixed_targets.sum(-1), torch.ones(4))
    audio = torch.randn(4, 16, 8)
    mixed, mixed_audio, _, lam = mix_batch(np.random.default_rng(1), video, targets, audio, 0.8, 1.0)
    assert torch.allclose(mixed_audio, audio * lam + audio.flip(0) * (1 - lam))  # audio-visual: mixup, same weight
    assert torch.allclose(mixed, video * lam + video.flip(0) * (1 - lam))
    same = mix_batch(np.random.default_rng(0), video, targets, prob=0.0)
    assert same[3] == 1.0 and same[0] is video


def test_recall_at_k():
    similarity = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.3, 0.4, 0.2]])
    recall = recall_at_k(similarity, ks=(1, 2, 3))
    assert recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    assert recall_at_k(torch.eye(5), ks=(1,))[1] == 1.0
