"""The command-line options every training script shares, written once: the ``training`` group (output folder,
batch sizes, optimizer and schedule, steps and epochs, checkpoints and resume, tracking, the Hub), the attention and
memory options of the ``model`` group, their checks after parsing, and the Accelerator every script starts from.

What differs between scripts is a default (the learning rate, the epochs, ``adam_beta2``...) or an extra option;
both are arguments here, and a script adds its own options to the groups these functions return.
"""

from __future__ import annotations

import argparse
import os


def add_model_runtime_arguments(group, gradient_checkpointing: bool = True) -> None:
    """``--attn_implementation`` and (unless told not to) ``--gradient_checkpointing``."""
    group.add_argument("--attn_implementation", default=None, choices=[None, "eager", "sdpa", "flash_attention_2"])
    if gradient_checkpointing:
        group.add_argument("--gradient_checkpointing", action="store_true")


def add_training_arguments(
    parser: argparse.ArgumentParser,
    *,
    output_dir: str | None,
    learning_rate: float | None,
    num_train_epochs: int | None,
    train_batch_size: int,
    eval_batch_size: int,
    finetune: bool,
    help: dict[str, str] | None = None,
):
    """Add the ``training`` argument group and return it.

    Args:
        output_dir, learning_rate, num_train_epochs, train_batch_size, eval_batch_size: the script's defaults.
        finetune: fine-tuning options (``--layer_decay``, ``--eval_every_steps``; ``adam_beta2`` 0.999) rather than
            pretraining ones (``--min_learning_rate``, ``--logging_steps``; ``adam_beta2`` 0.95, the MAE recipes').
        help: per-option help texts that say something about this script (``{"learning_rate": "..."}``).
    """
    from .budget import add_time_budget_argument
    from .threads import add_num_threads_argument

    texts = {
        "output_dir": None,
        "per_device_train_batch_size": None,
        "learning_rate": "peak learning rate (after warm-up)",
        "max_grad_norm": "clip gradients to this norm",
        "num_train_epochs": None,
        **(help or {}),
    }
    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default=output_dir, help=texts["output_dir"])
    train.add_argument("--overwrite_output_dir", action="store_true")
    train.add_argument("--per_device_train_batch_size", type=int, default=train_batch_size,
                       help=texts["per_device_train_batch_size"])
    train.add_argument("--per_device_eval_batch_size", type=int, default=eval_batch_size)
    train.add_argument("--learning_rate", type=float, default=learning_rate, help=texts["learning_rate"])
    if finetune:
        train.add_argument("--layer_decay", type=float, default=0.75, help="layer-wise lr decay (1 disables)")
    else:
        train.add_argument("--min_learning_rate", type=float, default=0.0)
    train.add_argument("--weight_decay", type=float, default=0.05)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.999 if finetune else 0.95)
    train.add_argument("--max_grad_norm", type=float, default=None, help=texts["max_grad_norm"])
    train.add_argument(
        "--max_nonfinite_in_a_row", type=int, default=5,
        help="a NaN/Inf loss skips its optimizer update (counted, logged); stop after this many such updates in a row",
    )
    train.add_argument("--num_train_epochs", type=int, default=num_train_epochs, help=texts["num_train_epochs"])
    train.add_argument("--max_train_steps", type=int, default=None, help="optimizer steps; overrides --num_train_epochs")
    add_time_budget_argument(train)
    add_num_threads_argument(train)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--num_warmup_steps", type=int, default=None, help="defaults to --warmup_ratio of the steps")
    train.add_argument("--warmup_ratio", type=float, default=0.1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument(
        "--torch_compile", action="store_true",
        help="compile the model with torch.compile (inductor) through Accelerate, as `accelerate launch "
             "--dynamo_backend inductor` does: faster steps after a compilation of up to a minute at the start "
             "(random masks then come from inductor's generator, another stream than eager mode's)",
    )
    if finetune:
        train.add_argument("--eval_every_steps", type=int, default=None,
                           help="evaluate every N steps (default: every epoch)")
    train.add_argument("--checkpointing_steps", default=None, help="an integer (every N optimizer steps) or 'epoch'")
    train.add_argument("--checkpoints_total_limit", type=int, default=2, help="keep only the newest N checkpoints")
    train.add_argument(
        "--resume_from_checkpoint", nargs="?", const="latest", default=None,
        help="a checkpoint folder, or no value / 'latest' for the newest one in --output_dir",
    )
    if not finetune:
        train.add_argument("--logging_steps", type=int, default=10, help="update the progress bar text every N steps")
    train.add_argument("--with_tracking", action="store_true", help="log to --report_to (TensorBoard)")
    train.add_argument("--report_to", default="tensorboard", help="accelerate tracker(s): tensorboard, wandb, all...")
    train.add_argument("--push_to_hub", action="store_true")
    train.add_argument("--hub_model_id", default=None, help="repo id to push to (defaults to the output folder's name)")
    train.add_argument("--hub_token", default=None)
    return train


def check_training_arguments(parser: argparse.ArgumentParser, args) -> None:
    """After parsing: ``--checkpointing_steps`` becomes an int (or stays ``"epoch"``/None); errors name the option."""
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            parser.error(f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}")
        args.checkpointing_steps = int(args.checkpointing_steps)
    if args.gradient_accumulation_steps < 1:
        parser.error("--gradient_accumulation_steps must be at least 1")


def make_accelerator(args, kwargs_handlers=None):
    """The Accelerator of a training script, set up as every script needs it: gradient accumulation, the tracker,
    a logging folder, and the seedable sampler (the order of epoch e is the same in every run, which makes resuming
    exact). Then: a world-size check (several launched processes that each see one stop, saying why), the CPU thread
    count (on CPU, use the machine), a fresh run's folder cleared of another run's checkpoints and step log (reached
    only with ``--overwrite_output_dir`` or a new folder: :func:`~hf_maskedav.training.check_output_dir` ran first),
    and the world it runs in, logged."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

    from .checkpointing import clear_previous_run
    from .threads import configure_cpu_threads
    from .utils import check_world_size

    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(project_dir=args.output_dir,
                                            logging_dir=os.path.join(args.output_dir, "runs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        kwargs_handlers=kwargs_handlers,
        # --torch_compile; otherwise accelerate's own setting (`accelerate launch --dynamo_backend ...`) applies
        **({"dynamo_backend": "inductor"} if getattr(args, "torch_compile", False) else {}),
    )
    check_world_size(accelerator)
    configure_cpu_threads(accelerator, args.num_threads, accelerator.print)
    if accelerator.is_main_process and not args.resume_from_checkpoint:
        clear_previous_run(args.output_dir)
    accelerator.wait_for_everyone()
    accelerator.print(
        f"world size: {accelerator.num_processes} process(es), device {accelerator.device}, "
        f"mixed precision {accelerator.mixed_precision}, distributed type {accelerator.distributed_type.value}"
    )
    print(f"process {accelerator.process_index} of {accelerator.num_processes} started on {accelerator.device}",
          flush=True)
    return accelerator


def add_encoder_arguments(parser: argparse.ArgumentParser, config_name: str, batch_size: int, model_help: str,
                          config_help: str = "architecture for --random_init without a model") -> None:
    """The options of the evaluation scripts (linear probes, retrieval) that load a frozen encoder: which one
    (``--model_name_or_path``, or ``--random_init`` of ``--config_name`` as the baseline), ``--config_overrides``,
    ``--per_device_batch_size``, ``--seed``, ``--output_dir`` for the results file, ``--num_threads``."""
    from .config_overrides import add_config_overrides_argument
    from .threads import add_num_threads_argument

    parser.add_argument("--model_name_or_path", default=None, help=model_help)
    parser.add_argument("--config_name", default=config_name, help=config_help)
    parser.add_argument("--random_init", action="store_true",
                        help="same architecture (and processor) with randomly initialised weights: the baseline")
    add_config_overrides_argument(parser)
    parser.add_argument("--per_device_batch_size", type=int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialisation (and of the probe's "
                        "validation split)")
    parser.add_argument("--output_dir", default=None, help="where to write the results JSON (optional)")
    add_num_threads_argument(parser)


def check_encoder_arguments(parser: argparse.ArgumentParser, args) -> None:
    if args.model_name_or_path is None and not args.random_init:
        parser.error("give --model_name_or_path (or --random_init for a random encoder of --config_name)")
    if getattr(args, "standardize", "train") != "train" and getattr(args, "readout", "mean") != "mean":
        parser.error(f"--standardize {args.standardize} is for the linear read-out (--readout mean)")


def make_eval_accelerator(args):
    """The Accelerator of an evaluation script: CPU threads, the world-size check."""
    from accelerate import Accelerator

    from .threads import configure_cpu_threads
    from .utils import check_world_size

    accelerator = Accelerator()
    configure_cpu_threads(accelerator, args.num_threads, accelerator.print)  # on CPU: use the machine
    check_world_size(accelerator)  # several launched processes but one in each: stop, say why
    return accelerator


def tracker_config(args) -> dict:
    """The arguments a tracker can record (numbers, strings, booleans)."""
    return {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}


__all__ = [
    "add_encoder_arguments",
    "add_model_runtime_arguments",
    "add_training_arguments",
    "check_encoder_arguments",
    "check_training_arguments",
    "make_accelerator",
    "make_eval_accelerator",
    "tracker_config",
]
