"""The fast paths give the same values as the straightforward ones, and every pretraining family runs under bf16
autocast and compiles into one graph (dynamo, no graph break). A few seconds; the timed benchmarks are in
benchmarks/ (``pytest -m benchmark``)."""

import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from hf_maskedav import AudioMAEFeatureExtractor, MaskedAVVideoMAEConfig, MaskedAVVideoMAEForPreTraining
from hf_maskedav.audio import kaldi_fbank
from hf_maskedav.layers import (
    PatchEmbed2D,
    TubeletEmbed3D,
    gather_tokens,
    ids_from_bool_mask,
    ids_from_fixed_count_mask,
    mask_from_noise,
    num_masked_tokens,
    patchify_2d,
    patchify_3d,
    select_patches,
)
from hf_maskedav.video import decode_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.families import FAMILIES, InputSize, build  # noqa: E402

from video_helpers import STEP, frame_ids  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_ids(batch, length, count, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(length, generator=gen)[:count] for _ in range(batch)])


# ---------------------------------------------------------------------------------------------------- patch selection
@pytest.mark.parametrize("count", [3, 20], ids=["few-tokens", "most-tokens"])  # the two code paths
def test_select_patches_equals_patchify_then_gather(count):
    video = torch.randn(2, 6, 3, 16, 24).permute(0, 2, 1, 3, 4)  # [N, C, T, H, W] as a permuted view
    ids = _random_ids(2, 3 * 2 * 3, min(count, 18))
    picked = select_patches(video, ids, (2, 8, 8))  # [N, K, C, t, p, p]
    reference = gather_tokens(patchify_3d(video, 2, 8), ids)  # values ordered (t, p, q, C)
    torch.testing.assert_close(picked.permute(0, 1, 3, 4, 5, 2).flatten(2), reference, rtol=0, atol=0)

    image = torch.randn(2, 1, 32, 24)
    ids = _random_ids(2, 12, min(count, 12), seed=1)
    picked = select_patches(image, ids, (8, 8))
    torch.testing.assert_close(picked.flatten(2), gather_tokens(patchify_2d(image, 8), ids), rtol=0, atol=0)


@pytest.mark.parametrize("count", [3, 20])
def test_embed_selected_equals_convolution_then_gather_with_the_same_gradients(count):
    torch.manual_seed(0)
    embed = TubeletEmbed3D(3, 16, 2, 8)
    video = torch.randn(2, 3, 6, 16, 24)
    ids = _random_ids(2, 18, min(count, 18))
    fast = embed.embed_selected(video, ids)
    slow = gather_tokens(embed(video), ids)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    grads = [torch.autograd.grad(out.square().sum(), embed.proj.weight)[0] for out in (fast, slow)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)

    audio = PatchEmbed2D(1, 16, 8)
    spectrogram = torch.randn(2, 1, 35, 16)  # 35 frames: the trailing 3 fill no patch, as in the convolution
    ids = _random_ids(2, 8, 5)
    torch.testing.assert_close(audio.embed_selected(spectrogram, ids), gather_tokens(audio(spectrogram), ids),
                               rtol=1e-5, atol=1e-6)
    overlapping = PatchEmbed2D(1, 16, 8, stride=6)  # falls back to the convolution
    torch.testing.assert_close(overlapping.embed_selected(spectrogram, ids), gather_tokens(overlapping(spectrogram), ids))


def test_patch_tokens_are_contiguous():
    # a transposed [N, L, D] view would make every residual add and LayerNorm of the encoder copy or stride
    assert TubeletEmbed3D(3, 16, 2, 8)(torch.randn(1, 3, 4, 16, 16)).is_contiguous()
    assert PatchEmbed2D(1, 16, 8)(torch.randn(1, 1, 16, 16)).is_contiguous()


def test_fixed_count_indices_match_the_checked_ones():
    mask = torch.zeros(3, 10, dtype=torch.bool)
    for row, cols in enumerate(([1, 2, 7], [0, 4, 9], [3, 5, 6])):
        mask[row, cols] = True
    checked, fast = ids_from_bool_mask(mask), ids_from_fixed_count_mask(mask, 7)
    for name in ("ids_keep", "ids_restore", "mask"):
        assert torch.equal(getattr(checked, name), getattr(fast, name))


# ------------------------------------------------------------------------------------------------------------ VideoMAE
def _tiny_videomae(**overrides):
    fields = dict(image_size=32, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=1,
                  num_attention_heads=2, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
                  decoder_num_attention_heads=2, decoder_intermediate_size=32, mask_ratio=0.5)
    fields.update(overrides)
    return MaskedAVVideoMAEConfig(**fields)


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_videomae_masked_targets_are_the_reconstruction_target_of_the_masked_tokens(norm_pix_loss):
    model = MaskedAVVideoMAEForPreTraining(_tiny_videomae(norm_pix_loss=norm_pix_loss))
    pixel_values = torch.randn(2, 4, 3, 32, 32)
    ids_masked = torch.tensor([[0, 3, 5, 6], [1, 2, 4, 7]])
    fast = model._masked_targets(pixel_values.permute(0, 2, 1, 3, 4), ids_masked)  # [N, M, K, C]
    reference = gather_tokens(model.reconstruction_target(pixel_values), ids_masked)  # [N, M, K*C]
    torch.testing.assert_close(fast.flatten(2), reference, rtol=1e-5, atol=1e-5)


def test_videomae_drawn_mask_has_the_announced_count_and_equals_the_given_mask():
    config = _tiny_videomae(mask_ratio=0.75)
    grid = config.grid_size  # (2, 2, 2)
    noise = torch.rand(3, 4)
    mask = mask_from_noise("tube", noise, grid, 0.75, batch=3).mask.bool()  # the draw the model makes from noise
    assert (mask.sum(1) == num_masked_tokens("tube", grid, 0.75)).all()
    model = MaskedAVVideoMAEForPreTraining(config).eval()
    x = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        drawn, given = model(x, noise=noise), model(x, bool_masked_pos=mask)
    torch.testing.assert_close(drawn.loss, given.loss)
    torch.testing.assert_close(drawn.logits, given.logits)
    with pytest.raises(ValueError, match="masks no token"):
        model(x, mask_ratio=0.1)


# ------------------------------------------------------------------------------------------------- every family
@pytest.mark.parametrize("family", list(FAMILIES))
def test_bf16_autocast_pretraining_step(family):
    model, _, inputs = build(family, "test", InputSize(batch_size=2), torch.device("cpu"))
    model.eval()  # no dropout: the fp32 and bf16 runs see the same function
    reference = model(**inputs).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).loss
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=0.05, atol=0.05)
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("family", ["videomae", "maskfeat"])
def test_pretraining_compiles_into_one_graph(family):
    """``fullgraph=True``: no graph break, no device read-back in the step (dynamo only, to stay fast; the
    benchmarks compile every family with inductor and AOTAutograd)."""
    torch._dynamo.reset()
    model, _, inputs = build(family, "test", InputSize(batch_size=2), torch.device("cpu"))
    model.eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    loss = compiled(**inputs).loss
    loss.backward()
    torch.testing.assert_close(loss, model(**inputs).loss)


# ---------------------------------------------------------------------------------------------------------- fbank
def test_fbank_float64_path_matches_torchaudio_kaldi_in_double_precision():
    from torchaudio.compliance.kaldi import fbank

    gen = torch.Generator().manual_seed(0)
    waves = torch.randn(2, 8000, generator=gen, dtype=torch.float64) * 0.1
    ours = kaldi_fbank(waves)
    for i in range(2):
        reference = fbank(waves[i : i + 1], htk_compat=True, sample_frequency=16000, use_energy=False,
                          window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
        torch.testing.assert_close(ours[i], reference.float(), rtol=0, atol=1e-5)


def test_feature_extractor_cuts_long_clips_to_the_frames_it_keeps():
    clip = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    extractor = AudioMAEFeatureExtractor(max_length=100)
    out = extractor(clip, sampling_rate=16000, return_tensors="pt").input_values[0]
    full = kaldi_fbank(torch.from_numpy(clip - clip.mean())[None])[0, :100]
    torch.testing.assert_close(out, (full - extractor.mean) / (2 * extractor.std), rtol=0, atol=1e-6)


def test_fbank_dtype_is_saved_and_checked(tmp_path):
    extractor = AudioMAEFeatureExtractor(fbank_dtype="float32")
    extractor.save_pretrained(tmp_path)
    assert AudioMAEFeatureExtractor.from_pretrained(tmp_path).fbank_dtype == "float32"
    clip = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    a = extractor(clip, sampling_rate=16000, return_tensors="pt").input_values
    b = AudioMAEFeatureExtractor()(clip, sampling_rate=16000, return_tensors="pt").input_values
    assert (a - b).abs().max() < 1e-3
    with pytest.raises(ValueError, match="fbank_dtype"):
        AudioMAEFeatureExtractor(fbank_dtype="float16")


# ------------------------------------------------------------------------------------------------- PyAV seeking
def _video_with_keyframes(path, num_frames=24, gop=5):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 48, 40, "yuv420p"
        stream.gop_size = gop
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((40, 48, 3), STEP * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_pyav_seeks_to_the_keyframe_before_the_clip_and_returns_the_right_frames(tmp_path, monkeypatch):
    from hf_maskedav.video import decoding

    path = _video_with_keyframes(tmp_path / "gop.mp4")
    with av.open(str(path)) as container:
        plan = decoding._pyav_seek_plan(container, container.streams.video[0], 13)
    assert plan is not None and 0 < plan[1][plan[0]] <= 13  # starts at a keyframe after frame 0, before frame 13
    for indices in ([13, 15, 17, 19], [22, 3, 12], [0, 23]):
        assert frame_ids(decode_video(path, frame_indices=indices, backend="pyav")) == indices
    # time stamps that do not match the scan: decoded from the start instead
    monkeypatch.setattr(decoding, "_pyav_seek_plan", lambda c, s, first: (plan[0], {}))
    assert frame_ids(decode_video(path, frame_indices=[13, 20], backend="pyav")) == [13, 20]
