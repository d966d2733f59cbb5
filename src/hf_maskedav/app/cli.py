"""The demo's command line: ``python -m hf_maskedav.app --model DIR_OR_HUB_ID [--host 127.0.0.1] [--port 7860]``
serves the demo page.

``--export_space DIR`` writes a Hugging Face Space folder for the model (app file, requirements, README with the Space
metadata) instead of serving; nothing is loaded or downloaded then.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hf_maskedav.app",
        description="A browser demo of an hf_maskedav model: classification (audio, video, audio-video), masked "
        "reconstruction (pretraining checkpoints) or audio<->video retrieval (MAViL / CAV-MAE encoders).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="a saved model folder or a Hub model id (the only download)")
    parser.add_argument("--mode", choices=["classification", "reconstruction", "retrieval"], default=None,
                        help="what to show (default: from the checkpoint's architecture)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on; 0.0.0.0 makes the page reachable from other machines")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--top_k", type=int, default=5, help="labels shown by a classifier")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--export_space", metavar="DIR", default=None,
                        help="write a Hugging Face Space folder for --model (a Hub id) into DIR and exit")
    parser.add_argument("--space_title", default=None, help="with --export_space: the Space's title")
    parser.add_argument("--requirement", default=None,
                        help="with --export_space: how the Space installs hf_maskedav (a pip requirement line; "
                        "default: hf-maskedav[demo] at this version)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.export_space:
        from .space import export_space

        folder = export_space(args.model, args.export_space, title=args.space_title, requirement=args.requirement,
                              mode=args.mode, top_k=args.top_k)
        print(f"Space folder written to {folder}")
        return 0
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls out of the machine at start-up
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('the demo needs Gradio: pip install -e ".[demo]" (or pip install "hf-maskedav[demo]")', file=sys.stderr)
        return 2
    from .core import Demo, DemoInputError
    from .ui import launch

    try:
        demo = Demo(args.model, mode=args.mode, top_k=args.top_k, device=args.device)
    except DemoInputError as error:
        print(f"cannot demo {args.model}: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:  # not a model folder, unknown Hub id, no network...
        print(f"cannot load {args.model}: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    print(demo.describe(), flush=True)
    launch(demo, host=args.host, port=args.port, block=True)
    return 0

