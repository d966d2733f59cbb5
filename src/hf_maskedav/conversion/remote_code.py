"""Export a model folder that loads with ``trust_remote_code=True`` where hf_maskedav is not installed.

``save_pretrained`` copies only files imported from the model's own folder, and the Hub's dynamic-module loader only
follows single-dot relative imports (``from .x import y``). So the export *flattens* the package: every hf_maskedav
module the model, its config and its processor need (found by following their imports) is written next to the
weights under a flat name (``layers.attention`` -> ``layers_attention.py``), with each package import rewritten to a
relative import of the module that really defines the name. ``config.json`` and the processor config get an
``auto_map`` pointing at the flattened classes, for every Auto class the family is registered with.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from pathlib import Path

PACKAGE = "hf_maskedav"


def _flat_name(module_name: str) -> str:
    return module_name[len(PACKAGE) + 1 :].replace(".", "_")


def _resolve(module_name: str, node: ast.ImportFrom) -> str:
    """Absolute module name of a ``from ... import`` inside ``module_name``."""
    if node.level == 0:
        return node.module
    base = module_name.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _package_imports(module):
    """Yield ``(node, {name: defining module})`` for every import of a package module inside ``module``."""
    source = inspect.getsource(module)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        target = _resolve(module.__name__, node)
        if target != PACKAGE and not target.startswith(PACKAGE + "."):
            continue
        imported = importlib.import_module(target)
        names = {}
        for alias in node.names:
            value = getattr(imported, alias.name)
            defining = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", target)
            if not defining.startswith(PACKAGE):
                raise ValueError(f"{module.__name__} imports {alias.name} from {target}, defined outside {PACKAGE}")
            names[alias.name] = (defining, alias.asname)
        yield node, names


def _collect(roots) -> dict[str, object]:
    """Every package module reachable from ``roots`` through package imports."""
    seen, todo = {}, [m.__name__ for m in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = module = importlib.import_module(name)
        for _, names in _package_imports(module):
            todo.extend(defining for defining, _ in names.values())
    return seen


def _rewrite(module) -> str:
    source = inspect.getsource(module)
    lines = source.splitlines(keepends=True)
    replacements = []
    for node, names in _package_imports(module):
        indent = " " * node.col_offset
        new = [
            f"{indent}from .{_flat_name(defining)} import {name}{f' as {asname}' if asname else ''}\n"
            for name, (defining, asname) in names.items()
        ]
        replacements.append((node.lineno - 1, node.end_lineno, new))
    for start, end, new in sorted(replacements, reverse=True):
        lines[start:end] = new
    header = f"# Flattened from {module.__name__} by hf_maskedav.conversion.remote_code; edit the package, not this.\n"
    return header + "".join(lines)


AUDIO_VIDEO_TASK = "audio-video-classification"


def _is_audio_visual(config_class) -> bool:
    """Whether ``config_class`` is an audio-visual family (one registered for the audio-video-classification task)."""
    from ..registration import family_of, is_audio_visual

    family = family_of(config_class)
    return family is not None and is_audio_visual(family)


def _auto_map(config) -> dict[str, str]:
    import transformers

    from ..registration import MODEL_AUTO_CLASSES

    config_class = type(config)
    mapping = {"AutoConfig": f"{_flat_name(config_class.__module__)}.{config_class.__name__}"}
    for auto_name in MODEL_AUTO_CLASSES:
        registered = getattr(transformers, auto_name)._model_mapping._extra_content.get(config_class)
        if registered is None:
            continue
        takes_video = getattr(registered, "takes_video", None)  # MaskFeat: an image or a video classifier
        if takes_video is not None and takes_video != config.is_video:
            continue  # that head cannot be built from this config
        mapping[auto_name] = f"{_flat_name(registered.__module__)}.{registered.__name__}"
    return mapping


_CONFIG_FILE = {
    "AutoProcessor": "processor_config.json",
    "AutoVideoProcessor": "video_preprocessor_config.json",
    "AutoImageProcessor": "preprocessor_config.json",
    "AutoFeatureExtractor": "preprocessor_config.json",
}


def _auto_class(processor) -> str:
    """The Auto class that loads ``processor`` (by what it is: a processor, a video/image processor, a feature extractor)."""
    from transformers import FeatureExtractionMixin, ProcessorMixin
    from transformers.image_processing_utils import BaseImageProcessor
    from transformers.video_processing_utils import BaseVideoProcessor

    for base, auto_name in (
        (ProcessorMixin, "AutoProcessor"),
        (BaseVideoProcessor, "AutoVideoProcessor"),
        (BaseImageProcessor, "AutoImageProcessor"),
        (FeatureExtractionMixin, "AutoFeatureExtractor"),
    ):
        if isinstance(processor, base):
            return auto_name
    raise TypeError(f"{type(processor).__name__} is neither a processor, an image/video processor nor a feature extractor")


def _processor_parts(processor) -> dict:
    """``{None: processor}`` plus, for a multi-modal processor, ``{attribute: sub-processor}`` for each of its parts
    (``feature_extractor``, ``video_processor``): each part is saved inside ``processor_config.json`` under its
    attribute and needs its own ``auto_map`` there, or AutoProcessor cannot build it without the package."""
    if processor is None:
        return {}
    parts = {None: processor}
    from transformers import ProcessorMixin

    if isinstance(processor, ProcessorMixin):
        for attribute in processor.get_attributes():
            parts[attribute] = getattr(processor, attribute)
    return parts


def export_remote_code(folder: str | Path, model, processor=None) -> list[str]:
    """Write the flattened modelling code into ``folder`` (already holding ``save_pretrained`` output).

    Returns the names of the files written. ``config.json`` (and the processor's config, if any) get an ``auto_map``.
    """
    folder = Path(folder)
    roots = [inspect.getmodule(type(model)), inspect.getmodule(type(model.config))]
    parts = _processor_parts(processor)
    roots.extend(inspect.getmodule(type(part)) for part in parts.values())
    audio_visual = _is_audio_visual(type(model.config))
    if audio_visual:
        from ..pipelines import audio_video_pipeline

        roots.append(audio_video_pipeline)
    modules = _collect(roots)
    written = []
    for name, module in sorted(modules.items()):
        if module.__file__.endswith("__init__.py"):
            continue  # packages only re-export; imports were resolved to the defining modules
        path = folder / f"{_flat_name(name)}.py"
        path.write_text(_rewrite(module))
        written.append(path.name)

    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = _auto_map(model.config)
    if audio_visual:
        # transformers' custom-pipeline mechanism: pipeline("audio-video-classification", model=folder,
        # trust_remote_code=True) builds this class with the model AutoModelForAudioClassification maps to (the
        # audio-visual classifier). With hf_maskedav installed the config ignores this entry and the registered task
        # serves the folder (see the configs' from_dict).
        config["custom_pipelines"] = {
            AUDIO_VIDEO_TASK: {
                "impl": f"{_flat_name(audio_video_pipeline.__name__)}.AudioVideoClassificationPipeline",
                "pt": ["AutoModelForAudioClassification"],
                "type": "multimodal",
            }
        }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    files = {}  # file name -> its JSON, written back at the end
    for attribute, part in parts.items():
        auto_name = _auto_class(part)
        reference = {auto_name: f"{_flat_name(type(part).__module__)}.{type(part).__name__}"}
        # a part of a processor is saved nested in processor_config.json under its attribute (transformers 5), or in
        # its own file (older layout); a lone processor is the top level of its own file
        places = [("processor_config.json", attribute)] if attribute is not None else []
        places.append((_CONFIG_FILE[auto_name], None))
        for file_name, key in places:
            path = folder / file_name
            if file_name not in files and path.is_file():
                files[file_name] = json.loads(path.read_text())
            data = files.get(file_name)
            target = data if key is None else (data or {}).get(key)
            if isinstance(target, dict):
                target["auto_map"] = reference
                break
    for file_name, data in files.items():
        (folder / file_name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return written
