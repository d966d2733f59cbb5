"""Pieces shared by the training scripts in ``examples/`` (audio, video and audio-visual).

The loop's correctness logic (``run.TrainingRun``: resume, atomic checkpoints, stopping on signals and budgets, the
non-finite-loss guard and the test aids of ``faults``), the preset registry and ``build_config`` (``presets``), the
shared command-line options (``arguments``), optimizer groups and the LR schedule, classification targets and loss,
pictures, model cards, linear probes, Hub upload, metrics and the step log.
"""

from .budget import LoopProgress, TimeBudget, add_time_budget_argument
from .clip_length import add_clip_seconds_argument, max_length_for_seconds, nearest_max_lengths
from .config_overrides import (
    add_config_overrides_argument,
    apply_config_overrides,
    config_for_script,
    parse_config_overrides,
)
from .checkpointing import (
    TrainingState,
    model_state_dict,
    save_model_and_processors,
    clear_previous_run,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_resume_path,
    save_checkpoint,
)
from .faults import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    StopOnSignal,
    ignore_stop_signals_in_worker,
    maybe_poison_loss,
    maybe_signal_self,
    step_if_finite,
)
from .presets import PRESETS, Preset, build_config
from .hub import push_output, push_to_hub, repo_name
from .metrics import accuracy, load_metric, mean_average_precision
from .model_card import write_model_card
from .optim import (
    NO_WEIGHT_DECAY_NAMES,
    cosine_schedule_with_warmup,
    default_layer_id,
    mavil_layer_id,
    mavil_num_layers,
    parameter_groups,
)
from .probe import (
    FEATURE_FUNCTIONS,
    TOKEN_FUNCTIONS,
    apply_linear_probe,
    fit_attentive_probe,
    fit_head_by_linear_probe,
    fit_linear_probe,
    register_feature_function,
    register_token_function,
    resolve_feature_function,
)
from .plotting import save_loss_curve, save_spectrogram_reconstruction, spectrogram_reconstruction_images
from .run import TrainingRun, check_output_dir, training_schedule
from .utils import StepLog, check_world_size, format_duration, per_process_states

__all__ = [
    "TimeBudget",
    "add_time_budget_argument",
    "LoopProgress",
    "add_clip_seconds_argument",
    "add_config_overrides_argument",
    "apply_config_overrides",
    "config_for_script",
    "max_length_for_seconds",
    "nearest_max_lengths",
    "parse_config_overrides",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "StopOnSignal",
    "ignore_stop_signals_in_worker",
    "maybe_poison_loss",
    "maybe_signal_self",
    "step_if_finite",
    "FEATURE_FUNCTIONS",
    "TOKEN_FUNCTIONS",
    "apply_linear_probe",
    "fit_attentive_probe",
    "fit_head_by_linear_probe",
    "fit_linear_probe",
    "register_feature_function",
    "register_token_function",
    "resolve_feature_function",
    "PRESETS",
    "Preset",
    "TrainingRun",
    "check_output_dir",
    "training_schedule",
    "model_state_dict",
    "save_model_and_processors",
    "NO_WEIGHT_DECAY_NAMES",
    "StepLog",
    "TrainingState",
    "accuracy",
    "load_metric",
    "mean_average_precision",
    "build_config",
    "check_world_size",
    "clear_previous_run",
    "cosine_schedule_with_warmup",
    "default_layer_id",
    "mavil_layer_id",
    "mavil_num_layers",
    "format_duration",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "parameter_groups",
    "per_process_states",
    "push_output",
    "push_to_hub",
    "repo_name",
    "resolve_resume_path",
    "save_checkpoint",
    "save_loss_curve",
    "save_spectrogram_reconstruction",
    "spectrogram_reconstruction_images",
    "write_model_card",
]
