"""The command line shared by every ``conversion/convert_<family>.py`` script.

A family plugs in through a :class:`ConversionSpec` (its presets, how to build our model from the official
constructor's keyword arguments, its key table, its processor and how to check the converted model against
outputs of the official code). Everything else lives here once: safe loading (``weights_only=True`` with an
allow-list), download with a progress bar and a cache, strict key accounting, verification, a Hub-ready output folder
(safetensors weights, processor config, model card) and pushing to the Hub.

The model-card templates (``model_cards/<family>.md``) and the official architecture manifests
(``manifests/<family>/``) are package data of :mod:`hf_maskedav.conversion`, read with :mod:`importlib.resources`, so
they are found from an installed wheel as from a source checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .utils import load_official_checkpoint, unwrap_state_dict


@dataclass
class Preset:
    """One released checkpoint.

    Attributes:
        name: preset name given to ``--preset``.
        url: where the official file is published.
        task: ``"pretraining"`` or ``"classification"`` (which of our heads it fills).
        official_kwargs: the official constructor's keyword arguments describing the architecture.
        processor: keyword arguments of our processor (e.g. fbank length and normalisation statistics).
        license: licence of the original weights (carried into the model card).
        datasets: datasets it was trained on (Hub ids where they exist).
        results: published results, each ``{"task_type", "dataset_name", "dataset_type", "metric_type",
            "metric_name", "metric_value", "source"}``.
        description: one paragraph for the model card.
        reference: optional reference outputs published by the authors (used by ``--verify``).
    """

    name: str
    url: str
    task: str
    official_kwargs: dict
    processor: dict = field(default_factory=dict)
    license: str = "cc-by-nc-4.0"
    datasets: list = field(default_factory=list)
    results: list = field(default_factory=list)
    description: str = ""
    reference: dict | None = None


@dataclass
class ConversionSpec:
    """What a family contributes to the shared command line.

    Attributes:
        family: short name (``"audiomae"``); also the model-card template name.
        presets: ``{name: Preset}``.
        build_model: ``(official_kwargs, task, fixture=None, state_dict=None, **config_overrides) -> model``
            (randomly initialised, right shape). ``state_dict`` is the official one, for families whose layout is read
            from the keys (MAViL); ``fixture`` is the parsed fixture.json when converting a parity fixture.
        convert_state_dict: ``(official_state_dict, model) -> our state dict`` with strict key accounting.
        build_processor: ``(config, processor_kwargs) -> processor`` saved next to the weights.
        verify_fixture: ``(model, folder, fixture) -> list[(name, ours, reference, atol, rtol)]`` against
            outputs the official code produced (a parity-fixture folder).
        containers: official container keys to look for (``model``, ``module``, ``model_state``...).
        pipeline_tag: Hub pipeline tag per task.
        tags: extra Hub tags.
        paper: ``{"title", "url", "bibtex"}`` for the model card.
        default_task: task assumed with ``--official_kwargs`` when the kwargs do not tell.
        task_from_kwargs: ``(official_kwargs) -> task``.
        default_license: licence written into cards of non-preset conversions (the family's weights licence).
        official_repos: ``official_repo`` values of the parity fixtures this family converts (for the tests).
        kwargs_from_checkpoint: ``(loaded checkpoint, before unwrapping) -> official_kwargs or None``, for families
            whose files store the configuration they were built from (SlowFast ``.pyth``: ``checkpoint["cfg"]``);
            used when neither ``--preset`` nor ``--official_kwargs`` describes the architecture.
        task_from_checkpoint: ``(official state dict) -> task``, for families whose heads are read from the keys
            (MAViL); takes precedence over ``task_from_kwargs``, and a preset of another task is an error.
        pipeline_task: the transformers pipeline that runs a converted model, per task, where it is not the Hub
            ``pipeline_tag`` (e.g. ``audio-video-classification``, for which the Hub has no tag).
        fixture_filter: ``(fixture) -> bool``, narrowing ``official_repos`` when one official repository holds several
            families (SlowFast: MaskFeat and MAE).
        from_transformers: ``(folder_or_hub_id) -> (model, task)`` for families with a transformers-format
            counterpart (VideoMAE: the Hub's ``MCG-NJU/videomae-*`` repos); enables ``--transformers_checkpoint``.
        verify_transformers: ``(model, folder_or_hub_id) -> rows`` comparing with the transformers model itself.
        load_checkpoint: ``(path) -> checkpoint`` for files that are not PyTorch pickles (AV-MAE's Flax msgpack);
            default :func:`~hf_maskedav.conversion.utils.load_official_checkpoint` (``weights_only=True``).
        unverifiable: the reason no official outputs can verify this family's conversions; when set, every
            conversion is recorded (card, ``conversion.json``) as ``unverified`` with it, ``--verify`` or not.
        merge_official_kwargs: ``--official_kwargs`` given with ``--preset`` updates the preset's arguments
            (AV-MAE: the fields the weights cannot tell) instead of replacing them.
    """

    def handles(self, fixture: Mapping) -> bool:
        """Whether a parity fixture is a checkpoint of this family (fixtures without a checkpoint are not)."""
        if fixture.get("official_repo") not in self.official_repos or "constructor_kwargs" not in fixture:
            return False
        return self.fixture_filter is None or bool(self.fixture_filter(fixture))

    family: str
    presets: Mapping[str, Preset]
    build_model: Callable
    convert_state_dict: Callable
    build_processor: Callable
    verify_fixture: Callable
    containers: tuple = ("model",)
    pipeline_tag: Mapping[str, str] = field(default_factory=dict)
    tags: tuple = ()
    paper: Mapping[str, str] = field(default_factory=dict)
    task_from_kwargs: Callable | None = None
    default_license: str = "other"
    official_repos: tuple = ()
    kwargs_from_checkpoint: Callable | None = None
    task_from_checkpoint: Callable | None = None
    pipeline_task: Mapping[str, str] = field(default_factory=dict)
    fixture_filter: Callable | None = None
    from_transformers: Callable | None = None
    verify_transformers: Callable | None = None
    load_checkpoint: Callable | None = None
    unverifiable: str | None = None
    merge_official_kwargs: bool = False


# ---------------------------------------------------------------------------------------------------------------------
# Fetching checkpoints


def cache_dir() -> Path:
    return Path(os.environ.get("HF_MASKEDAV_CACHE", Path.home() / ".cache" / "hf_maskedav" / "checkpoints"))


def resolve_checkpoint(source: str) -> Path:
    """A local path is returned as is; a URL is downloaded once (progress bar, atomic write) into the cache."""
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return path
    parsed = urllib.parse.urlparse(source)
    name = Path(parsed.path).name or "checkpoint.pth"
    target = cache_dir() / hashlib.sha256(source.encode()).hexdigest()[:16] / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(source, headers={"User-Agent": "hf_maskedav-conversion"})
    with urllib.request.urlopen(request) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"downloading {name}"
        ) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                tmp.write(chunk)
                bar.update(len(chunk))
    os.replace(tmp.name, target)  # atomic: a half-downloaded file never looks complete
    return target


# ---------------------------------------------------------------------------------------------------------------------
# Model card and Hub


def package_data(*parts: str):
    """A file or folder shipped inside :mod:`hf_maskedav.conversion` (``"model_cards"``, ``"manifests"``), as an
    :mod:`importlib.resources` traversable (a ``Path`` for a source checkout or an installed wheel)."""
    resource = importlib.resources.files(__package__)
    for part in parts:
        resource = resource / part
    return resource


def model_card_template(family: str) -> str:
    """The Jinja text of ``model_cards/<family>.md`` (package data)."""
    template = package_data("model_cards", f"{family}.md")
    if not template.is_file():
        raise FileNotFoundError(f"model card template missing: {template}")
    return template.read_text(encoding="utf-8")


def architecture_manifest(spec: ConversionSpec, preset: Preset | None) -> dict | None:
    """The official key -> shape manifest of ``preset`` (``manifests/<family>/``, package data written from the official
    code at full size by ``conversion/official_manifests.py`` and checked against our key table by
    ``tests/test_preset_manifests.py``), or ``None`` where there is none."""
    if preset is None:
        return None
    folder = package_data("manifests", spec.family)
    index = folder / "index.json"
    if not index.is_file():
        return None
    architecture = json.loads(index.read_text(encoding="utf-8")).get(preset.name)
    if architecture is None:
        return None
    manifest = json.loads((folder / f"{architecture}.json").read_text(encoding="utf-8"))
    keys = ("official_class", "official_repo_commit", "container", "num_parameters", "official_repo", "official_config")
    return {key: manifest[key] for key in keys if key in manifest} | {"num_keys": len(manifest["state_dict"])}


def render_model_card(
    spec: ConversionSpec, preset: Preset | None, task: str, verification: dict, source: str, repo_id: str,
    space_id: str | None = None,
):
    """Render ``model_cards/<family>.md`` (a Jinja template, package data) with the card metadata; returns a ``ModelCard``.

    ``space_id``: the Space that serves this checkpoint's demo (``--export_space``); the card links it.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = preset.results if preset else []
    eval_results = [
        EvalResult(
            task_type=r["task_type"],
            dataset_type=r["dataset_type"],
            dataset_name=r["dataset_name"],
            metric_type=r["metric_type"],
            metric_name=r.get("metric_name"),
            metric_value=r["metric_value"],
            source_name=r.get("source"),
            source_url=spec.paper.get("url"),
        )
        for r in results
    ]
    model_name = preset.name if preset else f"{spec.family}-converted"
    card_data = ModelCardData(
        license=preset.license if preset else spec.default_license,
        library_name="transformers",
        pipeline_tag=spec.pipeline_tag.get(task),
        tags=["hf_maskedav", spec.family, *spec.tags],
        datasets=list(preset.datasets) if preset else None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_str=model_card_template(spec.family),
        model_name=model_name,
        task=task,
        description=preset.description if preset else "",
        source=source,
        paper=spec.paper,
        verification=verification,
        architecture=architecture_manifest(spec, preset),
        results=results,
        repo_id=repo_id,
        space_id=space_id,
    )


def export_demo_space(args) -> Path | None:
    """``--export_space DIR``: the demo's Space folder for the repo of ``--push_to_hub`` (see hf_maskedav.app)."""
    if not getattr(args, "export_space", None):
        return None
    if not args.push_to_hub:
        raise ValueError("--export_space needs --push_to_hub REPO_ID: the Space loads the model from that repo")
    from ..app.space import export_space

    folder = export_space(args.push_to_hub, args.export_space, title=args.space_id.split("/")[-1] if args.space_id
                          else None)
    print(f"wrote the demo Space folder {folder} (upload it with: huggingface-cli upload --repo-type space "
          f"{args.space_id or 'OWNER/NAME'} {folder})")
    return folder


def hub_operations(folder: Path):
    """The exact commit that ``--push_to_hub`` makes: one ``CommitOperationAdd`` per file of the output folder."""
    from huggingface_hub import CommitOperationAdd

    return [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def push_to_hub(folder: Path, repo_id: str, private: bool = False, revision: str | None = None, api=None):
    """Create the repo if needed and upload the output folder in one commit; returns the commit info."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return api.create_commit(
        repo_id=repo_id,
        operations=hub_operations(folder),
        commit_message=f"Upload converted checkpoint ({folder.name})",
        revision=revision,
    )


# ---------------------------------------------------------------------------------------------------------------------
# The command


def build_parser(spec: ConversionSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=f"Convert an official {spec.family} checkpoint into a Hub-ready hf_maskedav model folder.",
        epilog="presets: " + ", ".join(spec.presets),
    )
    parser.add_argument("--checkpoint", help="URL or local path of the official checkpoint (defaults to the preset URL)")
    parser.add_argument("--preset", choices=sorted(spec.presets), help="a released checkpoint (architecture, URL, licence)")
    parser.add_argument(
        "--official_kwargs",
        help="JSON file or string with the official constructor's keyword arguments, for an architecture that is "
        "not a preset; a parity fixture's fixture.json is accepted as is (its constructor_kwargs are used and its "
        "checkpoint.pth and io.safetensors are the defaults for --checkpoint and --verify)",
    )
    if spec.from_transformers is not None:
        parser.add_argument(
            "--transformers_checkpoint",
            help="a folder or Hub repo id in transformers' own format for this family (instead of --checkpoint); "
            "--verify then compares with the transformers model on the same input",
        )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --output_dir")
    parser.add_argument("--verify", action="store_true", help="compare the converted model with official outputs")
    parser.add_argument("--reference", help="folder with fixture.json + io.safetensors made by the official code")
    parser.add_argument("--labels_csv", help="CSV with index,mid,display_name rows (AudioSet class_labels_indices.csv)")
    parser.add_argument(
        "--export_remote_code",
        action="store_true",
        help="also write the modelling code into the folder, so that from_pretrained(..., trust_remote_code=True) "
        "works where hf_maskedav is not installed",
    )
    parser.add_argument("--push_to_hub", metavar="REPO_ID")
    parser.add_argument("--space_id", metavar="OWNER/NAME",
                        help="the Space that serves this checkpoint's demo: the model card links it")
    parser.add_argument("--export_space", metavar="DIR",
                        help="also write the demo's Space folder (app.py, requirements.txt, README.md) for the repo "
                        "of --push_to_hub into DIR (python -m hf_maskedav.app)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision")
    parser.add_argument("--dry_run", action="store_true", help="with --push_to_hub: print the commit, do not upload")
    return parser


def _read_official_kwargs(value: str) -> tuple[dict, Path | None, dict | None]:
    path = Path(value)
    if path.is_file():
        data = json.loads(path.read_text())
        folder = path.parent
    else:
        data, folder = json.loads(value), None
    if "constructor_kwargs" in data:  # a parity fixture's fixture.json
        kwargs = data["constructor_kwargs"]
        # SlowFast fixtures describe the constructor in words ("MaskMViT(cfg) -- ..."): the architecture is the config
        # stored in the checkpoint (spec.kwargs_from_checkpoint) or in the fixture (the family's build_model reads it).
        return (dict(kwargs) if isinstance(kwargs, Mapping) else {}), folder, data
    return dict(data), None, None


def _labels_from_csv(path: str) -> dict[int, str]:
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {int(row["index"]): row.get("display_name") or row.get("mid") for row in rows}


def _check_rows(rows, reference: str) -> dict:
    """Compare ``(name, ours, reference, atol, rtol)`` rows; the verification record for the card."""
    verification = {"status": "passed", "reference": reference, "outputs": {}}
    for name, ours, ref, atol, rtol in rows:
        error = float((ours.double() - ref.double()).abs().max()) if ours.numel() else 0.0
        ok = ours.shape == ref.shape and torch.allclose(ours.double(), ref.double(), atol=atol, rtol=rtol)
        verification["outputs"][name] = {"max_abs_error": error, "ok": bool(ok)}
        print(f"verify {name}: max abs error {error:.3e} {'ok' if ok else 'FAILED'}")
        if not ok:
            verification["status"] = "failed"
    if verification["status"] == "failed":
        raise SystemExit("error: the converted model does not reproduce the reference outputs (see above)")
    return verification


def _load_transformers_format(spec: ConversionSpec, args):
    source = args.transformers_checkpoint
    model, task = spec.from_transformers(source)
    print(f"converted transformers-format {source} into {type(model).__name__} (strict key accounting passed)")
    verification = {"status": "not run"}
    if args.verify:
        verification = _check_rows(spec.verify_transformers(model, source), f"transformers model {source}")
    return model.eval(), task, source, verification


def convert(spec: ConversionSpec, argv=None) -> Path:
    """Run the conversion; returns the output folder."""
    args = build_parser(spec).parse_args(argv)
    output = Path(args.output_dir)
    if output.exists() and any(output.iterdir()) and not args.overwrite:
        raise SystemExit(f"error: {output} is not empty; choose another --output_dir or pass --overwrite")
    if getattr(args, "transformers_checkpoint", None):
        preset = spec.presets[args.preset] if args.preset else None
        model, task, source, verification = _load_transformers_format(spec, args)
        return _write_output(spec, args, output, model, preset, task, source, verification)
    if args.preset is None and args.official_kwargs is None and not args.checkpoint:
        raise SystemExit("error: give --preset NAME or --official_kwargs JSON to describe the architecture")

    preset = spec.presets[args.preset] if args.preset else None
    fixture_folder = fixture = None
    if args.official_kwargs:
        official_kwargs, fixture_folder, fixture = _read_official_kwargs(args.official_kwargs)
        if spec.merge_official_kwargs and preset is not None:
            official_kwargs = {**preset.official_kwargs, **official_kwargs}
    elif preset is not None:
        official_kwargs = dict(preset.official_kwargs)
    else:
        official_kwargs = {}  # families that read the architecture from the checkpoint

    source = args.checkpoint or (preset.url if preset else None)
    if source is None and fixture_folder is not None and (fixture_folder / "checkpoint.pth").is_file():
        source = str(fixture_folder / "checkpoint.pth")
    if source is None:
        raise SystemExit("error: no checkpoint: pass --checkpoint URL_OR_PATH")
    checkpoint_path = resolve_checkpoint(source)
    if spec.load_checkpoint is None:
        print(f"loading {checkpoint_path} (weights_only=True)")
        checkpoint = load_official_checkpoint(checkpoint_path)
    else:
        print(f"loading {checkpoint_path} ({spec.load_checkpoint.__name__})")
        checkpoint = spec.load_checkpoint(checkpoint_path)
    if not official_kwargs and spec.kwargs_from_checkpoint is not None:
        official_kwargs = dict(spec.kwargs_from_checkpoint(checkpoint) or {})
    state_dict = unwrap_state_dict(checkpoint, containers=spec.containers)
    del checkpoint  # optimizer states and the like

    if spec.task_from_checkpoint is not None:
        task = spec.task_from_checkpoint(state_dict)
        if preset is not None and task != preset.task:
            raise ValueError(
                f"the checkpoint is a {task!r} checkpoint (read from its keys) but preset {preset.name!r} is "
                f"{preset.task!r}: choose the matching preset or convert without --preset"
            )
    elif preset is not None:
        task = preset.task
    else:
        task = spec.task_from_kwargs(official_kwargs) if spec.task_from_kwargs else "pretraining"

    overrides = {}
    if args.labels_csv:
        id2label = _labels_from_csv(args.labels_csv)
        overrides.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = spec.build_model(official_kwargs, task, fixture=fixture, state_dict=state_dict, **overrides)
    model.load_state_dict(spec.convert_state_dict(state_dict, model), strict=True)
    model.eval()
    print(f"converted {len(state_dict)} official tensors into {type(model).__name__} (strict key accounting passed)")

    verification = {"status": "not run"}
    if spec.unverifiable:
        verification = {"status": "unverified", "reason": spec.unverifiable}
        if args.verify:
            print(f"verify: {spec.unverifiable}")
    elif args.verify:
        reference = Path(args.reference) if args.reference else fixture_folder
        if reference is None or not (reference / "io.safetensors").is_file():
            verification = {
                "status": "unverified",
                "reason": "no official outputs available (pass --reference <folder with fixture.json and "
                "io.safetensors produced by the official code>)",
            }
            print(f"verify: {verification['reason']}")
        else:
            ref_fixture = fixture or json.loads((reference / "fixture.json").read_text())
            verification = _check_rows(spec.verify_fixture(model, reference, ref_fixture), str(reference))
    return _write_output(spec, args, output, model, preset, task, source, verification)


def _write_output(spec, args, output: Path, model, preset, task, source, verification) -> Path:
    """The Hub-ready folder: weights, processor, model card, conversion record; optionally remote code and push."""
    if output.exists() and args.overwrite:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    processor_kwargs = dict(preset.processor) if preset else {}
    processor = spec.build_processor(model.config, processor_kwargs)
    processor.save_pretrained(output)
    if args.export_remote_code:
        from .remote_code import export_remote_code

        files = export_remote_code(output, model, processor)
        print(f"exported remote code: {len(files)} files")
    card = render_model_card(spec, preset, task, verification, source, args.push_to_hub or output.name,
                             space_id=args.space_id)
    card.save(output / "README.md")
    export_demo_space(args)
    (output / "conversion.json").write_text(
        json.dumps({"source": source, "preset": args.preset, "task": task, "verification": verification}, indent=2)
    )
    print(f"wrote {output}")

    if args.push_to_hub:
        if args.dry_run:
            for op in hub_operations(output):
                print(f"would upload {op.path_in_repo} -> {args.push_to_hub}@{args.revision or 'main'}")
        else:
            info = push_to_hub(output, args.push_to_hub, private=args.private, revision=args.revision)
            print(f"pushed to {info.commit_url if hasattr(info, 'commit_url') else args.push_to_hub}")
    return output


def main(spec: ConversionSpec, argv=None) -> None:
    """``convert`` with errors printed as one line (exit status 1); ``argv`` defaults to the command line."""
    try:
        convert(spec, argv)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
