"""The built-in demo's "objects" variant (a small object on a cluttered, moving background; the class is what the
object is, the sound a class-specific word) and the default ("motion") variant left as it was."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from hf_maskedav.data import demo_video
from hf_maskedav.data.demo_video import (
    DEMO_OBJECT_CLASSES,
    DEMO_VIDEO_CLASSES,
    DemoVideoDataset,
    render_clip,
    render_objects_clip,
)
from hf_maskedav.data.video import load_video_source
from hf_maskedav.video import read_video


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    return DemoVideoDataset("train", num_clips=10, variant="objects", cache_dir=str(tmp_path_factory.mktemp("objects")))


def test_objects_variant_writes_decodable_mp4s_with_audio_and_balanced_labels(objects, tmp_path):
    import av

    assert len(objects) == 10 and objects.label_names == DEMO_OBJECT_CLASSES and len(DEMO_OBJECT_CLASSES) == 10
    assert [objects[i]["label"] for i in range(10)] == list(range(10))  # balanced: index % 10
    assert "objects-v" in objects.folder.parent.name and "16f-64x64-8fps" in objects.folder.parent.name
    for index in (0, 7):
        decoded = read_video(objects[index]["video"])
        assert decoded.frames.shape == (16, 64, 64, 3) and decoded.info.fps == pytest.approx(8.0)
        with av.open(objects[index]["video"]) as container:
            assert {s.type for s in container.streams} == {"video", "audio"}
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.audio[0].codec_context.name == "aac"
            audio = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
        assert len(audio) >= 16000 * 1.9 and np.abs(audio).max() > 0.05  # 2 s of sound, not silence
        frames, _ = objects.render(index)
        stored = decoded.frames.numpy().astype(float).ravel()
        assert np.corrcoef(frames.astype(float).ravel(), stored)[0, 1] > 0.9
    rows = list(csv.reader(open(os.path.join(objects.folder, "metadata.csv"))))
    assert rows[0] == ["file_name", "label"] and rows[4] == ["00003.mp4", DEMO_OBJECT_CLASSES[3]]
    # the full splits are balanced too, and the labels reach the scripts through load_video_source
    full = DemoVideoDataset("test", variant="objects", cache_dir=str(tmp_path), prepare=False)
    counts = np.bincount([full.labels_of(i)[0] for i in range(len(full))])
    assert len(full) == 300 and counts.tolist() == [30] * 10
    source = load_video_source(split="validation", label_column="label", demo_num_clips=3, demo_cache_dir=str(tmp_path),
                               demo_options={"variant": "objects"})
    assert source.labels.names == list(DEMO_OBJECT_CLASSES) and len(source.data) == 3
    with pytest.raises(ValueError, match="unknown demo variant"):
        DemoVideoDataset("train", num_clips=1, variant="letters", cache_dir=str(tmp_path))


def test_objects_motion_is_drawn_independently_of_the_class(objects, monkeypatch):
    paths = []
    original = demo_video.object_path

    def recording(*args, **kwargs):
        paths.append(original(*args, **kwargs))
        return paths[-1]

    monkeypatch.setattr(demo_video, "object_path", recording)
    # over many clips, the object's mean speed says nothing about the class: per-class means agree within the spread
    data = DemoVideoDataset("validation", num_clips=60, variant="objects", cache_dir=str(objects.folder.parent),
                            prepare=False)
    speeds = np.zeros((10, 6))
    for index in range(60):
        data.render(index)
        x, y = paths.pop()
        speeds[index % 10, index // 10] = np.hypot(np.diff(x), np.diff(y)).mean()
    assert np.ptp(speeds.mean(1)) < 6 * speeds.std() / np.sqrt(6)
    # the same clip rendered as every class: the object follows the same path, the picture differs only on the object
    renders = []
    for label in range(10):
        monkeypatch.setattr(objects, "labels_of", lambda index, label=label: [label])
        renders.append(objects.render(4)[0].astype(int))
    assert all(np.array_equal(p[0], paths[0][0]) and np.array_equal(p[1], paths[0][1]) for p in paths)
    cx, cy = paths[0]
    yy, xx = np.mgrid[0:64, 0:64]
    for other in renders[1:]:
        changed = np.abs(other - renders[0]).sum(-1) > 0  # [T, H, W]
        assert changed.any(axis=(1, 2)).all()  # the object is in view in every frame and looks different
        near = (np.abs(xx[None] - cx[:, None, None]) < 9) & (np.abs(yy[None] - cy[:, None, None]) < 9)
        assert not (changed & ~near).any()  # and nothing else changed
def test_objects_sound_is_the_class_word_not_tied_to_the_motion():
    rng_seed, motion_seed = 5, 6
    _, wave_a = render_objects_clip([2], np.random.default_rng(rng_seed), motion_rng=np.random.default_rng(motion_seed))
    _, wave_b = render_objects_clip([2], np.random.default_rng(rng_seed), motion_rng=np.random.default_rng(99))
    assert np.array_equal(wave_a, wave_b)  # another motion, the same sound
    _, wave_c = render_objects_clip([3], np.random.default_rng(rng_seed), motion_rng=np.random.default_rng(motion_seed))
    assert not np.array_equal(wave_a, wave_c) and wave_a.shape == (32000,) and np.abs(wave_a).max() <= 0.9 + 1e-6


def test_default_variant_is_unchanged(tmp_path):
    data = DemoVideoDataset("train", num_clips=9, cache_dir=str(tmp_path), prepare=False)
    assert data.variant == "motion" and data.label_names == DEMO_VIDEO_CLASSES and len(DEMO_VIDEO_CLASSES) == 8
    assert data.folder.parent.name == "v8-seed0-32f-64x48-12fps-16000hz"  # the same cache folder as before
    assert [data.labels_of(i)[0] for i in range(9)] == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    assert DemoVideoDataset("test", cache_dir=str(tmp_path), prepare=False).num_clips == 160
    frames, wave = data.render(0)
    assert frames.shape == (32, 48, 64, 3)
    again, _ = render_clip([0], np.random.default_rng([0, 0, 0, 0]))
    assert np.array_equal(frames, again)
    # measured on the renderer before the variant was added (v8)
    assert frames.reshape(32, -1).mean(1)[0] == pytest.approx(126.81, abs=0.05)
    assert np.abs(wave).mean() == pytest.approx(0.21134, abs=1e-3)


def test_presets_for_the_objects_variant_keep_the_full_frame():
    from hf_maskedav.training import build_config
    from hf_maskedav.training.presets import audiovisual_processor_for, video_processor_for

    for name in ("videomae-tiny-64", "mae_st-tiny-64"):
        config = build_config(name)
        processor = video_processor_for(config, name)
        assert config.image_size == 64 and config.patch_size == 8 and config.mask_ratio == 0.9
        assert processor.crop_size.height == 64 and processor.size.shortest_edge == 64
    config = build_config("maskfeat-tiny-64")
    processor = video_processor_for(config, "maskfeat-tiny-64")
    assert config.image_size == 64 and config.patch_stride == [2, 8, 8] and config.mask_window_size == [4, 8, 8]
    assert processor.crop_size.height == 64 and processor.size.shortest_edge == 64
    config = build_config("mavil-tiny-64")
    processor = audiovisual_processor_for(config, "mavil-tiny-64")
    assert (config.image_size, config.num_frames, config.audio_mask_ratio, config.video_mask_ratio) == (64, 4, 0.5, 0.5)
    assert processor.video_processor.num_frames == 4 and processor.video_processor.fps == 4.0
