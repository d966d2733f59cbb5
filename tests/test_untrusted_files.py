"""Untrusted files: nothing in a checkpoint or a model folder is executed (issue: reliability).

* Official ``.pth``/``.pyth`` pickles load with ``weights_only=True`` and an explicit allow-list; a crafted pickle that
  runs a command is refused: ``tests/test_conversion.py::test_malicious_pickle_is_refused_and_nothing_runs`` (and
  ``test_argparse_namespace_is_allowed`` for the allow-list). A conversion never overwrites a non-empty output folder
  without ``--overwrite``: ``test_conversion.py::test_refuses_non_empty_output_dir_without_overwrite``.
* Here: every ``torch.load`` of the package and the scripts is ``weights_only=True`` (read from the source); a tampered
  *training* checkpoint (its optimizer state replaced by a malicious pickle) is refused on resume; every model class
  saves safetensors only and every processor JSON only; saved folders load through the Auto classes without
  ``trust_remote_code``, also folders exported with remote code (``--export_remote_code``).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoImageProcessor,
    AutoModel,
    AutoModelForPreTraining,
    AutoProcessor,
    AutoVideoProcessor,
)

import hf_maskedav
from hf_maskedav import (
    AudioMAEConfig,
    AudioMAEFeatureExtractor,
    AVMAEConfig,
    AVMAEFeatureExtractor,
    AVMAEProcessor,
    AVMAEVideoProcessor,
    CAVMAEConfig,
    CAVMAEFeatureExtractor,
    CAVMAEProcessor,
    CAVMAEVideoProcessor,
    MAESTConfig,
    MAESTVideoProcessor,
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEVideoProcessor,
    MaskFeatConfig,
    MaskFeatImageProcessor,
    MaskFeatVideoProcessor,
    MAViLConfig,
    MAViLProcessor,
    MAViLVideoProcessor,
)

ROOT = Path(__file__).resolve().parents[1]
PICKLE_EXTENSIONS = (".bin", ".pt", ".pth", ".pyth", ".pkl", ".pickle", ".ckpt")


def test_every_torch_load_is_weights_only():
    """Read every ``torch.load`` call in src/ and examples/: each passes ``weights_only=True``; no ``pickle.load``."""
    calls = []
    for path in [*(ROOT / "src" / "hf_maskedav").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if (owner, node.func.attr) in (("pickle", "load"), ("pickle", "loads"), ("dill", "load")):
                pytest.fail(f"{path}:{node.lineno} unpickles with {owner}.{node.func.attr}")
            if (owner, node.func.attr) == ("torch", "load"):
                keywords = {k.arg: k.value for k in node.keywords}
                flag = keywords.get("weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, f"{path}:{node.lineno} torch.load"
                calls.append(f"{path.name}:{node.lineno}")
    assert calls  # the scan found the loaders (conversion), so it can fail


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_checkpoint",))


def test_tampered_training_checkpoint_is_refused_on_resume(tmp_path, monkeypatch):
    """Accelerate loads the optimizer/scheduler/RNG pickles of a checkpoint with weights_only=True: a checkpoint whose
    optimizer.bin was replaced by a malicious pickle stops the resume and runs nothing."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    from hf_maskedav.training import TrainingState, load_checkpoint, save_checkpoint

    def reset():
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        PartialState._reset_state()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    reset()
    try:
        accelerator = Accelerator(cpu=True)
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.AdamW(model.parameters())
        model, optimizer = accelerator.prepare(model, optimizer)
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        folder = save_checkpoint(accelerator, str(tmp_path / "run"), TrainingState(completed_steps=1))
        assert load_checkpoint(accelerator, folder).completed_steps == 1  # the genuine one loads
        with open(Path(folder) / "optimizer.bin", "wb") as handle:
            pickle.dump({"state": _RunsACommand()}, handle)
        with pytest.raises(pickle.UnpicklingError):
            load_checkpoint(accelerator, folder)
        assert not (tmp_path / "pwned_by_checkpoint").exists()
    finally:
        reset()


# ------------------------------------------------------------------------------------------- saved model folders

VIDEO = dict(image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
             num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
             decoder_num_attention_heads=2, decoder_intermediate_size=32)
FAMILIES = {
    "audiomae": lambda: AudioMAEConfig(
        max_length=32, num_mel_bins=16, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_attention_heads=4,
        decoder_intermediate_size=64),
    "videomae": lambda: MaskedAVVideoMAEConfig(**VIDEO),
    "mae_st": lambda: MAESTConfig(**VIDEO, pred_t_dim=2),
    "maskfeat": lambda: MaskFeatConfig(
        image_size=16, num_frames=4, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8], patch_padding=[0, 0, 0],
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, separate_position_embeddings=True,
        mask_window_size=[2, 2, 2]),
    "maskfeat_image": lambda: MaskFeatConfig(image_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=4),
    "mavil": lambda: MAViLConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, audio_num_hidden_layers=1,
        video_num_hidden_layers=1, fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64),
    "cavmae": lambda: CAVMAEConfig(
        max_length=32, num_mel_bins=16, image_size=16, patch_size=8, hidden_size=32, num_attention_heads=4,
        intermediate_size=64, num_modality_specific_layers=1, num_shared_layers=1, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64),
    "avmae": lambda: AVMAEConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, num_fusion_layers=1,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, bottleneck_fusion_layer=1, num_bottleneck_tokens=2),
}


def _model_classes() -> list[type]:
    from transformers import PreTrainedModel

    return [getattr(hf_maskedav, name) for name in hf_maskedav.__all__
            if inspect.isclass(getattr(hf_maskedav, name)) and issubclass(getattr(hf_maskedav, name), PreTrainedModel)
            and not name.endswith("PreTrainedModel")]


def _family_config(cls):
    name = cls.__name__
    if name.startswith("MaskFeat"):
        return FAMILIES["maskfeat_image" if "Image" in name else "maskfeat"]()
    config_class = cls.config_class
    for factory in FAMILIES.values():
        config = factory()
        if type(config) is config_class:
            return config
    raise AssertionError(f"no tiny config for {name}")


@pytest.mark.parametrize("cls", _model_classes(), ids=lambda c: c.__name__)
def test_every_model_saves_safetensors_only_and_loads_without_remote_code(cls, tmp_path):
    torch.manual_seed(0)
    model = cls(_family_config(cls)).eval()
    model.save_pretrained(tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert "model.safetensors" in names, names
    assert not [n for n in names if n.endswith(PICKLE_EXTENSIONS)], names
    assert not [n for n in names if n.endswith(".py")], names  # no code next to the weights
    config = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in config and config["model_type"].startswith("maskedav_")
    # the Auto classes resolve the saved folder to our class with trust_remote_code left unset
    assert type(AutoConfig.from_pretrained(tmp_path)) is type(model.config)
    loaded = cls.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    if cls.__name__.endswith("Model"):
        assert type(AutoModel.from_pretrained(tmp_path)) is cls
    elif cls.__name__.endswith("ForPreTraining"):
        assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is cls


PROCESSORS = {
    "AudioMAEFeatureExtractor": (lambda: AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32), AutoFeatureExtractor,
                                 AudioMAEConfig),
    "CAVMAEFeatureExtractor": (lambda: CAVMAEFeatureExtractor(), AutoFeatureExtractor, CAVMAEConfig),
    "AVMAEFeatureExtractor": (lambda: AVMAEFeatureExtractor(), AutoFeatureExtractor, AVMAEConfig),
    "MaskedAVVideoMAEVideoProcessor": (MaskedAVVideoMAEVideoProcessor, AutoVideoProcessor, MaskedAVVideoMAEConfig),
    "MAESTVideoProcessor": (MAESTVideoProcessor, AutoVideoProcessor, MAESTConfig),
    "MaskFeatVideoProcessor": (MaskFeatVideoProcessor, AutoVideoProcessor, MaskFeatConfig),
    "MaskFeatImageProcessor": (MaskFeatImageProcessor, AutoImageProcessor, MaskFeatConfig),
    "MAViLProcessor": (lambda: MAViLProcessor(AudioMAEFeatureExtractor(), MAViLVideoProcessor()), AutoProcessor,
                       MAViLConfig),
    "CAVMAEProcessor": (lambda: CAVMAEProcessor(CAVMAEFeatureExtractor(), CAVMAEVideoProcessor()), AutoProcessor,
                        CAVMAEConfig),
    "AVMAEProcessor": (lambda: AVMAEProcessor(AVMAEFeatureExtractor(), AVMAEVideoProcessor()), AutoProcessor,
                       AVMAEConfig),
}


@pytest.mark.parametrize("name", list(PROCESSORS))
def test_every_processor_saves_json_only_and_loads_without_remote_code(name, tmp_path):
    make, auto_class, config_class = PROCESSORS[name]
    processor = make()
    processor.save_pretrained(tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert names and all(n.endswith(".json") for n in names), names
    for file in names:
        assert "auto_map" not in json.loads((tmp_path / file).read_text())
    config_class().save_pretrained(tmp_path)  # the Auto classes find the family from config.json
    assert type(auto_class.from_pretrained(tmp_path)) is type(processor)


def test_remote_code_export_still_loads_our_classes_without_trust_remote_code(tmp_path, monkeypatch):
    """A folder exported with ``--export_remote_code`` (auto_map + flattened code, for machines without hf_maskedav)
    loads the installed package's classes here: no trust_remote_code, and no code from the folder is imported."""
    from hf_maskedav import AudioMAEForPreTraining
    from hf_maskedav.conversion.remote_code import export_remote_code

    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = tmp_path / "exported"
    model = AudioMAEForPreTraining(FAMILIES["audiomae"]())
    feature_extractor = AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32)
    model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    written = export_remote_code(folder, model, feature_extractor)
    assert written and "auto_map" in json.loads((folder / "config.json").read_text())
    loaded = AutoModelForPreTraining.from_pretrained(folder)
    assert type(loaded) is AudioMAEForPreTraining
    assert type(AutoFeatureExtractor.from_pretrained(folder)) is AudioMAEFeatureExtractor
    assert not (tmp_path / "modules").exists()  # nothing was copied into the dynamic-module cache or imported
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
