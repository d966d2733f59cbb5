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


def _auto_map(config_class) -> dict[str, str]:
    import transformers

    mapping = {"AutoConfig": f"{_flat_name(config_class.__module__)}.{config_class.__name__}"}
    for auto_name in (
        "AutoModel",
        "AutoModelForPreTraining",
        "AutoModelForAudioClassification",
        "AutoModelForVideoClassification",
        "AutoModelForImageClassification",
    ):
        registered = getattr(transformers, auto_name)._model_mapping._extra_content.get(config_class)
        if registered is not None:
            mapping[auto_name] = f"{_flat_name(registered.__module__)}.{registered.__name__}"
    return mapping


def export_remote_code(folder: str | Path, model, processor=None) -> list[str]:
    """Write the flattened modelling code into ``folder`` (already holding ``save_pretrained`` output).

    Returns the names of the files written. ``config.json`` (and the processor's config, if any) get an ``auto_map``.
    """
    folder = Path(folder)
    roots = [inspect.getmodule(type(model)), inspect.getmodule(type(model.config))]
    if processor is not None:
        roots.append(inspect.getmodule(type(processor)))
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
    config["auto_map"] = _auto_map(type(model.config))
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if processor is not None:
        for candidate in ("preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json"):
            path = folder / candidate
            if path.is_file():
                data = json.loads(path.read_text())
                key = {
                    "preprocessor_config.json": "AutoFeatureExtractor" if "FeatureExtractor" in type(processor).__name__ else "AutoImageProcessor",
                    "video_preprocessor_config.json": "AutoVideoProcessor",
                    "processor_config.json": "AutoProcessor",
                }[candidate]
                data["auto_map"] = {key: f"{_flat_name(type(processor).__module__)}.{type(processor).__name__}"}
                path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return written
