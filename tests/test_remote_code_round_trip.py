"""An ``--export_remote_code`` folder used as a Hub user without hf_maskedav would use it, for every family.

For each family a tiny classifier (hidden 32, depth 2) and its processor are saved and exported with
:func:`~hf_maskedav.conversion.remote_code.export_remote_code` (MaskFeat twice: a video and an image model), a media
file (.wav, .png, or .mp4, with an audio track for the audio-visual families) is written here, and one subprocess per
family in which ``import hf_maskedav`` fails (a meta-path finder refuses the package) loads, with
``trust_remote_code=True``:

* the config (``AutoConfig``) and every model head the folder's ``auto_map`` names (``AutoModel``,
  ``AutoModelForPreTraining``, ``AutoModelForAudioClassification`` / ``AutoModelForVideoClassification`` /
  ``AutoModelForImageClassification``);
* the processor through each Auto class that applies (``AutoFeatureExtractor``, ``AutoVideoProcessor``,
  ``AutoImageProcessor``, ``AutoProcessor``);
* the pipeline: ``audio-classification`` (Audio-MAE), ``video-classification`` (VideoMAE, MAE-ST, MaskFeat),
  ``image-classification`` (MaskFeat image) and
  ``audio-video-classification`` through transformers' custom-pipeline mechanism (MAViL, CAV-MAE, AV-MAE).

Every output (processed inputs, each head's output on them, the pipeline's scores) is compared with the package's
own classes on the same file, in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from video_helpers import write_clip

RATE, FPS, SECONDS, SIZE = 16000, 8, 1.5, (32, 40)

BLOCK = """
import importlib.abc, sys
class _NoPackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hf_maskedav" or name.startswith("hf_maskedav."):
            raise ImportError(f"hf_maskedav is blocked in this process ({name})")
sys.meta_path.insert(0, _NoPackage())
"""

# Runs twice: in the subprocess (package blocked, remote code) and here (package classes, no trust_remote_code).
USE = """
import json, sys
import numpy as np
import soundfile
import torch
import transformers
from transformers import pipeline

def decode_frames(path):
    import av
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])

def use(spec, trust):
    kwargs = {"trust_remote_code": True} if trust else {}
    folder, media = spec["folder"], spec["media"]
    result = {"config": transformers.AutoConfig.from_pretrained(folder, **kwargs).to_diff_dict()}
    result["config"].pop("transformers_version", None)
    inputs, classes = {}, {}
    for auto_name in spec["processors"]:
        processor = getattr(transformers, auto_name).from_pretrained(folder, **kwargs)
        classes[auto_name] = type(processor).__module__ + "." + type(processor).__name__
        if auto_name == "AutoFeatureExtractor" and spec["kind"] == "audio":
            waveform, rate = soundfile.read(media, dtype="float32")
            out = processor(waveform, sampling_rate=rate, return_tensors="pt")
        elif auto_name == "AutoVideoProcessor" and spec["kind"] == "video":
            out = processor(videos=[decode_frames(media)], return_tensors="pt")
        elif auto_name == "AutoImageProcessor" and spec["kind"] == "image":
            from PIL import Image
            out = processor(images=[Image.open(media).convert("RGB")], return_tensors="pt")
        elif auto_name == "AutoProcessor" and spec["kind"] == "audio_video":
            out = processor(media, return_tensors="pt")
        else:
            continue  # AutoProcessor of a one-modality folder: the same class as above, checked by name
        inputs.update({k: v for k, v in out.items() if isinstance(v, torch.Tensor)})
    outputs = {}
    for auto_name in spec["models"]:
        torch.manual_seed(0)  # heads not in the checkpoint (a classifier's decoder) are initialised alike
        model = getattr(transformers, auto_name).from_pretrained(folder, **kwargs).eval()
        classes[auto_name] = type(model).__module__ + "." + type(model).__name__
        accepted = set(__import__("inspect").signature(model.forward).parameters)
        torch.manual_seed(1)  # the same masking noise in both processes
        with torch.no_grad():
            out = model(**{k: v for k, v in inputs.items() if k in accepted})
        outputs[auto_name] = {k: v.flatten().tolist() for k, v in out.items() if isinstance(v, torch.Tensor)}
    classifier = pipeline(spec["task"], model=folder, **kwargs)
    classes["pipeline"] = type(classifier).__module__ + "." + type(classifier).__name__
    classes["pipeline.model"] = type(classifier.model).__module__ + "." + type(classifier.model).__name__
    scores = classifier(media, top_k=3)
    return {
        "classes": classes,
        "inputs": {k: v.flatten().tolist() for k, v in inputs.items()},
        "outputs": outputs,
        "pipeline": scores,
        "config": result["config"],
    }
"""

REMOTE = BLOCK + USE + """
specs = json.loads(sys.argv[1])
print("RESULT " + json.dumps([use(spec, trust=True) for spec in specs]))
"""


def _write_wav(path):
    t = np.arange(int(SECONDS * RATE)) / RATE
    rng = np.random.default_rng(0)
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32), RATE)
    return str(path)


def _write_png(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return str(path)


def _write_mp4(path, audio: bool):
    """Random-textured frames (every frame different) and, with ``audio``, a mono tone with noise."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8) for _ in range(int(SECONDS * FPS))]
    tone = None
    if audio:
        t = np.arange(int(SECONDS * RATE)) / RATE
        tone = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)[None]
    return write_clip(path, seconds=SECONDS, fps=FPS, size=SIZE, rate=RATE, frame=frames.__getitem__, tone=tone)


def _configs():
    from hf_maskedav import (
        AudioMAEConfig,
        AVMAEConfig,
        CAVMAEConfig,
        MAESTConfig,
        MaskedAVVideoMAEConfig,
        MaskFeatConfig,
        MAViLConfig,
    )

    video = dict(image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=2,
                 decoder_num_attention_heads=4, decoder_intermediate_size=64)
    return {
        "audiomae": AudioMAEConfig(
            max_length=32, num_mel_bins=16, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=2,
            decoder_num_attention_heads=4, decoder_intermediate_size=64),
        "videomae": MaskedAVVideoMAEConfig(**video),
        "mae_st": MAESTConfig(**video, pred_t_dim=2),
        "maskfeat": MaskFeatConfig(
            image_size=16, num_frames=4, patch_kernel_size=[2, 8, 8], patch_stride=[2, 8, 8], patch_padding=[0, 0, 0],
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, separate_position_embeddings=True,
            mask_window_size=[2, 2, 2]),
        "maskfeat_image": MaskFeatConfig(image_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4),
        "mavil": MAViLConfig(
            max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
            hidden_size=32, num_attention_heads=4, intermediate_size=64, audio_num_hidden_layers=2,
            video_num_hidden_layers=2, fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=4, decoder_intermediate_size=64),
        "cavmae": CAVMAEConfig(
            max_length=32, num_mel_bins=16, image_size=16, patch_size=8, hidden_size=32, num_attention_heads=4,
            intermediate_size=64, num_modality_specific_layers=1, num_shared_layers=1, decoder_hidden_size=32,
            decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64),
        "avmae": AVMAEConfig(
            max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
            hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, num_fusion_layers=1,
            decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
            decoder_num_hidden_layers=1, bottleneck_fusion_layer=1, num_bottleneck_tokens=2, video_mask_ratio=0.5),
    }


KIND = {"audiomae": "audio", "videomae": "video", "mae_st": "video", "maskfeat": "video", "maskfeat_image": "image",
        "mavil": "audio_video", "cavmae": "audio_video", "avmae": "audio_video"}
# the folders each family's subprocess checks: MaskFeat has a video and an image variant
CASES = {"audiomae": ["audiomae"], "videomae": ["videomae"], "mae_st": ["mae_st"],
         "maskfeat": ["maskfeat", "maskfeat_image"], "mavil": ["mavil"], "cavmae": ["cavmae"], "avmae": ["avmae"]}
TASK = {"audio": "audio-classification", "video": "video-classification", "image": "image-classification",
        "audio_video": "audio-video-classification"}
PROCESSORS = {"audio": ["AutoFeatureExtractor", "AutoProcessor"], "video": ["AutoVideoProcessor", "AutoProcessor"],
              "image": ["AutoImageProcessor", "AutoProcessor"],
              "audio_video": ["AutoFeatureExtractor", "AutoVideoProcessor", "AutoProcessor"]}


def _export(case, folder):
    import importlib

    from hf_maskedav.conversion.remote_code import export_remote_code
    from hf_maskedav.registration import FAMILIES

    family = case.split("_image")[0]
    config = _configs()[case]
    config.id2label = {0: "zero", 1: "one", 2: "two"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    entries = FAMILIES[family]
    head = entries["AutoModelForImageClassification"] if KIND[case] == "image" else (
        entries.get("AutoModelForAudioVisualClassification") or entries.get("AutoModelForVideoClassification")
        or entries["AutoModelForAudioClassification"])
    module, _, name = ("hf_maskedav.models." + head).partition(":")
    torch.manual_seed(0)
    model = getattr(importlib.import_module(module), name)(config).eval()
    with torch.no_grad():  # non-trivial head and norms, so that a wrong load shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(folder)
    processor = importlib.import_module(f"hf_maskedav.conversion.{family}").build_processor(model.config, {})
    processor.save_pretrained(folder)
    export_remote_code(folder, model, processor)
    return json.loads((folder / "config.json").read_text())


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=1e-4, atol=1e-5,
                               err_msg=what)


@pytest.mark.parametrize("family", list(CASES))
def test_remote_code_folder_works_end_to_end_without_the_package(family, tmp_path):
    specs, configs = [], {}
    for case in CASES[family]:
        folder = tmp_path / case
        configs[case] = config = _export(case, folder)
        kind = KIND[case]
        media = {"audio": lambda: _write_wav(tmp_path / "clip.wav"), "image": lambda: _write_png(tmp_path / "image.png"),
                 "video": lambda: _write_mp4(tmp_path / "clip.mp4", audio=False),
                 "audio_video": lambda: _write_mp4(tmp_path / "clip_av.mp4", audio=True)}[kind]()
        models = sorted(k for k in config["auto_map"] if k.startswith("AutoModel"))
        specs.append({"case": case, "folder": str(folder), "media": media, "kind": kind, "task": TASK[kind],
                      "models": models, "processors": PROCESSORS[kind]})

    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH="")
    run = subprocess.run([sys.executable, "-c", REMOTE, json.dumps(specs)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=240)
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert len(results) == len(specs)
    for spec, remote in zip(specs, results):
        _compare(spec, remote, configs[spec["case"]])


def _compare(spec, remote, config):
    kind, models = spec["kind"], spec["models"]
    from unittest import mock

    namespace, prompts = {}, []
    exec(USE, namespace)
    # with the package installed nothing may ask whether to run the folder's code (transformers' prompt goes
    # through input(); a refused prompt would be swallowed by AutoProcessor's fallbacks, so it is recorded here)
    with mock.patch("builtins.input", side_effect=lambda *args: prompts.append(args) or "n"):
        local = json.loads(json.dumps(namespace["use"](spec, trust=False)))  # as the subprocess's (JSON keys)
    assert not prompts, prompts

    # the subprocess ran the folder's code, this process the package's (transformers' own pipeline class for the
    # audio, video and image tasks, the folder's pipeline class for the audio-video task)
    if kind != "audio_video":
        assert remote["classes"].pop("pipeline") == local["classes"].pop("pipeline")
    for auto_name, cls in remote["classes"].items():
        assert cls.startswith("transformers_modules."), (auto_name, cls)
        assert local["classes"][auto_name].startswith("hf_maskedav."), (auto_name, local["classes"][auto_name])
        assert cls.rsplit(".", 1)[1] == local["classes"][auto_name].rsplit(".", 1)[1]
    assert set(remote["classes"]) == {*spec["processors"], *models, "pipeline.model"} | (
        {"pipeline"} if kind == "audio_video" else set())
    if kind == "audio_video":
        assert config["custom_pipelines"]["audio-video-classification"]["pt"] == ["AutoModelForAudioClassification"]
    assert {k: v for k, v in remote["config"].items() if k not in ("auto_map", "custom_pipelines")} == {
        k: v for k, v in local["config"].items() if k != "auto_map"}

    assert remote["inputs"].keys() == local["inputs"].keys() and remote["inputs"]
    for key in local["inputs"]:
        _close(remote["inputs"][key], local["inputs"][key], f"{spec['case']}: processed {key}")
    assert remote["outputs"].keys() == local["outputs"].keys() == set(models)
    for auto_name, outputs in local["outputs"].items():
        assert outputs and remote["outputs"][auto_name].keys() == outputs.keys(), auto_name
        for key, value in outputs.items():
            _close(remote["outputs"][auto_name][key], value, f"{spec['case']}: {auto_name}.{key}")
    assert [s["label"] for s in remote["pipeline"]] == [s["label"] for s in local["pipeline"]]
    _close([s["score"] for s in remote["pipeline"]], [s["score"] for s in local["pipeline"]], "pipeline scores")
    assert len(local["pipeline"]) == 3
