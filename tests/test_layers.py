"""Shared building blocks: masking, position tables, patchify, losses."""

import random

import pytest
import torch

from hf_maskedav.layers import (
    block_masking,
    cube_masking,
    ids_from_bool_mask,
    info_nce,
    masked_mse,
    normalize_per_patch,
    normalize_per_patch_channel,
    patchify_2d,
    patchify_3d,
    random_masking,
    restore_with_mask_tokens,
    gather_tokens,
    sincos_2d_table,
    sincos_3d_table,
    sinusoid_1d_table,
    time_frequency_masking,
    tube_masking,
    unpatchify_2d,
    unpatchify_3d,
)


def test_random_masking_follows_the_official_recipe():
    noise = torch.rand(3, 32)
    out = random_masking(noise, 0.8)
    len_keep = int(32 * (1 - 0.8))
    assert out.ids_keep.shape == (3, len_keep)
    assert torch.equal(out.ids_keep, torch.argsort(noise, dim=1)[:, :len_keep])  # ascending noise order
    assert torch.equal(out.mask.sum(1), torch.full((3,), 32.0 - len_keep))
    assert (out.mask.gather(1, out.ids_keep) == 0).all()
    # ids_restore undoes the shuffle
    shuffled = torch.argsort(noise, dim=1)
    assert torch.equal(torch.gather(shuffled, 1, out.ids_restore), torch.arange(32).expand(3, -1))


def test_restore_with_mask_tokens_puts_tokens_back():
    tokens = torch.arange(2 * 8, dtype=torch.float).reshape(2, 8, 1)
    masking = random_masking(torch.rand(2, 8), 0.5)
    visible = gather_tokens(tokens, masking.ids_keep)
    restored = restore_with_mask_tokens(visible, torch.full((1, 1, 1), -1.0), masking.ids_restore)
    expected = torch.where(masking.mask.bool()[..., None], torch.tensor(-1.0), tokens)
    assert torch.equal(restored, expected)


def test_ids_from_bool_mask_keeps_ascending_order_and_rejects_uneven_counts():
    mask = torch.tensor([[True, False, True, False], [False, True, True, False]])
    out = ids_from_bool_mask(mask)
    assert out.ids_keep.tolist() == [[1, 3], [0, 3]]
    with pytest.raises(ValueError, match="same number"):
        ids_from_bool_mask(torch.tensor([[True, False], [True, True]]))


def test_tube_masking_repeats_one_frame_mask_with_a_fixed_count():
    mask = tube_masking(4, num_frames=3, num_spatial=10, mask_ratio=0.9).reshape(4, 3, 10)
    assert (mask.sum(-1) == 9).all()
    assert torch.equal(mask[:, 0], mask[:, 1]) and torch.equal(mask[:, 0], mask[:, 2])


def test_time_frequency_masking_keeps_whole_rows_and_columns():
    ids = time_frequency_masking(torch.rand(2, 8), torch.rand(2, 4), 0.5, 0.5)
    assert ids.shape == (2, 4 * 2)
    rows, cols = ids // 4, ids % 4
    for n in range(2):
        assert len(set(rows[n].tolist())) == 4 and len(set(cols[n].tolist())) == 2


def test_block_and_cube_masking_reach_about_the_target():
    mask = block_masking(14, 14, num_masking_patches=78, rng=random.Random(0))
    assert mask.shape == (14, 14) and 60 <= int(mask.sum()) <= 78
    cube = cube_masking((8, 14, 14), num_masking_patches=627, rng=random.Random(0))
    assert cube.shape == (8, 14, 14) and 400 <= int(cube.sum()) <= 627


def test_patchify_round_trips():
    x = torch.randn(2, 3, 32, 48)
    assert patchify_2d(x, 16).shape == (2, 6, 768)
    assert torch.equal(unpatchify_2d(patchify_2d(x, 16), 16, (2, 3), channels=3), x)
    v = torch.randn(2, 3, 4, 32, 32)
    assert patchify_3d(v, 2, 16).shape == (2, 8, 2 * 16 * 16 * 3)
    assert torch.equal(unpatchify_3d(patchify_3d(v, 2, 16), 2, 16, (2, 2, 2), channels=3), v)
    with pytest.raises(ValueError, match="divisible"):
        patchify_2d(torch.randn(1, 1, 30, 32), 16)


def test_patchify_2d_value_order_is_row_col_channel():
    x = torch.arange(2 * 2 * 2, dtype=torch.float).reshape(1, 2, 2, 2)  # C=2, H=W=2, p=2 -> one patch
    assert patchify_2d(x, 2)[0, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_target_normalisations():
    x = torch.randn(2, 5, 12)
    y = normalize_per_patch(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    z = normalize_per_patch_channel(x, channels=3).reshape(2, 5, 4, 3)
    torch.testing.assert_close(z.mean(-2), torch.zeros(2, 5, 3), atol=1e-5, rtol=0)


def test_masked_mse_counts_only_masked_tokens():
    pred, target = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    target[0, 0] = 3.0
    assert masked_mse(pred, target, torch.tensor([[1.0, 0, 0, 0]])) == 9.0
    assert masked_mse(pred, target, torch.tensor([[0.0, 1, 1, 0]])) == 1.0


def test_info_nce_prefers_aligned_pairs():
    a = torch.randn(8, 16)
    assert info_nce(a, a, 0.1) < info_nce(a, torch.randn(8, 16), 0.1)


def test_sincos_tables():
    t = sincos_2d_table(16, 3, 5, cls_token=True)
    assert t.shape == (16, 16) and t[0].abs().sum() == 0
    assert sincos_3d_table(32, 2, 3, 3).shape == (18, 32)
    s = sinusoid_1d_table(10, 8)
    torch.testing.assert_close(s[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(s[3, 1], torch.cos(torch.tensor(3.0)))


# ---------------------------------------------------------------------------------------------- the one-home blocks


def test_position_table_modes_keep_their_state_dict_key():
    from torch import nn

    from hf_maskedav.layers import PositionTable

    def build(n):
        return sinusoid_1d_table(n, 8)

    fixed, stored, learned = (PositionTable(build, 4, mode=m) for m in ("fixed", "stored", "learned"))
    assert "table" not in fixed.state_dict()  # non-persistent buffer: rebuilt, never saved
    assert torch.equal(stored.state_dict()["table"], build(4)[None])  # persistent buffer
    assert isinstance(learned.table, nn.Parameter) and list(learned.state_dict()) == ["table"]
    assert torch.equal(fixed.for_grid(6), build(6)[None])  # the fixed table follows another grid
    for table, verb in ((stored, "stores"), (learned, "learns")):
        with pytest.raises(ValueError, match=f"this model {verb} its position table for a token grid of"):
            table.for_grid(6)
    with pytest.raises(ValueError, match="mode must be one of"):
        PositionTable(build, 4, mode="frozen")


def test_mask_from_noise_checks_the_shape_and_draws_each_kind():
    from hf_maskedav.layers import checked_noise, mask_from_noise, num_masked_tokens, tube_mask_from_noise

    noise = torch.rand(2, 12)
    masking = mask_from_noise("random", noise, (12,), 0.75, batch=2)
    assert torch.equal(masking.ids_keep, random_masking(noise, 0.75).ids_keep)
    with pytest.raises(ValueError, match=r"audio_noise must have shape \(2, 12\) \(batch, audio patches\), got \(2, 11\)"):
        mask_from_noise("random", noise[:, :11], (12,), 0.75, batch=2, name="audio_noise", what="batch, audio patches")
    grid = (2, 2, 3)
    cells = torch.rand(2, 6)
    tube = mask_from_noise("tube", cells, grid, 0.5, batch=2)
    assert torch.equal(tube.mask.bool(), tube_mask_from_noise(cells, 2, 0.5))
    assert (tube.mask.sum(1) == num_masked_tokens("tube", grid, 0.5)).all()
    assert (tube.ids_keep.diff(dim=1) > 0).all()  # kept tokens in ascending position
    count = mask_from_noise("count", torch.rand(2, 12), grid, 0.5, batch=2)
    assert (count.mask.sum(1) == num_masked_tokens("count", grid, 0.5)).all()
    with pytest.raises(ValueError, match=r"one value per spatial cell \(2x3\) for tube masking"):
        mask_from_noise("tube", torch.rand(2, 12), grid, 0.5, batch=2)
    with pytest.raises(ValueError, match="mask kind must be one of"):
        mask_from_noise("blocks", None, grid, 0.5, batch=2)
    assert checked_noise(None, (3, 4)).shape == (3, 4)
    # tube_masking's generator draw masks the cells with the smallest noise, as before it went through the helper
    generator = torch.Generator().manual_seed(3)
    drawn = tube_masking(2, 2, 6, 0.5, generator=generator)
    noise = torch.rand(2, 6, generator=torch.Generator().manual_seed(3))
    smallest = torch.argsort(torch.argsort(noise, dim=1), dim=1) < 3
    assert torch.equal(drawn, smallest.repeat(1, 2))


def test_transformer_layers_builds_the_drop_path_list_of_the_whole_encoder():
    from types import SimpleNamespace

    from hf_maskedav.layers import transformer_layers

    config = SimpleNamespace(layer_norm_eps=1e-6, hidden_act="gelu", _attn_implementation="eager")
    layers = transformer_layers(config, 2, 8, 2, 16, drop_path_rate=0.3, drop_path_depth=4, dropout=0.1)
    assert [layer.drop_path.drop_prob for layer in layers] == pytest.approx([0.0, 0.1])
    assert layers[0].dropout.p == 0.1 and layers[0].norm1.eps == 1e-6
    assert len(transformer_layers(config, 0, 8, 2, 16)) == 0


def test_input_checks_name_the_problem_and_the_processor():
    from hf_maskedav.layers import as_frame, as_spectrogram, as_video

    fbank = torch.randn(2, 32, 16)
    assert as_spectrogram(fbank, num_mel_bins=16, processor="P").shape == (2, 1, 32, 16)
    with pytest.raises(ValueError, match="15 mel bins but the model expects 16"):
        as_spectrogram(fbank[..., :15], num_mel_bins=16, processor="P")
    with pytest.raises(ValueError, match=r"built for 64 \(config.max_length\).*\(P does\)"):
        as_spectrogram(fbank, num_mel_bins=16, max_length=64, processor="P")
    with pytest.raises(ValueError, match="whole number of patches of 5 frames"):
        as_spectrogram(fbank, num_mel_bins=16, patch_size=5, whole_patches=True, processor="P")
    with pytest.raises(TypeError, match="input_values must be a torch.Tensor"):
        as_spectrogram(fbank.numpy(), num_mel_bins=16, processor="P")
    clip = torch.randn(1, 4, 3, 8, 8)
    sizes = dict(num_channels=3, num_frames=4, tubelet_size=2, patch_size=4, processor="V")
    assert as_video(clip, **sizes).shape == (1, 3, 4, 8, 8)
    with pytest.raises(ValueError, match=r"permute\(0, 2, 1, 3, 4\)"):
        as_video(torch.randn(1, 3, 4, 8, 8), **sizes)  # (batch, channels, frames, ...)
    with pytest.raises(ValueError, match=r"shape \(batch, 4, 3, 16, 16\)"):
        as_video(clip, image_size=16, **sizes)
    with pytest.raises(ValueError, match="one frame per clip"):
        as_frame(clip, num_channels=3, image_size=8, processor="F")
    assert as_frame(clip[:, :1], num_channels=3, image_size=8, processor="F").shape == (1, 3, 8, 8)


@pytest.mark.parametrize("normalize", [True, False])
def test_video_pixel_targets_equal_the_patchified_clip(normalize):
    from hf_maskedav.layers import video_pixel_targets

    video = torch.randn(2, 3, 4, 8, 8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    raw = video * torch.tensor(std).view(1, 3, 1, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1, 1)
    reference = patchify_3d(raw, 2, 4)  # [N, 8, 2*4*4*3]
    if normalize:
        reference = normalize_per_patch_channel(reference, 3)
    ids = torch.tensor([[0, 3, 5], [7, 1, 2]])
    targets = video_pixel_targets(video, ids, (2, 4, 4), mean, std, normalize)
    torch.testing.assert_close(targets, gather_tokens(reference, ids), rtol=1e-5, atol=1e-5)
