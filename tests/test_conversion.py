"""conversion/convert_<family>.py: every script on every matching official fixture, safety, Hub output."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, ModelCard

import hf_maskedav  # noqa: F401
from hf_maskedav.conversion import UnmappedKeysError, load_official_checkpoint
from hf_maskedav.conversion.cli import convert, hub_operations, push_to_hub, resolve_checkpoint

from common import load_script

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HF_MASKEDAV_FIXTURES", REPO.parent / "shared" / "fixtures" / "official"))


SCRIPTS = {p.stem: load_script(p) for p in sorted((REPO / "conversion").glob("convert_*.py"))}
CASES = [
    (name, folder)
    for folder in (sorted(p for p in FIXTURES.iterdir() if (p / "fixture.json").is_file()) if FIXTURES.is_dir() else [])
    for name, script in SCRIPTS.items()
    if script.SPEC.handles(json.loads((folder / "fixture.json").read_text()))
]


def _auto_class(task: str):
    from transformers import (
        AutoModel,
        AutoModelForAudioClassification,
        AutoModelForImageClassification,
        AutoModelForPreTraining,
        AutoModelForVideoClassification,
    )

    return {
        "pretraining": AutoModelForPreTraining,
        "feature-extraction": AutoModel,  # encoder-only conversions
        "image-feature-extraction": AutoModel,
        "audio-classification": AutoModelForAudioClassification,
        "video-classification": AutoModelForVideoClassification,
        "image-classification": AutoModelForImageClassification,
    }[task]


def _pipeline_input(task: str):
    """A small synthetic input for each classification pipeline the converted folders serve."""
    import numpy as np

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(12, 40, 48, 3), dtype=np.uint8)  # [T, H, W, C]
    audio = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    if task == "audio-classification":
        return audio
    if task == "image-classification":
        from PIL import Image

        return Image.fromarray(frames[0])
    if task == "video-classification":
        return frames
    if task == "audio-video-classification":
        return {"audio": audio, "sampling_rate": 16000, "video": frames, "video_fps": 4.0}
    return None


def test_every_script_has_a_fixture_case():
    assert SCRIPTS, "no conversion scripts found"
    if FIXTURES.is_dir():
        # A script whose SPEC declares no official_repos has no parity fixture by design (AV-MAE: the official code is
        # JAX and was never run here); its conversion is tested on files its own tests write (tests/test_avmae.py).
        with_fixtures = {name for name, script in SCRIPTS.items() if script.SPEC.official_repos}
        assert {name for name, _ in CASES} == with_fixtures, "a conversion script matches no fixture"


@pytest.mark.parametrize("script_name, folder", CASES, ids=[f"{n}-{f.name}" for n, f in CASES])
def test_script_converts_fixture_and_auto_classes_reproduce_official_outputs(script_name, folder, tmp_path):
    script = SCRIPTS[script_name]
    out = convert(script.SPEC, ["--official_kwargs", str(folder / "fixture.json"), "--verify", "--output_dir", str(tmp_path / "out")])
    record = json.loads((out / "conversion.json").read_text())
    assert record["verification"]["status"] == "passed"
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.license
    assert "hf_maskedav" in card.data.tags

    # Reload through the Auto classes and compare with the official outputs again.
    config = json.loads((out / "config.json").read_text())
    architecture = config["architectures"][0]
    task = "pretraining" if "PreTraining" in architecture else script.SPEC.pipeline_tag[record["task"]]
    model = _auto_class(task).from_pretrained(out)
    assert type(model).__name__ == architecture
    fixture = json.loads((folder / "fixture.json").read_text())
    for name, ours, ref, atol, rtol in script.SPEC.verify_fixture(model, folder, fixture):
        torch.testing.assert_close(ours.to(ref.dtype), ref, atol=atol, rtol=rtol, msg=name)
    # pipeline() works on the folder: the Hub tag's task, or the family's own pipeline where the Hub has no tag
    pipeline_task = script.SPEC.pipeline_task.get(record["task"], script.SPEC.pipeline_tag.get(record["task"]))
    sample = _pipeline_input(pipeline_task)
    if sample is not None:
        from transformers import pipeline

        scores = pipeline(pipeline_task, model=str(out))(sample)
        assert len(scores) == min(5, model.config.num_labels)
        assert all(set(row) == {"label", "score"} for row in scores)


def _audiomae_fixture():
    folder = FIXTURES / "audiomae_pretrain_global_tiny"
    if not folder.is_dir():
        pytest.skip("audiomae_pretrain_global_tiny fixture not available")
    return folder


def test_mismatched_checkpoint_names_the_offending_keys(tmp_path):
    folder = _audiomae_fixture()
    with pytest.raises(UnmappedKeysError, match=r"shape mismatches: .*patch_embed"):
        convert(
            SCRIPTS["convert_audiomae"].SPEC,
            ["--preset", "audiomae-base-as2m-pretrained", "--checkpoint", str(folder / "checkpoint.pth"), "--output_dir", str(tmp_path / "o")],
        )


def test_refuses_non_empty_output_dir_without_overwrite(tmp_path):
    folder = _audiomae_fixture()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["--official_kwargs", str(folder / "fixture.json"), "--output_dir", str(out)]
    with pytest.raises(SystemExit, match="not empty"):
        convert(SCRIPTS["convert_audiomae"].SPEC, argv)
    assert (out / "keep.txt").read_text() == "mine"
    convert(SCRIPTS["convert_audiomae"].SPEC, argv + ["--overwrite"])
    assert (out / "model.safetensors").is_file()


def test_spec_hooks_for_other_formats_unverifiable_families_and_merged_kwargs(tmp_path):
    """ConversionSpec.load_checkpoint (a reader for another file format), unverifiable (recorded whatever --verify
    says) and merge_official_kwargs (--official_kwargs updates the preset's arguments), as AV-MAE uses them."""
    import dataclasses

    folder = _audiomae_fixture()
    spec = SCRIPTS["convert_audiomae"].SPEC
    kwargs = json.loads((folder / "fixture.json").read_text())["constructor_kwargs"]
    seen = {}

    def read_other_format(path):
        seen["path"] = Path(path)
        return load_official_checkpoint(path)

    def build_model(official_kwargs, task, **rest):
        seen["kwargs"] = dict(official_kwargs)
        return spec.build_model(kwargs, task, **rest)

    preset = dataclasses.replace(next(iter(spec.presets.values())), name="tiny", official_kwargs={"a": 1, "b": 2})
    hooked = dataclasses.replace(spec, presets={"tiny": preset}, build_model=build_model, load_checkpoint=read_other_format,
                                 unverifiable="no official outputs exist", merge_official_kwargs=True)
    argv = ["--preset", "tiny", "--official_kwargs", '{"b": 3}', "--checkpoint", str(folder / "checkpoint.pth")]
    for verify in ([], ["--verify"]):
        out = convert(hooked, argv + verify + ["--output_dir", str(tmp_path / f"out{len(verify)}")])
        assert seen.pop("path") == folder / "checkpoint.pth"
        assert seen.pop("kwargs") == {"a": 1, "b": 3}
        record = json.loads((out / "conversion.json").read_text())["verification"]
        assert record == {"status": "unverified", "reason": "no official outputs exist"}
    convert(dataclasses.replace(hooked, merge_official_kwargs=False), argv + ["--output_dir", str(tmp_path / "o")])
    assert seen["kwargs"] == {"b": 3}  # the default: --official_kwargs replaces the preset's arguments


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": _Boom()}, handle)
    with pytest.raises(pickle.UnpicklingError):
        load_official_checkpoint(path)
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_argparse_namespace_is_allowed(tmp_path):
    import argparse

    path = tmp_path / "with_args.pth"
    torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=0.1)}, path)
    assert load_official_checkpoint(path)["args"].lr == 0.1


def test_download_uses_a_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MASKEDAV_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "remote.pth"
    torch.save({"model": {"w": torch.ones(2)}}, source)
    first = resolve_checkpoint(source.as_uri())
    assert first.is_file() and first != source
    source.unlink()  # a second resolve must not download again
    assert resolve_checkpoint(source.as_uri()) == first


def test_push_to_hub_makes_exactly_one_commit_of_the_folder(tmp_path):
    folder = _audiomae_fixture()
    out = convert(SCRIPTS["convert_audiomae"].SPEC, ["--official_kwargs", str(folder / "fixture.json"), "--output_dir", str(tmp_path / "o")])

    class RecordingApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def create_branch(self, repo_id, **kwargs):
            self.calls.append(("create_branch", repo_id, kwargs))

        def create_commit(self, repo_id, operations, **kwargs):
            self.calls.append(("create_commit", repo_id, operations, kwargs))

    api = RecordingApi()
    push_to_hub(out, "org/audiomae-tiny", private=True, revision="v1", api=api)
    assert api.calls[0] == ("create_repo", "org/audiomae-tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert api.calls[1][0] == "create_branch" and api.calls[1][2]["branch"] == "v1"
    _, repo_id, operations, kwargs = api.calls[2]
    assert repo_id == "org/audiomae-tiny" and kwargs["revision"] == "v1"
    assert all(isinstance(op, CommitOperationAdd) for op in operations)
    assert sorted(op.path_in_repo for op in operations) == [
        "README.md", "config.json", "conversion.json", "model.safetensors", "preprocessor_config.json",
    ]
    assert [op.path_in_repo for op in operations] == [op.path_in_repo for op in hub_operations(out)]


REMOTE_LOADER = """
import sys
sys.modules["hf_maskedav"] = None  # the package must not be needed (any import of it fails)
import torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModelForPreTraining
folder, io_path = sys.argv[1], sys.argv[2]
model = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
assert not type(model).__module__.startswith("hf_maskedav"), type(model).__module__
AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
io = load_file(io_path)
with torch.no_grad():
    print(repr(model(io["input_values"], noise=io["noise"]).loss.item()))
"""


def test_remote_code_export_loads_without_the_package(tmp_path):
    import subprocess
    import sys

    from safetensors.torch import load_file

    folder = _audiomae_fixture()
    out = convert(
        SCRIPTS["convert_audiomae"].SPEC,
        ["--official_kwargs", str(folder / "fixture.json"), "--export_remote_code", "--output_dir", str(tmp_path / "o")],
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_LOADER, str(out), str(folder / "io.safetensors")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    official_loss = load_file(str(folder / "io.safetensors"))["loss"].item()
    assert abs(float(result.stdout.strip().splitlines()[-1]) - official_loss) < 1e-5


def test_videomae_script_converts_a_transformers_format_repo(tmp_path):
    """convert_videomae.py --transformers_checkpoint: a repo in transformers' own VideoMAE format, verified."""
    import transformers
    from transformers import AutoModelForVideoClassification

    config = transformers.VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, num_labels=3,
    )
    torch.manual_seed(0)
    reference = transformers.VideoMAEForVideoClassification(config)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))
    reference.save_pretrained(tmp_path / "hf")
    out = convert(
        SCRIPTS["convert_videomae"].SPEC,
        ["--transformers_checkpoint", str(tmp_path / "hf"), "--verify", "--output_dir", str(tmp_path / "out")],
    )
    record = json.loads((out / "conversion.json").read_text())
    assert record["verification"]["status"] == "passed" and "logits" in record["verification"]["outputs"]
    ours = AutoModelForVideoClassification.from_pretrained(out).eval()
    clip = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(clip).logits, reference.eval()(clip).logits, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------------------
# model cards and manifests are package data


def test_cards_and_manifests_ship_in_the_wheel_and_are_found_without_the_source_tree(tmp_path):
    """Build the wheel from a copy of the project, unpack it elsewhere and render every family's card from it: the
    templates and architecture manifests must be package data (not found through the source checkout)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    subprocess.run([sys.executable, "-c", f"import setuptools.build_meta as b; b.build_wheel({str(wheels)!r})"],
                   cwd=project, check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "src" / "hf_maskedav" / "conversion"
    data = sorted(p.relative_to(REPO / "src").as_posix() for folder in ("model_cards", "manifests")
                  for p in (package / folder).rglob("*") if p.is_file())
    assert len([d for d in data if "/model_cards/" in d]) == len(SCRIPTS) and any("/manifests/" in d for d in data)
    assert [d for d in data if d not in shipped] == []

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # each family's card rendered by the unpacked package (the scripts only describe the family: ConversionSpec)
    check = f"""
import runpy
import hf_maskedav.conversion.cli as cli
assert cli.__file__.startswith({str(installed)!r}), cli.__file__
for script in {sorted(str(REPO / "conversion" / f"{name}.py") for name in SCRIPTS)!r}:
    spec = runpy.run_path(script)["SPEC"]
    preset = next(p for p in spec.presets.values() if cli.architecture_manifest(spec, p) is not None)
    card = " ".join(str(cli.render_model_card(spec, preset, preset.task, {{"status": "unverified"}}, "f", "o/x")).split())
    assert "Architecture: **verified at full size against the official code.**" in card, spec.family
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_no_code_path_finds_files_through_the_source_checkout():
    sources = [p for p in (REPO / "src" / "hf_maskedav").rglob("*.py")]
    assert [str(p) for p in sources if "parents[3]" in p.read_text() or "repo_root" in p.read_text()] == []


def test_fixture_helpers_and_main_with_argv(tmp_path, capsys):
    from hf_maskedav.conversion.cli import main
    from hf_maskedav.conversion.utils import fixture_io, forward_call_arguments

    folder = _audiomae_fixture()
    fixture = json.loads((folder / "fixture.json").read_text())
    io, atol, rtol = fixture_io(folder, fixture)
    assert "input_values" in io and all(isinstance(v, torch.Tensor) for v in io.values())
    assert (atol, rtol) == (float(fixture.get("suggested_tolerance", {}).get("atol", 1e-5)),
                            float(fixture.get("suggested_tolerance", {}).get("rtol", 1e-4)))
    assert fixture_io(folder, {})[1:] == (1e-5, 1e-4)
    call = {"forward_call": "model(imgs, mask_ratio=0.8, eps=1e-6, shift=-2)"}
    assert forward_call_arguments(call) == {"mask_ratio": 0.8, "eps": 1e-6, "shift": -2.0}
    assert forward_call_arguments({}) == {}
    with pytest.raises(SystemExit) as exit_info:  # errors: one line and status 1, argv taken as given
        main(SCRIPTS["convert_audiomae"].SPEC, ["--checkpoint", str(tmp_path / "missing.pth"),
                                                 "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 1 and "checkpoint not found" in capsys.readouterr().err
