"""Named sets of script defaults (``--recipe NAME``): one flag for a recipe measured on real data.

A recipe only changes the *defaults* of a script's options; anything given on the command line still wins. The
figures behind each recipe, and what was tried, are in docs/efficacy.md.
"""

from __future__ import annotations

import argparse
import sys

RECIPES: dict[str, dict[str, dict]] = {
    # FSDD held-out speakers, 2 CPU cores (docs/efficacy.md): short speech-like clips, few recording set-ups, a few
    # thousand clips. Per-clip normalisation removes each recording's level/channel colour; the jitter makes a word
    # that is not always at the start, at the same pitch or tempo, still the same word.
    "small-data": {
        "pretrain_audio": dict(
            feature_normalization="per_clip", mask_ratio=0.75, learning_rate=1e-3, time_shift=True
        ),
        "finetune_audio": dict(
            feature_normalization="per_clip", learning_rate=1e-3, drop_path_rate=0.1, time_shift=True,
            mel_shift=4.0, time_stretch=0.25, freq_mask=8, time_mask=16,
        ),
    },
}


def add_recipe_argument(parser: argparse.ArgumentParser, script: str, argv=None) -> None:
    """Add ``--recipe`` and, when one is named in ``argv``, make its values the parser's defaults."""
    names = sorted(name for name, scripts in RECIPES.items() if script in scripts)
    parser.add_argument(
        "--recipe", default=None, choices=[None, *names],
        help="a named set of defaults measured on real data (docs/efficacy.md); explicit options still win",
    )
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe", default=None)
    known, _ = pre.parse_known_args(argv if argv is not None else sys.argv[1:])
    if known.recipe is None:
        return
    if known.recipe not in names:
        parser.error(f"--recipe {known.recipe!r} is not one of {names}")
    values = RECIPES[known.recipe][script]
    unknown = sorted(set(values) - {action.dest for action in parser._actions})
    if unknown:
        raise ValueError(f"recipe {known.recipe!r} sets options {script} does not have: {unknown}")
    parser.set_defaults(**values)


__all__ = ["RECIPES", "add_recipe_argument"]
