"""VideoMAE V2 (dual masking) on tiny models: the running-cell decoder mask, the official seeded generator, the decoder
that reconstructs only the kept tokens, the engine's loss, V1 equivalence at ratio 0, and clear errors.

Numbers against the official code are checked by tests/test_official_parity.py (videomaev2_* fixtures)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file, save_file

from hf_maskedav import MaskedAVVideoMAEConfig, MaskedAVVideoMAEForPreTraining
from hf_maskedav.conversion import UnmappedKeysError, videomae_v2
from hf_maskedav.conversion.cli import convert
from hf_maskedav.conversion.videomae import config_from_official_kwargs, load_official_checkpoint_file
from hf_maskedav.conversion.videomae_v2 import load_remote_code_videomaev2
from hf_maskedav.layers import masked_mse, running_cell_counts, running_cell_mask, videomae_v2_masks


def _load_script(name):
    path = Path(__file__).resolve().parents[1] / "conversion" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

# 8 frames of 32x32, tubelets 2x8x8 -> a 4x4x4 token grid (L = 64)
TINY = dict(
    image_size=32, patch_size=8, num_frames=8, tubelet_size=2,
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2, decoder_intermediate_size=32,
    mask_ratio=0.75, decoder_mask_ratio=0.5,
)


def tiny(**overrides):
    return MaskedAVVideoMAEForPreTraining(MaskedAVVideoMAEConfig(**{**TINY, **overrides})).eval()


def clip(batch=2, frames=8, size=32, seed=0):
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("ratio, dropped", [(0.25, 1), (0.5, 2), (0.75, 3)])
def test_running_cell_drops_the_same_share_of_every_cell_and_moves_each_frame(ratio, dropped):
    grid = (4, 4, 6)
    masks = running_cell_mask(torch.arange(4), grid, ratio).view(4, 4, 2, 2, 3, 2)  # [start, T', cell row, r, cell col, c]
    per_cell = masks.sum(dim=(3, 5))  # [start, T', 2, 3]: dropped positions of each 2x2 cell
    assert (per_cell == dropped).all()
    frames = masks.permute(0, 1, 3, 5, 2, 4)[..., 0, 0].reshape(4, 4, 4)  # [start, T', position in the cell]
    assert torch.equal(frames[:, 1], frames[:, 0].roll(-1, dims=1)), "the pattern moves by one cell position a frame"
    assert not torch.equal(frames[0], frames[1]), "the start pointer picks one of 4 different masks"
    assert running_cell_counts(grid, ratio) == [dropped * 4 * 6] * 4


def test_running_cell_on_odd_grids_counts_follow_the_start():
    assert len(set(running_cell_counts((2, 7, 7), 0.5))) > 1  # 112 px at patch 16, 4 frames: counts differ
    assert len(set(running_cell_counts((8, 7, 7), 0.5))) == 1  # 8 time slices: every pointer twice, fixed count


def test_official_seeded_generator_is_reproducible_and_tube_shaped():
    a = videomae_v2_masks(np.random.RandomState(5), 3, (4, 4, 4), 0.75, 0.5)
    b = videomae_v2_masks(np.random.RandomState(5), 3, (4, 4, 4), 0.75, 0.5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    encoder, decoder = a
    assert (encoder.sum(1) == 4 * 12).all() and (decoder.sum(1) == 32).all()
    frames = encoder.view(3, 4, 16)
    assert (frames == frames[:, :1]).all(), "tube: the same cells in every time slice"


def test_dual_masking_reconstructs_the_kept_tokens_and_counts_only_masked_ones():
    model = tiny()
    pixel_values = clip()
    encoder_mask, decoder_mask = videomae_v2_masks(np.random.RandomState(0), 2, (4, 4, 4), 0.75, 0.5)
    out = model(pixel_values, bool_masked_pos=encoder_mask, decode_masked_pos=decoder_mask)
    assert out.logits.shape == (2, 32, 2 * 8 * 8 * 3)  # half of the 64 tokens are reconstructed
    assert torch.equal(out.decoder_mask.bool(), decoder_mask)
    kept = torch.argsort(decoder_mask.long(), dim=1, stable=True)[:, :32]
    target = torch.gather(model.reconstruction_target(pixel_values), 1, kept[..., None].expand(-1, -1, 384))
    expected = masked_mse(out.logits, target, torch.gather(encoder_mask, 1, kept))
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.decoder.mask_token.grad is not None and model.videomae.layers[0].mlp.fc1.weight.grad.abs().sum() > 0


def test_drawn_decoder_mask_has_the_configured_ratio():
    out = tiny()(clip(batch=3))
    assert out.decoder_mask.shape == (3, 64) and (out.decoder_mask.sum(1) == 32).all()
    assert out.logits.shape[1] == 32
    assert out.decoder_mask.view(3, 4, 16).sum(-1).eq(8).all(), "half of every time slice"


def test_decoder_noise_pins_the_draw():
    model, pixel_values = tiny(), clip()
    noise = torch.rand(2, 16, generator=torch.Generator().manual_seed(1))
    decoder_noise = torch.tensor([0.1, 0.8])  # start pointers 0 and 3
    a = model(pixel_values, noise=noise, decoder_noise=decoder_noise)
    b = model(pixel_values, noise=noise, decoder_noise=decoder_noise)
    torch.testing.assert_close(a.loss, b.loss)
    assert torch.equal(a.decoder_mask.bool(), running_cell_mask(torch.tensor([0, 3]), (4, 4, 4), 0.5))
    with pytest.raises(ValueError, match="decoder_noise must have shape"):
        model(pixel_values, decoder_noise=torch.rand(3))


def test_ratio_zero_is_videomae_v1():
    model = tiny(decoder_mask_ratio=0.0)
    pixel_values, noise = clip(), torch.rand(2, 16, generator=torch.Generator().manual_seed(1))
    v1 = model(pixel_values, noise=noise)
    assert v1.decoder_mask is None and v1.logits.shape == (2, 48, 384)
    v2_off = model(pixel_values, bool_masked_pos=v1.mask.bool(), decode_masked_pos=~v1.mask.bool())
    torch.testing.assert_close(v2_off.logits, v1.logits)
    torch.testing.assert_close(v2_off.loss, v1.loss)
    # the forward argument overrides the config both ways
    assert tiny()(pixel_values, noise=noise, decoder_mask_ratio=0.0).logits.shape == (2, 48, 384)
    assert model(pixel_values, noise=noise, decoder_mask_ratio=0.5).logits.shape == (2, 32, 384)


def test_bad_decoder_masks_are_refused_clearly():
    model, pixel_values = tiny(), clip()
    with pytest.raises(ValueError, match="decode_masked_pos must have shape"):
        model(pixel_values, decode_masked_pos=torch.zeros(2, 63, dtype=torch.bool))
    uneven = torch.zeros(2, 64, dtype=torch.bool)
    uneven[0, :10] = True
    with pytest.raises(ValueError, match="same number of tokens"):
        model(pixel_values, decode_masked_pos=uneven)
    with pytest.raises(ValueError, match="every token"):
        model(pixel_values, decode_masked_pos=torch.ones(2, 64, dtype=torch.bool))
    with pytest.raises(StrictDataclassClassValidationError, match="decoder_mask_ratio"):
        MaskedAVVideoMAEConfig(**{**TINY, "decoder_mask_ratio": 0.1})
    with pytest.raises(ValueError, match="decoder_mask_ratio"):
        model(pixel_values, decoder_mask_ratio=0.1)
    odd = tiny(image_size=24, num_frames=4)  # 2 x 3 x 3 grid: the count would depend on the start pointer
    with pytest.raises(ValueError, match="fixed count"):
        odd(clip(frames=4, size=24))


# ------------------------------------------------------------------------------------------------- conversion
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official"
FINETUNE = FIXTURES / "videomaev2_finetune_tiny"
PRETRAIN = FIXTURES / "videomaev2_pretrain_tiny"
needs_fixtures = pytest.mark.skipif(not FINETUNE.is_dir(), reason="videomaev2 fixtures not available")


def _fixture(folder):
    return (
        json.loads((folder / "fixture.json").read_text()),
        load_file(str(folder / "io.safetensors")),
        load_official_checkpoint_file(folder / "checkpoint.pth"),
    )


def _remote_code_folder(tmp_path, with_head: bool):
    """A folder in the layout of the OpenGVLab/VideoMAEv2-* remote-code repos, made from the official fixture."""
    fixture, _, state_dict = _fixture(FINETUNE)
    kwargs = {k: v for k, v in fixture["constructor_kwargs"].items() if k != "norm_layer"}
    kwargs["num_frames"] = kwargs.pop("all_frames")
    if not with_head:
        kwargs["num_classes"] = 0
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
    folder = tmp_path / ("head" if with_head else "encoder")
    folder.mkdir()
    config = {"architectures": ["VideoMAEv2"], "model_type": "VideoMAEv2", "model_config": kwargs,
              "auto_map": {"AutoModel": "modeling_videomaev2.VideoMAEv2"}}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({f"model.{k}": v.contiguous() for k, v in state_dict.items()}, str(folder / "model.safetensors"))
    return folder


@needs_fixtures
@pytest.mark.parametrize("with_head, output", [(False, "pooled_normed"), (True, "logits")])
def test_remote_code_layout_converts_and_reproduces_the_official_outputs(tmp_path, with_head, output):
    model = load_remote_code_videomaev2(_remote_code_folder(tmp_path, with_head))
    _, io, _ = _fixture(FINETUNE)
    with torch.no_grad():
        ours = model(io["pixel_values"].permute(0, 2, 1, 3, 4)).logits
    torch.testing.assert_close(ours, io[output], atol=1e-5, rtol=1e-4)
    assert model.config.num_labels == (io["logits"].shape[1] if with_head else 0)


@needs_fixtures
def test_script_converts_a_remote_code_repo_and_the_folder_reloads(tmp_path):
    from transformers import AutoModelForVideoClassification

    spec = _load_script("convert_videomae_v2").SPEC
    out = convert(spec, ["--transformers_checkpoint", str(_remote_code_folder(tmp_path, with_head=False)),
                         "--output_dir", str(tmp_path / "out")])
    assert json.loads((out / "conversion.json").read_text())["task"] == "encoder"
    model = AutoModelForVideoClassification.from_pretrained(out).eval()
    _, io, _ = _fixture(FINETUNE)
    with torch.no_grad():
        features = model(io["pixel_values"].permute(0, 2, 1, 3, 4)).logits
    assert model.config.num_labels == 0
    torch.testing.assert_close(features, io["pooled_normed"], atol=1e-5, rtol=1e-4)


@needs_fixtures
def test_remote_code_layout_errors_are_clear(tmp_path):
    folder = _remote_code_folder(tmp_path, with_head=False)
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k.removeprefix("model."): v for k, v in weights.items()}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="remote-code layout"):
        load_remote_code_videomaev2(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "videomae"}))
    with pytest.raises(ValueError, match="model_config"):
        load_remote_code_videomaev2(folder)


@needs_fixtures
def test_compiled_checkpoint_keys_and_mismatched_checkpoints():
    fixture, io, state_dict = _fixture(PRETRAIN)
    model = videomae_v2.build_model(fixture["constructor_kwargs"], "pretraining")
    assert model.config.decoder_mask_ratio == 0.5 and model.config.num_frames == 8  # V2 takes all_frames
    compiled = {f"_orig_mod.{k}": v for k, v in state_dict.items()}  # torch.compile'd official pretraining
    model.load_state_dict(videomae_v2.convert_state_dict(compiled, model), strict=True)
    with torch.no_grad():
        out = model.eval()(io["pixel_values"].permute(0, 2, 1, 3, 4), bool_masked_pos=io["bool_masked_pos"],
                           decode_masked_pos=io["decode_masked_pos"])
    torch.testing.assert_close(out.logits, io["logits"], atol=1e-5, rtol=1e-4)
    _, _, finetune_sd = _fixture(FINETUNE)
    with pytest.raises(UnmappedKeysError):
        videomae_v2.convert_state_dict(finetune_sd, model)  # a fine-tuned checkpoint into the pretraining model


def test_presets_describe_the_released_shapes(tmp_path):
    giant = config_from_official_kwargs(videomae_v2.PRESETS["videomaev2-giant-hybrid-pt-1200e-pretrained"].official_kwargs)
    assert (giant.hidden_size, giant.num_hidden_layers, giant.intermediate_size, giant.patch_size) == (1408, 40, 6144, 14)
    assert giant.num_patches == 2048 and giant.decoder_hidden_size == 512 and giant.decoder_num_hidden_layers == 4
    small = config_from_official_kwargs(videomae_v2.PRESETS["videomaev2-small-k710-distilled"].official_kwargs)
    assert (small.hidden_size, small.num_attention_heads, small.num_labels) == (384, 6, 710)
    spec = _load_script("convert_videomae_v2").SPEC
    with pytest.raises(FileNotFoundError, match="request only.*--checkpoint PATH"):
        convert(spec, ["--preset", "videomaev2-giant-k710-k400-finetuned", "--output_dir", str(tmp_path / "g")])


# ------------------------------------------------------------------------------------------------- pretraining script
def test_pretrain_video_videomae_v2_option_defaults_and_one_step(tmp_path):
    script = _load_example("pretrain_video")
    args = script.parse_args(["--model", "videomae_v2"])
    assert args.config_name == "videomae_v2-tiny" and args.decoder_mask_ratio is None
    from hf_maskedav.training import build_config

    config = build_config(args.config_name)
    assert (config.decoder_mask_type, config.decoder_mask_ratio) == ("run_cell", 0.5)  # the official V2 scripts
    script.main(["--model", "videomae_v2", "--decoder_mask_ratio", "0.25", "--demo_num_clips", "4",
                 "--per_device_train_batch_size", "2", "--max_train_steps", "1", "--eval_split", "none",
                 "--num_threads", "1", "--output_dir", str(tmp_path / "run")])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["decoder_mask_ratio"] == 0.25 and (tmp_path / "run" / "reconstruction.png").is_file()


def _load_example(name):
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
