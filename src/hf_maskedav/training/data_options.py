"""Command-line data options of the example scripts (audio; video and audio-visual), and opening a video split from
them. What the scripts of one modality share is written once here; a script adds its own options to the group."""

from __future__ import annotations

import argparse
import contextlib

SPLIT_MISSING_ERRORS = (ValueError, KeyError, FileNotFoundError)


def add_audio_data_arguments(parser: argparse.ArgumentParser, labels: bool = False,
                              eval_help: str = "'none' to skip evaluation"):
    """The ``data`` argument group of the audio scripts: where the clips are and how they are read. ``labels``:
    the label options (fine-tuning); otherwise plain audio files and streaming (pretraining)."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default="demo", help="Hub dataset id, local dataset folder, or 'demo' (built-in)")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--data_dir", default=None,
                      help="local audiofolder (audio files + metadata.csv" + (" with labels)" if labels else ", optional)"))
    if not labels:
        data.add_argument("--audio_files", nargs="+", default=None, help="plain audio files, folders or glob patterns")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="validation", help=eval_help)
    data.add_argument("--audio_column", default="audio")
    if labels:
        data.add_argument("--label_column", default="label")
        data.add_argument("--label_names", nargs="+", default=None, help="class names (needed when they cannot be inferred)")
        data.add_argument("--multi_label", action="store_true",
                          help="treat labels as multi-label (automatic for list-valued label columns and --demo_multi_label)")
        data.add_argument("--demo_multi_label", action="store_true", help="the built-in dataset's multi-label variant")
    else:
        data.add_argument("--streaming", action="store_true", help="stream the dataset (needs --max_train_steps)")
        data.add_argument("--shuffle_buffer_size", type=int, default=1000)
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    add_decoded_cache_argument(data, "decoded clips and their fbank features (of the clips that are the same every epoch)")
    data.add_argument("--features_on_device", action="store_true",
                      help="compute fbank features in the training loop on the accelerator instead of in the data workers")
    data.add_argument("--max_bad_fraction", type=float, default=0.5, help="stop when more samples than this fraction fail")
    data.add_argument("--demo_num_clips", type=int, default=None, help="size of the built-in dataset's train split")
    return data


def add_decoded_cache_argument(group, what: str) -> None:
    """``--decoded_cache_mb``: the in-memory cache of decoded samples (:class:`hf_maskedav.data.DecodedCache`)."""
    group.add_argument(
        "--decoded_cache_mb", type=float, default=1024,
        help=f"keep up to this many MiB of {what} in memory per split and process, so a small dataset is decoded "
             "once instead of once per epoch (with --dataloader_num_workers > 0 each epoch's workers start empty); 0 "
             "turns it off",
    )


def add_video_data_arguments(parser: argparse.ArgumentParser, labels: bool = False, eval_split: str = "validation"):
    """The ``data`` argument group: where the videos are and how they are read."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default="demo",
                      help="Hub dataset id, local dataset folder (videos + metadata.csv), or 'demo' (built-in)")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--data_dir", default=None, help="local videofolder (videos + metadata.csv or class sub-folders)")
    data.add_argument("--train_csv", default=None,
                      help="CSV list of training videos ('path label' per line as the Kinetics lists, or a CSV with a header)")
    data.add_argument("--eval_csv", default=None, help="CSV list of evaluation videos")
    data.add_argument("--data_root", default=None, help="folder the CSV paths are relative to (default: the CSV's folder)")
    if not labels:
        data.add_argument("--video_files", nargs="+", default=None, help="plain video files, folders or glob patterns")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default=eval_split, help="'none' to skip evaluation")
    data.add_argument("--video_column", default="video")
    if labels:
        data.add_argument("--label_column", default="label")
        data.add_argument("--label_names", nargs="+", default=None, help="class names (when they cannot be inferred)")
        data.add_argument("--multi_label", action="store_true",
                          help="read labels as multi-label (automatic for list-valued columns and --demo_multi_label)")
        data.add_argument("--demo_multi_label", action="store_true", help="the built-in dataset's multi-label variant")
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    data.add_argument("--decoding_backend", default=None, choices=[None, "torchcodec", "pyav"],
                      help="video decoder (default: torchcodec when usable, PyAV otherwise)")
    data.add_argument("--max_bad_fraction", type=float, default=0.5, help="stop when more videos than this fraction fail")
    data.add_argument("--demo_num_clips", type=int, default=None, help="size of the built-in dataset's train split")
    data.add_argument("--demo_eval_num_clips", type=int, default=None,
                      help="size of the built-in dataset's evaluation split (default: all of it)")
    data.add_argument("--demo_cache_dir", default=None, help="where the built-in dataset's .mp4 files are written")
    data.add_argument("--demo_variant", default="motion", choices=["motion", "objects"],
                      help="built-in dataset: 'motion' (a texture whose shared motion is the class) or 'objects' (a "
                           "small object on a cluttered, moving background, whose identity is the class)")
    return data


def open_video_split(args, split: str, accelerator=None, label_column: str | None = None, audio_column: str | None = None,
                     train: bool = True):
    """Open ``split`` as the command line describes (main process first, so the demo files are written once)."""
    from ..data.video import load_video_source

    csv_file = args.train_csv if train else args.eval_csv
    name = args.dataset_name
    if name == "demo" and (args.data_dir or csv_file or getattr(args, "video_files", None)):
        name = None
    if not train and getattr(args, "video_files", None):
        raise ValueError("plain video files have no evaluation split")
    if not train and args.train_csv and not args.eval_csv:
        raise ValueError("no --eval_csv given")
    guard = accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()
    with guard:
        return load_video_source(
            name, args.dataset_config_name, args.data_dir if csv_file is None else None, csv_file,
            getattr(args, "video_files", None) if train else None, args.data_root, split, args.video_column,
            label_column, getattr(args, "label_names", None), True if getattr(args, "multi_label", False) else None,
            audio_column, demo_multi_label=getattr(args, "demo_multi_label", False),
            demo_num_clips=args.demo_num_clips if train else args.demo_eval_num_clips, demo_cache_dir=args.demo_cache_dir,
            demo_options={"variant": getattr(args, "demo_variant", "motion")},
        )


__all__ = [
    "SPLIT_MISSING_ERRORS", "add_audio_data_arguments", "add_decoded_cache_argument", "add_video_data_arguments",
    "open_video_split",
]
