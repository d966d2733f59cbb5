"""A browser demo of any hf_maskedav model: ``python -m hf_maskedav.app --model DIR_OR_HUB_ID``.

Needs the ``demo`` extra (``pip install -e ".[demo]"``, Gradio). Not imported by ``import hf_maskedav``; importing this
package imports neither Gradio nor a model (:mod:`.core` does the work, :mod:`.ui` is the page, :mod:`.space` writes a
Hugging Face Space folder).
"""

from .cli import main, parse_args

__all__ = ["main", "parse_args"]
