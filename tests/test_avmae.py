"""AV-MAE: the JAX-free Flax checkpoint reader, the Scenic -> PyTorch mapping, and the models.

No outputs of the official (JAX) code exist here. The Flax files below are written by this test directly with
``msgpack``, following flax ``serialization.py`` (ndarray = ext type 1 holding ``[shape, dtype name, bytes]``), in the
Scenic parameter layout documented in ``hf_maskedav.conversion.avmae``; the test then checks that the converted model
computes exactly what the model the weights came from computes.
"""

import importlib.util
import json
from pathlib import Path

import msgpack
import numpy as np
import pytest
import torch

from hf_maskedav import AVMAEConfig, AVMAEForAudioVisualClassification, AVMAEForPreTraining, AVMAEModel
from hf_maskedav.conversion import UnmappedKeysError
from hf_maskedav.conversion.avmae import build_model_from_params, config_from_params
from hf_maskedav.conversion.flax_checkpoint import (
    FlaxCheckpointError,
    flatten_tree,
    model_parameters,
    read_flax_bytes,
    read_flax_checkpoint,
    write_flax_bytes,
)

from common import ModelTesterMixin

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------------------
# Writing Flax files by hand (flax serialization.py format)


def _ext(array: np.ndarray, code: int = 1, dtype_name: str | None = None) -> msgpack.ExtType:
    payload = msgpack.packb((list(array.shape), dtype_name or array.dtype.name, array.tobytes("C")), use_bin_type=True)
    return msgpack.ExtType(code, payload)


def _encode(tree):
    if isinstance(tree, dict):
        return {key: _encode(value) for key, value in tree.items()}
    if isinstance(tree, torch.Tensor):
        return _ext(tree.detach().float().numpy())
    if isinstance(tree, np.ndarray):
        return _ext(tree)
    return tree


def flax_file(path: Path, tree: dict) -> Path:
    path.write_bytes(msgpack.packb(_encode(tree), use_bin_type=True))
    return path


def test_reader_decodes_the_documented_format(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((3, 4)).astype(np.float32)
    bf16_bits = np.array([0x3F80, 0xC000], dtype=np.uint16)  # bfloat16 1.0, -2.0
    big = np.arange(10, dtype=np.float32)
    tree = {
        "params": {
            "dense": {"kernel": _ext(weights), "bias": _ext(np.zeros(4, np.float64))},
            "half": _ext(bf16_bits, dtype_name="bfloat16"),
            "ids": _ext(np.array([[1, 2]], dtype=np.int64)),
            "flag": _ext(np.array([True, False])),
            # an array split the way flax splits leaves above 2**30 bytes
            "chunked": {
                "__msgpack_chunked_array__": True,
                "shape": {"0": 2, "1": 5},
                "chunks": {"0": _ext(big[:6]), "1": _ext(big[6:])},
            },
        },
        "global_step": msgpack.ExtType(3, msgpack.packb(([], "int32", np.int32(7).tobytes()), use_bin_type=True)),
        "z": msgpack.ExtType(2, msgpack.packb((1.0, -2.0))),
    }
    path = tmp_path / "checkpoint"
    path.write_bytes(msgpack.packb(tree, use_bin_type=True))
    restored = read_flax_checkpoint(path)
    params = restored["params"]
    torch.testing.assert_close(params["dense"]["kernel"], torch.from_numpy(weights))
    assert params["dense"]["bias"].dtype == torch.float64
    assert params["half"].dtype == torch.bfloat16 and params["half"].float().tolist() == [1.0, -2.0]
    assert params["ids"].tolist() == [[1, 2]] and params["flag"].tolist() == [True, False]
    torch.testing.assert_close(params["chunked"], torch.from_numpy(big.reshape(2, 5)))
    assert int(restored["global_step"]) == 7 and restored["z"] == complex(1, -2)
    flat = flatten_tree(model_parameters(restored))
    assert set(flat) == {"dense/kernel", "dense/bias", "half", "ids", "flag", "chunked"}


def test_reader_finds_parameters_in_scenic_train_states():
    leaf = {"w": torch.ones(1)}
    assert model_parameters({"params": leaf, "opt_state": {}})["w"] is leaf["w"]
    assert model_parameters({"optimizer": {"target": {"params": leaf}, "state": {}}})["w"] is leaf["w"]
    assert model_parameters(leaf)["w"] is leaf["w"]


def test_writer_round_trips_through_the_reader():
    tree = {"a": {"b": torch.randn(2, 3), "c": torch.tensor([1.5], dtype=torch.bfloat16)}, "d": np.float32(2.0)}
    restored = read_flax_bytes(write_flax_bytes(tree))
    torch.testing.assert_close(restored["a"]["b"], tree["a"]["b"])
    assert restored["a"]["c"].dtype == torch.bfloat16 and float(restored["d"]) == 2.0


def test_reader_rejects_what_is_not_a_flax_checkpoint(tmp_path):
    with pytest.raises(FlaxCheckpointError):
        read_flax_bytes(b"\x80\x04not msgpack at all")
    with pytest.raises(FlaxCheckpointError, match="top level"):
        read_flax_bytes(msgpack.packb([1, 2, 3]))
    with pytest.raises(FlaxCheckpointError, match="Orbax"):
        read_flax_checkpoint(tmp_path)


# ----------------------------------------------------------------------------------------------------------------------
# Scenic layout of a model's weights (written independently of the converter, from the Scenic source)


def scenic_block(sd: dict, prefix: str, heads: int) -> dict:
    width = sd[f"{prefix}.norm1.weight"].shape[0]
    head_dim = width // heads
    qkv_w = sd[f"{prefix}.attention.qkv_proj.weight"]
    qkv_b = sd[f"{prefix}.attention.qkv_proj.bias"]
    attention = {}
    for index, name in enumerate(("query", "key", "value")):
        w = qkv_w[index * width : (index + 1) * width]  # [D_out, D_in]
        attention[name] = {"kernel": w.t().reshape(width, heads, head_dim),
                           "bias": qkv_b[index * width : (index + 1) * width].reshape(heads, head_dim)}
    attention["out"] = {"kernel": sd[f"{prefix}.attention.o_proj.weight"].t().reshape(heads, head_dim, width),
                        "bias": sd[f"{prefix}.attention.o_proj.bias"]}
    return {
        "LayerNorm_0": {"scale": sd[f"{prefix}.norm1.weight"], "bias": sd[f"{prefix}.norm1.bias"]},
        "MultiHeadDotProductAttention_0": attention,  # Flax linen names, per layer type (as Scenic's blocks)
        "LayerNorm_1": {"scale": sd[f"{prefix}.norm2.weight"], "bias": sd[f"{prefix}.norm2.bias"]},
        "MlpBlock_0": {
            "Dense_0": {"kernel": sd[f"{prefix}.mlp.fc1.weight"].t(), "bias": sd[f"{prefix}.mlp.fc1.bias"]},
            "Dense_1": {"kernel": sd[f"{prefix}.mlp.fc2.weight"].t(), "bias": sd[f"{prefix}.mlp.fc2.bias"]},
        },
    }


def dense(sd, prefix):
    return {"kernel": sd[f"{prefix}.weight"].t(), "bias": sd[f"{prefix}.bias"]}


def norm(sd, prefix):
    return {"scale": sd[f"{prefix}.weight"], "bias": sd[f"{prefix}.bias"]}


def conv2d(sd, prefix):  # ours [D, 1, kt, kf] -> Flax [kh, kw, in, out]
    return {"kernel": sd[f"{prefix}.weight"].permute(2, 3, 1, 0), "bias": sd[f"{prefix}.bias"]}


def conv3d(sd, prefix):  # ours [D, C, kt, kh, kw] -> Flax [kt, kh, kw, in, out]
    return {"kernel": sd[f"{prefix}.weight"].permute(2, 3, 4, 1, 0), "bias": sd[f"{prefix}.bias"]}


def scenic_pretraining_tree(model: AVMAEForPreTraining) -> dict:
    sd, config = model.state_dict(), model.config
    key = {"audio": "spectrogram", "video": "rgb"}
    tree = {}
    depth = config.num_hidden_layers - config.num_fusion_layers
    for name in config.modalities:
        embed = conv2d if name == "audio" else conv3d
        tree[f"embedding_{key[name]}"] = embed(sd, f"avmae.embeddings.{name}_patch_embed.proj")
        stack = {f"encoderblock_{i}": scenic_block(sd, f"avmae.{name}_layers.{i}", config.num_attention_heads)
                 for i in range(depth)}
        stack["encoder_norm"] = norm(sd, f"avmae.{name}_norm")
        tree[f"Transformer_{key[name]}"] = stack
        tree[f"decoder_projection_{key[name]}"] = dense(sd, f"decoder.{name}_projection")
        tree[f"mask_token_{key[name]}"] = sd[f"decoder.{name}_mask_token"]
        tree[f"output_projection_{key[name]}"] = dense(sd, f"decoder.{name}_pred")
    if config.num_fusion_layers:
        stack = {f"encoderblock_{i}": scenic_block(sd, f"avmae.fusion_layers.{i}", config.num_attention_heads)
                 for i in range(config.num_fusion_layers)}
        stack["encoder_norm"] = norm(sd, "avmae.fusion_norm")
        tree["Transformer_concat"] = stack
    decoder = {f"encoderblock_{i}": scenic_block(sd, f"decoder.layers.{i}", config.decoder_num_attention_heads)
               for i in range(config.decoder_num_hidden_layers)}
    decoder["encoder_norm"] = norm(sd, "decoder.norm")
    tree["Decoder"] = decoder
    return tree


def scenic_mbt_tree(model: AVMAEForAudioVisualClassification) -> dict:
    sd, config = model.state_dict(), model.config
    first = "video" if "video" in config.modalities else "audio"
    transformer = {}
    for name in config.modalities:
        suffix = "" if name == first else "_spec"
        for i in range(config.num_hidden_layers):
            transformer[f"encoderblock_{i}{suffix}"] = scenic_block(sd, f"{name}_layers.{i}", config.num_attention_heads)
    transformer["encoder_norm"] = norm(sd, "norm")
    tree = {"Transformer": transformer, "ProjectionHeadAndClassifier_0": {"output_projection": dense(sd, "classifier")}}
    if "audio" in config.modalities:
        tree["embedding_spectrogram"] = conv2d(sd, "embeddings.audio_patch_embed.proj")
    if "video" in config.modalities:
        tree["embedding"] = conv3d(sd, "embeddings.video_patch_embed.proj")
    # mbt.MBT creates the bottleneck tokens for one modality too (that forward never reads them)
    tree["bottleneck"] = sd["bottleneck"] if model.bottleneck is not None else torch.zeros(1, 4, config.hidden_size)
    return tree


def tiny_config(**overrides):
    fields = dict(
        max_length=36, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=3, num_fusion_layers=1,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32, decoder_num_hidden_layers=1,
        video_mask_ratio=0.5, bottleneck_fusion_layer=1, num_bottleneck_tokens=2, num_labels=3,
    )
    fields.update(overrides)
    return AVMAEConfig(**fields)


def tiny_inputs(config, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = {}
    if "audio" in config.modalities:
        inputs["input_values"] = torch.randn(2, config.max_length, config.num_mel_bins, generator=gen)
    if "video" in config.modalities:
        inputs["pixel_values"] = torch.randn(2, config.num_frames, 3, config.image_size, config.image_size, generator=gen)
    return inputs


def _perturbed(model):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model.eval()


def _convert_script():
    spec = importlib.util.spec_from_file_location("convert_avmae", REPO / "conversion" / "convert_avmae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretraining_checkpoint_converts_through_the_command_line(tmp_path):
    from transformers import AutoModelForPreTraining, AutoProcessor

    torch.manual_seed(0)
    original = _perturbed(AVMAEForPreTraining(tiny_config()))
    checkpoint = flax_file(tmp_path / "checkpoint", {"params": scenic_pretraining_tree(original), "global_step": 3})
    extra = {"max_length": 36, "num_mel_bins": 16, "num_frames": 4, "image_size": 16, "video_mask_ratio": 0.5}
    out = tmp_path / "out"
    _convert_script().main(["--checkpoint", str(checkpoint), "--official_kwargs", json.dumps(extra),
                            "--output_dir", str(out), "--verify"])
    record = json.loads((out / "conversion.json").read_text())
    assert record["verification"]["status"] == "unverified" and record["task"] == "pretraining"
    assert "Unverified conversion" in (out / "README.md").read_text()
    converted = AutoModelForPreTraining.from_pretrained(out).eval()
    assert type(converted) is AVMAEForPreTraining
    processor = AutoProcessor.from_pretrained(out)
    assert processor.feature_extractor.max_length == 36 and processor.video_processor.num_frames == 4
    inputs = tiny_inputs(original.config)
    noise = {"audio_noise": torch.rand(2, 8), "video_noise": torch.rand(2, 8)}
    with torch.no_grad():
        expected, ours = original(**inputs, **noise), converted(**inputs, **noise)
    for name in ("loss", "audio_logits", "video_logits"):
        torch.testing.assert_close(getattr(ours, name), getattr(expected, name), msg=name)


@pytest.mark.parametrize("modalities", [("audio", "video"), ("audio",)])
def test_mbt_checkpoint_converts(modalities, tmp_path):
    torch.manual_seed(0)
    original = _perturbed(AVMAEForAudioVisualClassification(tiny_config(modalities=list(modalities))))
    params = flatten_tree(model_parameters(read_flax_checkpoint(
        flax_file(tmp_path / "checkpoint", {"optimizer": {"target": {"params": scenic_mbt_tree(original)}}})
    )))
    config = config_from_params(params, max_length=36, num_mel_bins=16, num_frames=4, image_size=16,
                                bottleneck_fusion_layer=1)
    assert list(config.modalities) == list(modalities)
    assert "bottleneck" in params
    converted = build_model_from_params(params, max_length=36, num_mel_bins=16, num_frames=4, image_size=16,
                                        bottleneck_fusion_layer=1)
    assert (converted.bottleneck is not None) == (len(modalities) == 2)  # one modality: dropped on purpose
    inputs = tiny_inputs(original.config)
    with torch.no_grad():
        torch.testing.assert_close(converted(**inputs).logits, original(**inputs).logits)


def test_strict_accounting_names_unmapped_and_missing_parameters():
    model = AVMAEForAudioVisualClassification(tiny_config())
    params = flatten_tree(scenic_mbt_tree(model))
    params["Transformer/encoderblock_0/unexpected/kernel"] = torch.zeros(1)
    del params["bottleneck"]
    with pytest.raises(UnmappedKeysError, match=r"nobody maps: \['Transformer/encoderblock_0/unexpected/kernel'\]"):
        build_model_from_params(params, max_length=36, num_mel_bins=16, num_frames=4, image_size=16,
                                bottleneck_fusion_layer=1)


def test_bottlenecks_are_the_only_path_between_streams():
    """Before the fusion layer the streams are independent; with no fusion layer the logits are the mean of the
    per-stream logits (official MBT inference)."""
    config = tiny_config(bottleneck_fusion_layer=3)  # = num_hidden_layers: no fusion
    model = AVMAEForAudioVisualClassification(config).eval()
    inputs = tiny_inputs(config)
    with torch.no_grad():
        tokens = model.embeddings(**inputs)
        pooled = []
        for name in ("video", "audio"):
            x = tokens[name]
            for layer in getattr(model, f"{name}_layers"):
                x = layer(x)[0]
            pooled.append(model.classifier(model.norm(x).mean(1)))
        torch.testing.assert_close(model(**inputs).logits, torch.stack(pooled).mean(0))
        fused = AVMAEForAudioVisualClassification(tiny_config(bottleneck_fusion_layer=1)).eval()
        fused.load_state_dict(model.state_dict(), strict=False)  # same streams; fused adds the bottleneck tokens
        assert not torch.allclose(fused(**inputs).logits, model(**inputs).logits)
    with pytest.raises(ValueError, match="needs all of them"):
        model(input_values=inputs["input_values"])


def test_feature_extractor_shapes_and_statistics():
    from hf_maskedav import AVMAEFeatureExtractor

    extractor = AVMAEFeatureExtractor()
    waveform = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    values = extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_values"]
    assert values.shape == (1, 1000, 128)
    raw = AVMAEFeatureExtractor(do_normalize=False)(waveform, sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(values, (raw - 1.102) / 2.762)
    with pytest.raises(ValueError, match="resample"):
        extractor(waveform, sampling_rate=44100)


class TestAVMAE(ModelTesterMixin):
    all_model_classes = (AVMAEModel, AVMAEForPreTraining, AVMAEForAudioVisualClassification)

    def get_config(self):
        return tiny_config()

    def get_inputs(self, model_class):
        inputs = tiny_inputs(self.get_config())
        if model_class is AVMAEForPreTraining:
            gen = torch.Generator().manual_seed(1)
            inputs.update(audio_noise=torch.rand(2, 8, generator=gen), video_noise=torch.rand(2, 8, generator=gen))
        if model_class is AVMAEForAudioVisualClassification:
            inputs["labels"] = torch.tensor([0, 2])
        return inputs

    def test_every_trainable_parameter_gets_a_gradient(self):
        """Overrides the mixin for the base model, whose output is two tensors (one per modality)."""
        for model_class in self.all_model_classes:
            model = self.build(model_class).train()
            out = model(**self.get_inputs(model_class))
            if model_class is AVMAEModel:
                (out.audio_last_hidden_state.pow(2).mean() + out.video_last_hidden_state.pow(2).mean()).backward()
            else:
                out.loss.backward()
            missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert not missing, f"{model_class.__name__}: no gradient for {missing}"


def test_audio_video_pipeline_runs_on_a_converted_folder(tmp_path):
    from transformers import pipeline

    from hf_maskedav.conversion.avmae import build_processor

    config = tiny_config(id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    model = AVMAEForAudioVisualClassification(config).eval()
    model.save_pretrained(tmp_path)
    build_processor(config, {}).save_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    sample = {
        "audio": rng.standard_normal(8000).astype(np.float32) * 0.1,
        "sampling_rate": 16000,
        "video": rng.integers(0, 255, (20, 24, 32, 3), dtype=np.uint8),
        "video_fps": 10.0,
    }
    scores = pipeline("audio-video-classification", model=str(tmp_path))(sample, top_k=2)
    assert len(scores) == 2 and {s["label"] for s in scores} <= {"a", "b", "c"}


def test_a_mask_ratio_that_keeps_no_token_is_a_clear_error():
    """8 video tokens at the default video_mask_ratio 0.9 keep int(8 * 0.1) = 0 (was: "cannot reshape tensor of 0
    elements" deep inside); the error names the ratio and the token count, for the config's and an overridden ratio."""
    config = tiny_config(video_mask_ratio=0.9)
    assert config.num_video_patches == 8
    model = AVMAEForPreTraining(config).eval()
    inputs = tiny_inputs(config)
    with torch.no_grad(), pytest.raises(ValueError, match=r"video_mask_ratio 0\.9 keeps no video token of 8"):
        model(**inputs)
    with torch.no_grad(), pytest.raises(ValueError, match=r"audio_mask_ratio 0\.99 keeps no audio token of"):
        model(**inputs, audio_mask_ratio=0.99, video_mask_ratio=0.5)
    with torch.no_grad():
        assert model(**inputs, video_mask_ratio=0.5).loss.isfinite()  # one kept token is enough
