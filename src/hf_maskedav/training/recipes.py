"""Named sets of script defaults (``--recipe NAME``): one flag for a recipe measured on real data.

A recipe only changes the *defaults* of a script's options; anything given on the command line still wins. The
figures behind each recipe, and what was tried, are in docs/efficacy.md.
"""

from __future__ import annotations

import argparse
import itertools
import sys

RECIPES: dict[str, dict[str, dict]] = {
    # FSDD held-out speakers, 2 CPU cores (docs/efficacy.md): short speech-like clips, few recording set-ups, a few
    # thousand clips. Per-clip normalisation removes each recording's level/channel colour; the jitter makes a word
    # that is not always at the start, at the same pitch or tempo, still the same word. (Mixup was measured and left
    # out: +0.5 points from the pretrained encoder, -17.5 from scratch, in 5 minutes: docs/efficacy.md.)
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


def add_spectrogram_arguments(group) -> None:
    """The audio scripts' feature options the recipes set: spectrogram jitter, the fbank normalisation and floor."""
    group.add_argument(
        "--time_shift", action="store_true", help="place each clip at a random offset of the window (off: at its start)"
    )
    group.add_argument(
        "--mel_shift", type=float, default=0.0, help="random shift along the mel axis, up to this many bins (pitch)"
    )
    group.add_argument(
        "--time_stretch", type=float, default=0.0, help="random tempo change by a factor in [1/(1+x), 1+x]"
    )
    add_feature_normalization_argument(group)


def add_feature_normalization_argument(group) -> None:
    """``--feature_normalization`` and ``--top_db`` of the scripts that feed an Audio-MAE fbank (Audio-MAE, MAViL's
    audio track)."""
    group.add_argument(
        "--feature_normalization",
        default=None,
        choices=[None, "dataset", "per_clip"],
        help="fbank normalisation: the official fixed statistics ('dataset') or each clip's own ('per_clip'); "
        "default: the loaded feature extractor's, else 'dataset'",
    )
    group.add_argument(
        "--top_db",
        type=_decibels,
        default=None,
        help="floor the log-mel values this many dB below each clip's loudest (band-limited audio, e.g. 8-kHz "
        "recordings, leaves bands at the fbank's fixed floor otherwise); default: the loaded feature extractor's, "
        "else none",
    )


def _decibels(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of decibels, got {text}")
    return value


def apply_fbank_options(feature_extractor, feature_normalization: str | None = None, top_db: float | None = None):
    """Give an Audio-MAE feature extractor a ``--feature_normalization`` and a ``--top_db`` (each only when given: a
    loaded feature extractor keeps its own otherwise); the one place the scripts set them, checked as the feature
    extractor's constructor checks them. Returns it."""
    if feature_normalization is None and top_db is None:
        return feature_extractor  # nothing to set (any feature extractor, AV-MAE's included)
    feature_extractor.check_options(feature_normalization, top_db)
    if feature_normalization is not None:
        feature_extractor.normalization = feature_normalization
    if top_db is not None:
        feature_extractor.top_db = float(top_db)
    return feature_extractor


def warn_if_band_limited(feature_extractor, dataset, log, num_clips: int = 16) -> int:
    """Say so when the training audio is band-limited and no ``--top_db`` is set; returns the empty bins found.

    ``num_clips`` clips of the training ``dataset`` (audio items with a ``"waveform"``, or video items with
    ``"waveforms"``, whose first is used) are featurized by an Audio-MAE feature extractor: spread over a map-style
    dataset, the first ones of an iterable one (``pretrain_audio.py --streaming`` passes the stream unshuffled, so
    that only those clips are read); when the top mel bins are empty in most of them (8-kHz
    recordings at 16 kHz: docs/efficacy.md, "Band-limited audio"), each recording's level survives the
    normalisation as an offset, and ``--top_db 60`` removes it. Returns the number of empty top bins in the median
    clip (0: full-band audio, no clip, or a floor is already set and nothing was checked).
    """
    if not hasattr(feature_extractor, "empty_top_mel_bins") or feature_extractor.top_db is not None:
        return 0  # not an Audio-MAE fbank (AV-MAE's log-mel has no floor option), or the floor is set
    import torch  # this module stays importable without torch (argument parsing)

    if isinstance(dataset, torch.utils.data.IterableDataset):
        items = list(itertools.islice(iter(dataset), num_clips))
    else:
        count = min(num_clips, len(dataset))
        positions = sorted({round(i * (len(dataset) - 1) / max(count - 1, 1)) for i in range(count)})
        items = [dataset[i] for i in positions]
    if not items:
        return 0
    waveforms = [item["waveform"] if "waveform" in item else item["waveforms"][0] for item in items]
    empty = sorted(feature_extractor.empty_top_mel_bins(waveforms, sampling_rate=feature_extractor.sampling_rate))
    median = empty[len(empty) // 2]
    if median > 0:
        from ..audio import mel_centre_frequencies

        centres = mel_centre_frequencies(feature_extractor.num_mel_bins, feature_extractor.sampling_rate)
        top_hz = float(centres[feature_extractor.num_mel_bins - median])
        log(
            f"warning: band-limited audio: the top {median} of {feature_extractor.num_mel_bins} mel bins (from "
            f"{top_hz / 1000:.1f} kHz up) are empty in {sum(e > 0 for e in empty)} of {len(empty)} sampled training "
            f"clips (audio recorded at a lower rate?). Their fixed floor keeps each recording's level in the features "
            f"even after per-clip normalisation; --top_db 60 floors them under each clip's peak instead "
            f"(docs/efficacy.md, 'Band-limited audio')."
        )
    return median


__all__ = [
    "RECIPES",
    "add_feature_normalization_argument",
    "add_recipe_argument",
    "add_spectrogram_arguments",
    "apply_fbank_options",
    "warn_if_band_limited",
]
