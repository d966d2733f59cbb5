"""Does pretraining pay off? One command for the whole measurement, on any labelled audio / video / audio-video data.

It runs the example scripts as a user would (each as its own process, so every figure is what that script gives):

1. pretraining on the training split **without its labels**, under a wall-clock budget (``--pretrain_minutes``) or
   for a fixed number of steps (``--pretrain_steps``: a result that compares between machines);
2. linear probes of the frozen encoder: pretrained, and the same architecture at random init (``--seeds``);
   ``--probe_readout attentive`` probes the tokens with a learned query instead of their mean;
3. fine-tuning from the pretrained weights and from scratch (same architecture, same budget ``--finetune_minutes``
   or ``--finetune_steps``, same options), scored on the test split; ``--finetune_seeds 1 2 3`` fine-tunes both once
   per seed and adds a row comparing their means (one run per side is noisy: see docs/efficacy.md);
4. a hand-made baseline through the same linear probe: pooled log-mel statistics for audio
   (``hf_maskedav.training.probe.pooled_logmel_features``), pooled colour-layout and motion statistics for video
   (``pooled_pixel_features``);
5. for audio-visual models: audio<->video retrieval R@1/5/10 (pretrained and random init) and probes of the fused,
   video-only and audio-only features.

It prints one Markdown table (and writes ``results.md`` / ``results.json`` into ``--output_dir``) with the command of
every row. Examples:

    # FSDD, speakers never heard in training (the audio yardstick; ~25 min on 2 CPU cores)
    python -m benchmarks.efficacy --modality audio --data_dir ../shared/datasets/fsdd \\
        --train_split speaker=george,jackson,lucas,yweweler --test_split speaker=nicolas,theo

    # the built-in cluttered-object video demo, VideoMAE
    python -m benchmarks.efficacy --modality video --model videomae --demo_variant objects

    # MAViL on the same demo (audio + video)
    python -m benchmarks.efficacy --modality audio_visual --demo_variant objects

``--launch_args "--multi_gpu --num_processes 8"`` runs the pretraining and fine-tuning scripts through
``accelerate launch`` (every GPU of the machine, or CPU processes with ``ACCELERATE_USE_CPU=true``).

Splits take the scripts' syntax: a split name, a ``datasets`` slice, or a row filter ``COLUMN=VALUE[,VALUE...]``.
Options a user would give the scripts go through ``--pretrain_args`` / ``--finetune_args`` / ``--probe_args``
(quoted strings, e.g. ``--pretrain_args "--config_overrides mask_ratio=0.8"``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPTS = {
    "audio": dict(pretrain="pretrain_audio.py", probe="linear_probe.py", finetune="finetune_audio.py"),
    "video": dict(pretrain="pretrain_video.py", probe="linear_probe_video.py", finetune="finetune_video.py"),
    "audio_visual": dict(
        pretrain="pretrain_audiovisual.py", probe="linear_probe_video.py", finetune="finetune_audiovisual.py"
    ),
}
# where a fine-tuning script takes the pretraining run's preprocessing folder (for the from-scratch run)
PROCESSOR_OPTION = {"audio": "--feature_extractor_name", "video": "--processor_name", "audio_visual": "--processor_name"}
HANDMADE = {
    "audio": ("hf_maskedav.training.probe:pooled_logmel_features", "pooled log-mel statistics (mean, std per bin)"),
    "video": ("hf_maskedav.training.probe:pooled_pixel_features", "pooled colour layout + motion energy (4x4 cells)"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--modality", required=True, choices=sorted(SCRIPTS))
    parser.add_argument("--model", default="videomae", help="video only: pretrain_video.py --model (videomae, mae_st...)")
    parser.add_argument("--dataset_name", default=None, help="Hub id or dataset folder (default: the built-in demo)")
    parser.add_argument("--data_dir", default=None, help="a local audiofolder / videofolder with metadata.csv")
    parser.add_argument("--demo_variant", default=None, help="video/AV built-in demo variant (motion, objects)")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--pretrain_minutes", type=float, default=None,
                        help="wall-clock budget of the pretraining loop (default 15, none with --pretrain_steps)")
    parser.add_argument("--finetune_minutes", type=float, default=None,
                        help="wall-clock budget of each fine-tuning run (default 5, none with --finetune_steps)")
    parser.add_argument("--pretrain_steps", type=int, default=None,
                        help="a fixed number of pretraining steps (--max_train_steps) instead of the clock: a result "
                        "that compares between machines (the same 15 minutes gave 8,673 to 22,821 steps here)")
    parser.add_argument("--finetune_steps", type=int, default=None,
                        help="a fixed number of steps for each fine-tuning run instead of the clock")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="random-init seeds of the probes")
    parser.add_argument("--finetune_seeds", type=int, nargs="+", default=None,
                        help="fine-tune both starts once per seed (pretrained and scratch alternating, so that a change "
                             "in the machine's speed hits both) and compare their means; default: one run each with the "
                             "scripts' seed. One run per side is noisy: on FSDD's held-out speakers the same two "
                             "starts moved 4.9 to 19.4 points apart between seeds (docs/efficacy.md)")
    parser.add_argument("--pretrain_args", default="", help="extra options for the pretraining script")
    parser.add_argument("--finetune_args", default="", help="extra options for both fine-tuning runs")
    parser.add_argument("--probe_args", default="", help="extra options for every probe / retrieval run")
    parser.add_argument("--probe_readout", default="mean", choices=["mean", "attentive"],
                        help="how the probes of the pretrained and random-init encoders read them: 'mean' (a linear "
                             "probe on the mean of the final tokens) or 'attentive' (a learned query over the tokens, "
                             "then a linear layer; the scripts' --readout); the hand-made baselines stay linear")
    parser.add_argument("--probe_standardize", default="train", choices=["train", "each_split"],
                        help="every linear probe's --standardize: the training split's statistics, or each split its "
                        "own (the test split adapted from its unlabelled features, as AdaBN; a test set from another "
                        "domain, e.g. new speakers)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["finetune", "scratch", "random", "handmade"],
                        help="leave these rows out (for quick looks; the full protocol runs them all)")
    parser.add_argument("--launch_args", default=None,
                        help="run the pretraining and fine-tuning scripts with `accelerate launch LAUNCH_ARGS` (e.g. "
                        "\"--multi_gpu --num_processes 8\"; on CPU with ACCELERATE_USE_CPU=true set); default: one "
                        "plain python process. --per_device_train_batch_size is per process: divide it to keep the "
                        "recipe's batch. Probes and retrieval stay one process")
    parser.add_argument("--output_dir", default="outputs/efficacy")
    parser.add_argument("--overwrite_output_dir", action="store_true")
    args = parser.parse_args(argv)
    if args.data_dir and args.dataset_name:
        parser.error("give --data_dir or --dataset_name, not both")
    if args.demo_variant and args.modality == "audio":
        parser.error("--demo_variant is for the video and audio-visual demo")
    if args.probe_standardize != "train" and args.probe_readout != "mean":
        parser.error("--probe_standardize each_split is for the linear read-out (--probe_readout mean)")
    for stage, default in (("pretrain", 15.0), ("finetune", 5.0)):
        steps = getattr(args, f"{stage}_steps")
        if steps is not None and steps < 1:
            parser.error(f"--{stage}_steps must be at least 1")
        if getattr(args, f"{stage}_minutes") is None and steps is None:
            setattr(args, f"{stage}_minutes", default)
    return args


def budget_options(minutes: float | None, steps: int | None) -> list[str]:
    """A run's length: ``--max_train_steps`` (its schedule spans them) and/or the ``--max_train_minutes`` cap (the
    schedule then follows the clock); ``--num_train_epochs`` only lifts the scripts' own default length."""
    options = ["--num_train_epochs", "100000"]
    if steps is not None:
        options += ["--max_train_steps", str(steps)]
    if minutes is not None:
        options += ["--max_train_minutes", str(minutes)]
    return options


def budget_text(minutes: float | None, steps: int | None) -> str:
    parts = ([f"{steps:,} steps"] if steps is not None else []) + ([f"{minutes:g} min"] if minutes is not None else [])
    return " within ".join(parts)


class Runner:
    """Runs example scripts one after the other, keeping each command, its wall time and its log."""

    def __init__(self, output_dir: str, launch_args: str | None = None):
        self.output_dir = output_dir
        self.launch_args = shlex.split(launch_args) if launch_args is not None else None
        self.commands: list[tuple[str, str, float]] = []

    def command(self, script: str, options: list[str], launched: bool = False) -> tuple[list[str], str]:
        """The command line of one run and how the table shows it: ``python examples/SCRIPT ...``, or, for a training
        run (``launched``) when the protocol has ``--launch_args``, ``accelerate launch ARGS examples/SCRIPT ...``."""
        launcher, shown = [sys.executable], ["python"]
        if launched and self.launch_args is not None:
            launcher = [sys.executable, "-m", "accelerate.commands.launch", *self.launch_args]
            shown = ["accelerate", "launch", *self.launch_args]
        command = [*launcher, os.path.join(ROOT, "examples", script), *options]
        return command, " ".join(shlex.quote(c) for c in [*shown, f"examples/{script}", *options])

    def __call__(self, name: str, script: str, options: list[str], launched: bool = False) -> float:
        command, shown = self.command(script, options, launched)
        log_file = os.path.join(self.output_dir, f"{name}.log")
        print(f"[efficacy] {name}: {shown}", flush=True)
        start = time.time()
        with open(log_file, "w") as handle:
            result = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        seconds = time.time() - start
        self.commands.append((name, shown, seconds))
        if result.returncode != 0:
            with open(log_file) as handle:
                tail = handle.read()[-3000:]
            raise SystemExit(f"[efficacy] {name} failed (exit {result.returncode}); the end of {log_file}:\n{tail}")
        print(f"[efficacy]   done in {seconds / 60:.1f} min", flush=True)
        return seconds


def finetune_starts(modality: str, pretrained: str) -> list[tuple[str, list[str]]]:
    """The two fine-tuning runs' starting points: the pretrained weights, and the same architecture and preprocessing
    at random init (the pretraining run's config and processor folder, under each script's own option names)."""
    return [("finetune_pretrained", ["--model_name_or_path", pretrained]),
            ("finetune_scratch", ["--config_name", pretrained, PROCESSOR_OPTION[modality], pretrained])]


def finetune_runs(
    modality: str, pretrained: str, seeds: list[int] | None
) -> list[tuple[str, str, int | None, list[str]]]:
    """``(run name, start, seed, options)`` of every fine-tuning run, seed by seed, the two starts alternating.
    Without seeds: one run per start with the script's own seed (seed None; names ``finetune_pretrained`` /
    ``finetune_scratch``); with several, the names end in ``_seed<S>``."""
    if not seeds:
        return [(name, name, None, options) for name, options in finetune_starts(modality, pretrained)]
    suffix = len(seeds) > 1
    return [(f"{name}_seed{seed}" if suffix else name, name, seed, options + ["--seed", str(seed)])
            for seed in seeds for name, options in finetune_starts(modality, pretrained)]


def compare_seeds(pretrained: list, scratch: list) -> dict | None:
    """Both starts' mean test score over their seeds and the gaps in points (mean, and seed by seed); None unless both
    have the same number (> 1) of scores."""
    if len(pretrained) < 2 or len(pretrained) != len(scratch) or None in pretrained + scratch:
        return None
    mean_pretrained, mean_scratch = sum(pretrained) / len(pretrained), sum(scratch) / len(scratch)
    return {"pretrained": mean_pretrained, "scratch": mean_scratch, "gap": 100 * (mean_pretrained - mean_scratch),
            "gaps": [100 * (a - b) for a, b in zip(pretrained, scratch)]}


def finetune_score(modality: str, summary: dict) -> tuple[float | None, dict[str, float]]:
    """The test score of a fine-tuning run from its ``train_summary.json``, and the score of each classifier head.

    Audio and video scripts report ``test_accuracy``. ``finetune_audiovisual.py`` evaluates every head on the eval split
    (the protocol gives it the test split) and logs ``eval_history`` as ``[step, {head: score}]``; the score is the final
    evaluation's first head in the script's order (audio+visual, audio, video), the one it keeps its best model by."""
    if modality != "audio_visual":
        score = summary.get("test_accuracy")
        return score, {}
    history = summary.get("eval_history") or []
    if not history:
        return None, {}
    heads = history[-1][1]
    main = next(head for head in ("audio_visual", "audio", "video") if head in heads)
    return heads[main], dict(heads)


def read_json(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def main(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.output_dir)
    if os.path.isdir(out) and os.listdir(out) and not args.overwrite_output_dir:
        raise SystemExit(f"{out} is not empty: pass --overwrite_output_dir or another --output_dir")
    os.makedirs(out, exist_ok=True)
    run = Runner(out, args.launch_args)
    scripts = SCRIPTS[args.modality]
    audio_only = args.modality == "audio"

    data = []
    if args.dataset_name:
        data += ["--dataset_name", args.dataset_name]
    if args.data_dir:
        data += ["--data_dir", args.data_dir]
    if args.demo_variant:
        data += ["--demo_variant", args.demo_variant]
    labelled = data + ["--label_column", args.label_column]
    splits = ["--train_split", args.train_split]
    extra = {key: shlex.split(getattr(args, f"{key}_args")) for key in ("pretrain", "finetune", "probe")}
    rows: list[dict] = []  # {what, result, run}

    # 1. pretraining, labels unused
    pretrained = os.path.join(out, "pretrain")
    options = data + splits + ["--eval_split", "none", "--output_dir", pretrained, "--overwrite_output_dir",
                               *budget_options(args.pretrain_minutes, args.pretrain_steps)]
    if args.modality == "video":
        options = ["--model", args.model] + options
    run("pretrain", scripts["pretrain"], options + extra["pretrain"], launched=True)
    summary = read_json(os.path.join(pretrained, "train_summary.json"))
    rows.append(dict(what=f"pretraining ({summary['completed_steps']} steps, labels unused)",
                     result=f"loss {summary.get('first_loss', float('nan')):.3f} -> "
                            f"{summary.get('final_loss_mean_last_10', float('nan')):.3f}",
                     run="pretrain"))

    # 2. linear probes, pretrained vs random init; hand-made baseline through the same probe
    probe_common = (labelled + splits + ["--eval_split", args.test_split, "--standardize", args.probe_standardize]
                    + extra["probe"])
    modalities = ["audio_visual", "video", "audio"] if args.modality == "audio_visual" else [None]

    def probe(name: str, options: list[str], modality: str | None) -> float:
        folder = os.path.join(out, name)
        mod = ["--modality", modality] if modality else []
        run(name, scripts["probe"], probe_common + mod + options + ["--output_dir", folder])
        return read_json(os.path.join(folder, "probe_results.json"))["eval_accuracy"]

    probe_scores: dict[str, dict] = {}
    readout = ["--readout", args.probe_readout]
    kind = "attentive probe" if args.probe_readout == "attentive" else "linear probe"
    adapted = ", each split standardised by its own statistics" if args.probe_standardize == "each_split" else ""
    for modality in modalities:
        tag = f" ({modality.replace('_', '+')})" if modality else ""
        key = modality or "encoder"
        score = probe(f"probe_pretrained{'_' + modality if modality else ''}",
                      ["--model_name_or_path", pretrained] + readout, modality)
        rows.append(dict(what=f"{kind}{adapted}, pretrained{tag}", result=f"**{score:.1%}**",
                         run=run.commands[-1][0]))
        random_scores = []
        if "random" not in args.skip:
            for seed in args.seeds:
                name = f"probe_random_seed{seed}{'_' + modality if modality else ''}"
                random_scores.append(probe(name, ["--model_name_or_path", pretrained, "--random_init",
                                                  "--seed", str(seed)] + readout, modality))
                rows.append(dict(what=f"{kind}{adapted}, random init seed {seed}{tag}",
                                 result=f"{random_scores[-1]:.1%}", run=name))
        probe_scores[key] = {"pretrained": score, "random": random_scores}
    if "handmade" not in args.skip:
        kinds = ["audio"] if audio_only else (["video", "audio"] if args.modality == "audio_visual" else ["video"])
        for kind in kinds:
            fn, description = HANDMADE[kind]
            modality = kind if args.modality == "audio_visual" else None
            name = f"handmade_{kind}"
            score = probe(name, ["--model_name_or_path", pretrained, "--random_init", "--feature_fn", fn], modality)
            rows.append(dict(what=f"hand-made baseline{adapted}: {description}", result=f"{score:.1%}", run=name))
            probe_scores[f"handmade_{kind}"] = {"score": score}

    # 3. retrieval (audio-visual)
    retrieval = {}
    if args.modality == "audio_visual":
        for name, options in [("retrieval_pretrained", ["--model_name_or_path", pretrained]),
                              ("retrieval_random_seed0", ["--model_name_or_path", pretrained, "--random_init"])]:
            folder = os.path.join(out, name)
            run(name, "retrieval_eval.py",
                data + ["--eval_split", args.test_split] + options + extra["probe"] + ["--output_dir", folder])
            result = read_json(os.path.join(folder, "retrieval_results.json"))
            retrieval[name] = result
            rows.append(dict(
                what=f"audio->video retrieval R@1/5/10, {'pretrained' if 'pretrained' in name else 'random init'}",
                result=" / ".join(f"{result[f'audio_to_video_R@{k}']:.1%}" for k in (1, 5, 10))
                + f" (chance {result['chance_R@1']:.1%} / {result['chance_R@5']:.1%} / {result['chance_R@10']:.1%})",
                run=name))

    # 4. fine-tuning, pretrained vs scratch, same budget and options
    finetune_scores, by_start = {}, {"finetune_pretrained": [], "finetune_scratch": []}
    for name, kind, seed, start in finetune_runs(args.modality, pretrained, args.finetune_seeds):
        if "finetune" in args.skip or (kind == "finetune_scratch" and "scratch" in args.skip):
            continue
        folder = os.path.join(out, name)
        options = labelled + splits + start + ["--output_dir", folder, "--overwrite_output_dir",
                                               *budget_options(args.finetune_minutes, args.finetune_steps)]
        if args.modality == "audio_visual":
            # no separate test pass in this script: evaluate on the test split, report the final model's score
            options += ["--eval_split", args.test_split]
        else:
            options += ["--eval_split", "none", "--test_split", args.test_split]
        run(name, scripts["finetune"], options + extra["finetune"], launched=True)
        summary = read_json(os.path.join(folder, "train_summary.json"))
        score, heads = finetune_score(args.modality, summary)
        finetune_scores[name] = score
        by_start[kind].append(score)
        pretrained_start = kind == "finetune_pretrained"
        result = "n/a" if score is None else (f"**{score:.1%}**" if pretrained_start else f"{score:.1%}")
        if len(heads) > 1:
            result += " (" + ", ".join(f"{head.replace('_', '+')} head {value:.1%}" for head, value in heads.items()) + ")"
        seeded = "" if seed is None else f", seed {seed}"
        rows.append(dict(what=f"fine-tuning from {'pretraining' if pretrained_start else 'scratch'}{seeded} "
                              f"({summary['completed_steps']} steps)", result=result, run=name))
    comparison = compare_seeds(by_start["finetune_pretrained"], by_start["finetune_scratch"])
    if comparison is not None:
        gaps = ", ".join(f"{gap:+.1f}" for gap in comparison["gaps"])
        rows.append(dict(what=f"fine-tuning, mean of {len(comparison['gaps'])} seeds: pretraining vs scratch",
                         result=f"**{comparison['pretrained']:.1%}** vs {comparison['scratch']:.1%} "
                                f"({comparison['gap']:+.1f} points; per seed {gaps})", run=None))
        finetune_scores["seed_means"] = comparison

    # ---- the table ------------------------------------------------------------------------------------------------
    minutes = {name: seconds / 60 for name, _, seconds in run.commands}
    shown = {name: command for name, command, _ in run.commands}
    header = (f"Efficacy protocol: {args.modality}"
              f"{' / ' + args.model if args.modality == 'video' else ''}, data "
              f"{args.data_dir or args.dataset_name or 'built-in demo' + (' (' + args.demo_variant + ')' if args.demo_variant else '')}, "
              f"train `{args.train_split}`, test `{args.test_split}`; budgets: pretraining "
              f"{budget_text(args.pretrain_minutes, args.pretrain_steps)}, fine-tuning "
              f"{budget_text(args.finetune_minutes, args.finetune_steps)}")
    lines = [header, "", "| measurement | test result | wall time | command |", "|---|---|---|---|"]
    for row in rows:
        if row["run"] is None:  # a row computed from the runs above
            lines.append(f"| {row['what']} | {row['result']} | | |")
            continue
        lines.append(f"| {row['what']} | {row['result']} | {minutes[row['run']]:.1f} min | `{shown[row['run']]}` |")
    table = "\n".join(lines)
    print("\n" + table)
    with open(os.path.join(out, "results.md"), "w") as handle:
        handle.write(table + "\n")
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump({"args": vars(args), "probes": probe_scores, "finetune": finetune_scores, "retrieval": retrieval,
                   "rows": rows, "commands": [{"name": n, "command": c, "seconds": round(s, 1)}
                                              for n, c, s in run.commands]}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
