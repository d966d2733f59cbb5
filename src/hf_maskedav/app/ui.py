"""The Gradio page around :class:`hf_maskedav.app.core.Demo` (needs the ``demo`` extra: ``pip install -e ".[demo]"``).

Element ids the browser test (and anyone scripting the page) can rely on: ``media`` (the upload), ``run`` (the
button), ``status`` (messages: ``<div class="demo-error">`` for a problem with the input), ``scores`` (a table whose
rows carry ``data-label`` and ``data-score``, the pipeline's float as Python prints it), ``labels`` (the same as
bars), ``reconstruction`` (the pictures), ``mask_ratio``, ``seed``, ``gallery_files``, ``query``, ``direction``,
``ranking``.
"""

from __future__ import annotations

import html
import logging
import os

from .core import Demo, DemoInputError

logger = logging.getLogger(__name__)

CSS = """
.demo-error { color: #9b1c1c; background: #fde8e8; border: 1px solid #f8b4b4; border-radius: 6px; padding: 8px 12px; }
.demo-ok { color: #1e4620; }
#scores table { border-collapse: collapse; } #scores td, #scores th { padding: 2px 10px; text-align: left; }
"""


def error_html(message: str) -> str:
    return f'<div class="demo-error" role="alert"><b>Could not use this file.</b> {html.escape(message)}</div>'


def ok_html(message: str) -> str:
    return f'<div class="demo-ok">{html.escape(message)}</div>'


def _unexpected(error: Exception) -> str:
    """A one-line message for an error the demo did not foresee (the traceback goes to the server's log only)."""
    logger.exception("the demo failed on an input")
    return error_html(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'}")


def scores_html(results: list[dict], multi_label: bool) -> str:
    kind = "independent score (multi-label)" if multi_label else "probability"
    rows = "".join(
        f'<tr class="score-row" data-label="{html.escape(r["label"], quote=True)}" data-score="{r["score"]!r}">'
        f"<td>{html.escape(r['label'])}</td><td>{r['score']:.4f}</td></tr>"
        for r in results
    )
    return f"<table><thead><tr><th>label</th><th>{kind}</th></tr></thead><tbody>{rows}</tbody></table>"


def ranking_html(ranking: list[dict], query_name: str, direction: str) -> str:
    source, target = direction.split("->")
    rows = "".join(
        f'<tr class="rank-row" data-name="{html.escape(r["name"], quote=True)}" data-score="{r["score"]!r}">'
        f"<td>{n}</td><td>{html.escape(r['name'])}</td><td>{r['score']:.4f}</td></tr>"
        for n, r in enumerate(ranking, 1)
    )
    return (f"<p>The {source} of <b>{html.escape(query_name)}</b> against the {target} of every clip:</p>"
            f"<table><thead><tr><th>rank</th><th>clip</th><th>cosine</th></tr></thead><tbody>{rows}</tbody></table>")


def build_page(demo: Demo):
    """The ``gr.Blocks`` page for one loaded model."""
    import gradio as gr

    accepts = {"audio": "an audio file (wav, flac, mp3...)", "video": "a video file (mp4, webm...)",
               "audio-video": "a video with sound (mp4...)"}[demo.accepts]
    with gr.Blocks(title=f"hf_maskedav demo: {demo.family}") as page:
        gr.Markdown(f"## {demo.family} demo\n{demo.describe()}")
        if demo.mode == "classification":
            media = gr.File(label=f"Upload {accepts}", type="filepath", elem_id="media")
            record = None
            if demo.accepts == "audio":
                record = gr.Audio(sources=["microphone"], type="filepath", label="...or record", elem_id="record")
            run = gr.Button("Classify", variant="primary", elem_id="run")
            status = gr.HTML(elem_id="status")
            with gr.Row():
                labels = gr.Label(num_top_classes=demo.top_k, label="top labels", elem_id="labels")
                scores = gr.HTML(elem_id="scores")

            def classify(path, recorded=None):
                path = path or recorded
                try:
                    results = demo.classify(path)
                except DemoInputError as error:
                    return error_html(str(error)), None, ""
                except Exception as error:  # shown as one line in the page, never a stack trace
                    return _unexpected(error), None, ""
                confidences = {r["label"]: r["score"] for r in results}
                name = os.path.basename(path)
                return ok_html(f"{name}: done"), confidences, scores_html(results, demo.multi_label)

            inputs = [media, record] if record is not None else [media]
            run.click(classify, inputs=inputs, outputs=[status, labels, scores])
        elif demo.mode == "reconstruction":
            media = gr.File(label=f"Upload {accepts}", type="filepath", elem_id="media")
            with gr.Row():
                ratio = gr.Slider(0.05, 0.95, value=round(demo.default_mask_ratio, 2), step=0.05, label="mask ratio",
                                  elem_id="mask_ratio")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
            run = gr.Button("Mask and reconstruct", variant="primary", elem_id="run")
            status = gr.HTML(elem_id="status")
            pictures = gr.Gallery(label="input / masked input / reconstruction", columns=1, object_fit="contain",
                                  elem_id="reconstruction", height="auto")

            def reconstruct(path, mask_ratio, seed_value):
                try:
                    made = demo.reconstruct(path, mask_ratio=mask_ratio, seed=int(seed_value or 0))
                except DemoInputError as error:
                    return error_html(str(error)), None
                except Exception as error:  # shown as one line in the page, never a stack trace
                    return _unexpected(error), None
                message = "; ".join(p.caption for p in made)
                return ok_html(f"{os.path.basename(path)}: {message}"), [(p.path, p.caption) for p in made]

            run.click(reconstruct, inputs=[media, ratio, seed], outputs=[status, pictures])
        else:
            files = gr.File(label=f"Your clips, two or more: {accepts}", type="filepath", file_count="multiple",
                            elem_id="gallery_files")
            with gr.Row():
                query = gr.Number(value=1, precision=0, label="query clip (1 = first)", elem_id="query")
                direction = gr.Radio(["audio->video", "video->audio"], value="audio->video", label="direction",
                                     elem_id="direction")
            run = gr.Button("Rank", variant="primary", elem_id="run")
            status = gr.HTML(elem_id="status")
            ranking = gr.HTML(elem_id="ranking")

            def rank(paths, query_number, way):
                paths = list(paths or [])
                try:
                    index = int(query_number or 1) - 1
                    result = demo.retrieve(paths, index, way)
                except DemoInputError as error:
                    return error_html(str(error)), ""
                except Exception as error:  # shown as one line in the page, never a stack trace
                    return _unexpected(error), ""
                return ok_html(f"{len(paths)} clips ranked"), ranking_html(result, os.path.basename(paths[index]), way)

            run.click(rank, inputs=[files, query, direction], outputs=[status, ranking])
    return page


def launch(demo: Demo, host: str = "127.0.0.1", port: int | None = None, block: bool = True):
    """Serve the page; returns the Gradio app (``block=False``: the server runs in a thread, for tests)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls out of the machine at start-up
    page = build_page(demo)
    page.queue(default_concurrency_limit=1)
    import gradio as gr

    # the machine's own fonts: the page asks no font server for anything
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, ssr_mode=False, share=False,
                quiet=not block, css=CSS, theme=theme, footer_links=[])
    return page


__all__ = ["build_page", "error_html", "launch", "ranking_html", "scores_html"]
