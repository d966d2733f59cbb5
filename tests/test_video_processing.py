"""Video decoding (torchcodec and PyAV), frame sampling, in-memory layouts and the two families' video processors."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoVideoProcessor

from hf_maskedav import (
    MAESTConfig,
    MAESTVideoProcessor,
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEVideoProcessor,
)
from hf_maskedav.video import (
    VideoDecodingError,
    available_backends,
    clip_frame_indices,
    decode_video,
    multi_clip_frame_indices,
    probe_video,
    read_video,
    to_rgb_video,
    uniform_frame_indices,
)
from hf_maskedav.video import decoding

from video_helpers import frame_ids, write_audio_only, write_video

BACKENDS = available_backends()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "mp4": write_video(root / "clip.mp4", num_frames=24),
        "grey": write_video(root / "grey.mkv", num_frames=6, grey=True),
        "audio": write_audio_only(root / "speech.m4a"),
        "corrupt": corrupt,
        "empty": empty,
        "missing": root / "nope.mp4",
    }


def small(processor_class, **kwargs):
    fields = dict(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    fields.update(kwargs)
    return processor_class(**fields)


# ------------------------------------------------------------------------------------------------------ sampling


def test_clip_frame_indices():
    assert clip_frame_indices(24, 4, 2).tolist() == [8, 10, 12, 14]  # centred: free range 17, start 8
    assert clip_frame_indices(24, 4, 2, "start").tolist() == [0, 2, 4, 6]
    assert clip_frame_indices(24, 4, 2, "end").tolist() == [17, 19, 21, 23]
    assert clip_frame_indices(24, 4, 1.5, "start").tolist() == [0, 1, 3, 4]
    # shorter than the clip: start at 0 and repeat the last frame (official loaders)
    assert clip_frame_indices(5, 4, 2).tolist() == [0, 2, 4, 4]
    random = clip_frame_indices(100, 4, 4, "random", generator=torch.Generator().manual_seed(0))
    assert (random.diff() == 4).all() and 0 <= int(random[0]) <= 100 - 13
    assert uniform_frame_indices(24, 4).tolist() == [0, 6, 12, 18]
    assert multi_clip_frame_indices(24, 4, 2, 3)[:, 0].tolist() == [0, 8, 17]
    with pytest.raises(ValueError, match="position"):
        clip_frame_indices(24, 4, 2, "middle")
    with pytest.raises(ValueError, match="no frames"):
        clip_frame_indices(0, 4, 2)


# ------------------------------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_video_returns_the_requested_frames(files, backend):
    info = probe_video(files["mp4"], backend=backend)
    assert (info.num_frames, info.height, info.width, info.fps) == (24, 40, 48, 12.0)
    frames = decode_video(files["mp4"], num_frames=4, sample_rate=3, backend=backend)
    assert frames.dtype == torch.uint8 and frames.shape == (4, 40, 48, 3)
    assert frame_ids(frames) == clip_frame_indices(24, 4, 3).tolist()
    assert frame_ids(decode_video(files["mp4"], frame_indices=[5, 5, 1], backend=backend)) == [5, 5, 1]
    assert frame_ids(decode_video(files["mp4"], num_frames=3, fps=4, position="start", backend=backend)) == [0, 3, 6]
    assert decode_video(files["mp4"], backend=backend).shape[0] == 24
    decoded = read_video(files["mp4"], num_frames=2, sample_rate=1, position="start", backend=backend)
    assert decoded.indices.tolist() == [0, 1] and decoded.info.backend == backend


def test_both_backends_agree(files):
    if len(BACKENDS) < 2:
        pytest.skip(f"only {BACKENDS} available")
    a = decode_video(files["mp4"], num_frames=4, sample_rate=2, backend="torchcodec")
    b = decode_video(files["mp4"], num_frames=4, sample_rate=2, backend="pyav")
    assert (a.int() - b.int()).abs().max() <= 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_grey_scale_video_file_decodes_to_rgb(files, backend):
    frames = decode_video(files["grey"], backend=backend)
    assert frames.shape == (6, 40, 48, 3)
    assert torch.equal(frames[..., 0], frames[..., 1]) and torch.equal(frames[..., 0], frames[..., 2])
    assert frame_ids(frames) == list(range(6))


# torchcodec alone (PyAV absent) must give the same clear errors as with PyAV's stream probe
ERROR_CASES = [(b, True) for b in BACKENDS] + ([("torchcodec", False)] if "torchcodec" in BACKENDS else [])


@pytest.mark.parametrize("backend,pyav_probe", ERROR_CASES, ids=[f"{b}-probe={p}" for b, p in ERROR_CASES])
def test_bad_files_get_clear_errors(files, backend, pyav_probe, monkeypatch):
    if not pyav_probe:
        monkeypatch.setattr(decoding, "_pyav_usable", lambda: False)
    with pytest.raises(VideoDecodingError, match="audio-only"):
        decode_video(files["audio"], num_frames=4, backend=backend)
    with pytest.raises(VideoDecodingError, match="corrupt"):
        decode_video(files["corrupt"], backend=backend)
    with pytest.raises(VideoDecodingError, match="empty"):
        probe_video(files["empty"], backend=backend)
    with pytest.raises(FileNotFoundError):
        decode_video(files["missing"], backend=backend)
    with pytest.raises(IndexError, match="frame_indices"):
        decode_video(files["mp4"], frame_indices=[0, 99], backend=backend)


# ------------------------------------------------------------------------------------------- in-memory layouts


def test_to_rgb_video_layouts():
    video = torch.randint(0, 255, (5, 12, 10, 3), dtype=torch.uint8)
    assert to_rgb_video(video).shape == (5, 3, 12, 10)
    assert torch.equal(to_rgb_video(video.permute(0, 3, 1, 2)), to_rgb_video(video))
    grey = to_rgb_video(video[..., :1])
    assert grey.shape == (5, 3, 12, 10) and torch.equal(grey[:, 0], grey[:, 2])
    assert to_rgb_video(torch.cat([video, video[..., :1]], -1)).shape == (5, 3, 12, 10)  # RGBA: alpha dropped
    assert to_rgb_video([f[..., 0].numpy() for f in video]).shape == (5, 3, 12, 10)  # list of 2-D grey frames
    assert to_rgb_video([Image.fromarray(f[..., 0].numpy(), mode="L") for f in video]).shape == (5, 3, 12, 10)
    with pytest.raises(ValueError, match="ambiguous"):
        to_rgb_video(video[..., 0])
    with pytest.raises(ValueError, match="channel axis"):
        to_rgb_video(torch.zeros(5, 12, 10, 7))
    with pytest.raises(ValueError, match="same shape"):
        to_rgb_video([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))])


# ----------------------------------------------------------------------------------------------------- processors


def test_family_statistics_and_defaults():
    videomae, mae_st = MaskedAVVideoMAEVideoProcessor(), MAESTVideoProcessor()
    assert list(videomae.image_mean) == [0.485, 0.456, 0.406] and list(videomae.image_std) == [0.229, 0.224, 0.225]
    assert list(mae_st.image_mean) == [0.45] * 3 and list(mae_st.image_std) == [0.225] * 3
    for processor in (videomae, mae_st):
        assert (processor.num_frames, processor.frame_sampling_rate, processor.crop_size.height) == (16, 4, 224)
    white = np.full((4, 16, 16, 3), 255, np.uint8)
    for cls in (MaskedAVVideoMAEVideoProcessor, MAESTVideoProcessor):
        processor = small(cls)
        pixels = processor(white, return_tensors="pt")["pixel_values"]
        expected = (1 - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
        torch.testing.assert_close(pixels[0, 0, :, 0, 0], expected.float())


@pytest.mark.parametrize("cls", [MaskedAVVideoMAEVideoProcessor, MAESTVideoProcessor])
def test_processor_honours_num_frames_and_sampling_rate(files, cls):
    processor = small(cls)
    out = processor(str(files["mp4"]), return_tensors="pt", return_metadata=True)
    assert out["pixel_values"].shape == (1, 4, 3, 16, 16)
    assert out["video_metadata"][0].frames_indices == clip_frame_indices(24, 4, 2).tolist()
    out = processor(str(files["mp4"]), num_frames=6, frame_sampling_rate=3, return_tensors="pt", return_metadata=True)
    assert out["pixel_values"].shape[1] == 6
    assert out["video_metadata"][0].frames_indices == clip_frame_indices(24, 6, 3).tolist()
    uniform = processor(str(files["mp4"]), temporal_sampling="uniform", return_tensors="pt", return_metadata=True)
    assert uniform["video_metadata"][0].frames_indices == [0, 6, 12, 18]
    by_fps = processor(str(files["mp4"]), fps=4, return_tensors="pt", return_metadata=True)  # 12 fps source: every 3rd
    assert by_fps["video_metadata"][0].frames_indices == clip_frame_indices(24, 4, 3).tolist()
    # arrays are sampled the same way as files
    array = np.stack([np.full((40, 48, 3), 10 * i, np.uint8) for i in range(24)])
    from_array = processor(array, return_tensors="pt", return_metadata=True)
    assert from_array["video_metadata"][0].frames_indices == clip_frame_indices(24, 4, 2).tolist()
    from_path = processor(str(files["mp4"]), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(from_array["pixel_values"], from_path, atol=0.1, rtol=0)  # mpeg4 is lossy


def test_processor_inputs_batches_and_grey_scale(files):
    processor = small(MaskedAVVideoMAEVideoProcessor)
    video = np.random.default_rng(0).integers(0, 255, (10, 20, 24, 3), dtype=np.uint8)
    reference = processor(video, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(processor(list(video), return_tensors="pt")["pixel_values"], reference)
    torch.testing.assert_close(processor(torch.from_numpy(video).permute(0, 3, 1, 2), return_tensors="pt")["pixel_values"], reference)
    batch = processor([video, list(video), str(files["mp4"])], return_tensors="pt")["pixel_values"]
    assert batch.shape == (3, 4, 3, 16, 16)
    torch.testing.assert_close(batch[:2], reference.expand(2, -1, -1, -1, -1))
    assert processor(np.stack([video, video]), return_tensors="pt")["pixel_values"].shape == (2, 4, 3, 16, 16)
    # grey-scale: 2-D frames, PIL "L" frames, (T, H, W, 1) all become three equal channels
    grey = video[..., 0]
    for given in ([f for f in grey], [Image.fromarray(f, mode="L") for f in grey], grey[..., None]):
        pixels = processor(given, return_tensors="pt")["pixel_values"]
        assert pixels.shape == (1, 4, 3, 16, 16)
        torch.testing.assert_close(pixels[:, :, 0] * 0.229 + 0.485, pixels[:, :, 1] * 0.224 + 0.456)
    with pytest.raises(ValueError, match="ambiguous"):
        processor(grey)
    with pytest.raises(VideoDecodingError, match="audio-only"):
        processor(str(files["audio"]))
    with pytest.raises(VideoDecodingError, match="corrupt"):
        processor(str(files["corrupt"]))


@pytest.mark.parametrize(
    "config_class,processor_class",
    [(MaskedAVVideoMAEConfig, MaskedAVVideoMAEVideoProcessor), (MAESTConfig, MAESTVideoProcessor)],
)
def test_auto_video_processor_round_trip(tmp_path, config_class, processor_class):
    config_class().save_pretrained(tmp_path)
    small(processor_class, frame_sampling_rate=3, temporal_sampling="start").save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is processor_class
    assert (loaded.num_frames, loaded.frame_sampling_rate, loaded.temporal_sampling) == (4, 3, "start")
    assert list(loaded.image_mean) == list(processor_class().image_mean)
