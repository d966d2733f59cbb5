"""``--export_space DIR``: a Hugging Face Space folder (Gradio SDK) that serves the demo of one model repo.

The folder holds ``app.py`` (calls :func:`hf_maskedav.app.main` on the model, on 0.0.0.0:7860 as Spaces expect),
``requirements.txt`` and ``README.md`` whose YAML header is the Space's metadata (SDK, app file, the model it uses).
Upload it as a Space (``huggingface-cli upload --repo-type space USER/NAME DIR``) and link it from the model card
(the converters' ``--space_id``).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_TEMPLATE = '''"""Demo of {model}, served by hf_maskedav's app (python -m hf_maskedav.app --model {model})."""

from hf_maskedav.app import main

main({argv!r})
'''

README_TEMPLATE = """---
title: {title}
emoji: 🎧
colorFrom: indigo
colorTo: gray
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
license: apache-2.0
models:
  - {model}
tags:
  - hf_maskedav
---

# {title}

A browser demo of [{model}](https://huggingface.co/{model}), made with hf_maskedav's app: drop in a file and see
what the model makes of it (labels for a classifier, masked input and reconstruction for a pretraining checkpoint,
audio<->video retrieval for a MAViL / CAV-MAE encoder). Files are processed on the Space's CPU and not kept.

The same page on your own machine:

```bash
pip install "hf-maskedav[demo]"
python -m hf_maskedav.app --model {model}
```
"""


def _gradio_version() -> str:
    try:
        from importlib.metadata import version

        return version("gradio")
    except Exception:  # gradio not installed here: the Space picks the version of the header below
        return "6.0.0"


def export_space(model: str, folder, title: str | None = None, requirement: str | None = None,
                 mode: str | None = None, top_k: int = 5) -> Path:
    """Write the Space folder for ``model`` (a Hub model id) into ``folder``; returns the folder."""
    from ..version import __version__

    if os.path.isdir(model):
        raise ValueError(f"--export_space needs the model's Hub id (the Space downloads it), got the folder {model!r}")
    if model.count("/") != 1:
        raise ValueError(f"--export_space needs a Hub model id 'owner/name', got {model!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["--model", model, "--host", "0.0.0.0", "--port", "7860", "--top_k", str(top_k)]
    if mode:
        argv += ["--mode", mode]
    (folder / "app.py").write_text(APP_TEMPLATE.format(model=model, argv=argv))
    requirement = requirement or f"hf-maskedav[demo]=={__version__}"
    (folder / "requirements.txt").write_text(f"{requirement}\n")
    title = title or f"{model.split('/')[-1]} demo"
    (folder / "README.md").write_text(README_TEMPLATE.format(title=title, model=model,
                                                             gradio_version=_gradio_version()))
    return folder


def space_url(space_id: str) -> str:
    return f"https://huggingface.co/spaces/{space_id}"


__all__ = ["export_space", "space_url"]
