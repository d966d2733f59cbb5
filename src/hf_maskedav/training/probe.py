"""Linear probing: frozen-encoder features (one pluggable function per model family) and a linear classifier.

``FEATURE_FUNCTIONS`` maps a config ``model_type`` to ``fn(model, inputs) -> [N, D]``; ``inputs`` are the keyword
arguments the model takes (``input_values`` for audio, ``pixel_values`` for video...). Another family registers its
own with :func:`register_feature_function` (or a script passes ``--feature_fn module:function``).

Each registered function takes a bare encoder (``AutoModel``) and returns the mean of the final patch tokens (cls
excluded), every token visible -- the pooling the family's classifier uses. MAViL gives the features of the inputs it
receives: audio only (``input_values``), video only (``pixel_values``), or both: the mean-pooled audio and video parts
of the fusion output, concatenated (what its audio+visual head sees). Also here: retrieval recall
(:func:`recall_at_k`) and two hand-made baselines that learn nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import torch

FEATURE_FUNCTIONS: dict[str, Callable] = {}


def register_feature_function(model_type: str):
    """Decorator: use the decorated ``fn(model, inputs) -> [N, D]`` for models whose ``config.model_type`` is this."""

    def wrap(fn):
        FEATURE_FUNCTIONS[model_type] = fn
        return fn

    return wrap


@register_feature_function("maskedav_audiomae")
def audiomae_features(model, inputs: dict) -> torch.Tensor:
    """Audio-MAE clip embedding: mean of the final (normed) patch tokens, cls excluded, every token visible — the
    pooling its classifier uses."""
    hidden = model(**inputs).last_hidden_state  # [N, 1 + L, D]
    return hidden[:, 1:].mean(dim=1)


@register_feature_function("maskedav_videomae")
def videomae_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state.mean(dim=1)


@register_feature_function("maskedav_mae_st")
def mae_st_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:].mean(dim=1)


@register_feature_function("maskedav_maskfeat")
def maskfeat_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:].mean(dim=1)


@register_feature_function("maskedav_mavil")
def mavil_features(model, inputs: dict) -> torch.Tensor:
    audio, video = inputs.get("input_values"), inputs.get("pixel_values")
    out = model(input_values=audio, pixel_values=video, return_dict=True)
    skip = 1  # one cls token per modality
    if audio is not None and video is not None:
        return torch.cat([out.fused_audio_hidden_state[:, skip:].mean(dim=1),
                          out.fused_video_hidden_state[:, skip:].mean(dim=1)], dim=-1)
    hidden = out.audio_last_hidden_state if audio is not None else out.video_last_hidden_state
    return hidden[:, skip:].mean(dim=1)


@register_feature_function("maskedav_avmae")
def avmae_features(model, inputs: dict) -> torch.Tensor:
    """AV-MAE (no cls token): the mean of each given modality's tokens after the joint layers, concatenated (audio,
    video) when both are given."""
    audio, video = inputs.get("input_values"), inputs.get("pixel_values")
    out = model(input_values=audio, pixel_values=video, return_dict=True)
    parts = [hidden.mean(dim=1) for hidden, given in ((out.audio_last_hidden_state, audio),
                                                       (out.video_last_hidden_state, video)) if given is not None]
    return torch.cat(parts, dim=-1)


def recall_at_k(similarity: torch.Tensor, ks=(1, 5, 10)) -> dict[int, float]:
    """Recall@k of a square ``[N, N]`` query x candidate similarity matrix whose diagonal holds the true pairs
    (ties are counted against the query: a candidate scoring equal to the true one ranks before it)."""
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square similarity matrix, got {tuple(similarity.shape)}")
    true = similarity.diagonal()[:, None]
    rank = (similarity >= true).sum(dim=1) - 1  # candidates scoring at least as high, the true one excluded
    return {k: float((rank < k).float().mean()) for k in ks}


def resolve_feature_function(model_type: str, override: str | None = None) -> Callable:
    """``override`` as ``"package.module:function"``, else the registered function of ``model_type``."""
    if override:
        module_name, _, attribute = override.partition(":")
        if not attribute:
            raise ValueError(f"--feature_fn must look like 'package.module:function', got {override!r}")
        return getattr(importlib.import_module(module_name), attribute)
    if model_type not in FEATURE_FUNCTIONS:
        raise ValueError(
            f"no feature function registered for model type {model_type!r} (known: {sorted(FEATURE_FUNCTIONS)}); "
            "register one with hf_maskedav.training.probe.register_feature_function or pass --feature_fn"
        )
    return FEATURE_FUNCTIONS[model_type]


def _fit(
    features: torch.Tensor,
    targets: torch.Tensor,
    multi_label: bool,
    weight_decay: float,
    num_classes: int,
    max_iter: int,
) -> torch.nn.Linear:
    """Full-batch L-BFGS on the (convex) L2-regularised logistic loss: deterministic, no learning rate to tune."""
    torch.manual_seed(0)
    head = torch.nn.Linear(features.shape[1], num_classes, dtype=torch.float64)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure():
        optimizer.zero_grad()
        logits = head(features)
        if multi_label:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        else:
            loss = torch.nn.functional.cross_entropy(logits, targets)
        loss = loss + 0.5 * weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def probe_score(head: torch.nn.Linear, features: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
    """Accuracy (single-label) or mAP (multi-label) of a fitted head."""
    with torch.no_grad():
        logits = head(features)
    if multi_label:
        from ..metrics.mean_average_precision.mean_average_precision import average_precision_per_class

        per_class = average_precision_per_class(logits.numpy(), targets.numpy())
        return float(np.nanmean(per_class))
    return float((logits.argmax(-1) == targets).double().mean())


def fit_linear_probe(
    train_features: torch.Tensor,
    train_targets: torch.Tensor,
    multi_label: bool,
    num_classes: int,
    weight_decays=(1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 300,
) -> dict:
    """Standardise the features, pick the L2 strength on a held-out part of the training set, refit on all of it.

    Args:
        train_features: ``[N, D]``.
        train_targets: ``[N]`` class indices, or ``[N, C]`` multi-hot with ``multi_label``.
        weight_decays: L2 strengths tried (on standardised features).

    Returns:
        ``{"head", "mean", "std", "weight_decay", "validation_scores"}``; apply with :func:`apply_linear_probe`.
    """
    features = train_features.double()
    targets = train_targets.double() if multi_label else train_targets.long()
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    features = (features - mean) / std
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(features) * validation_fraction))
    val, fit = order[:n_val], order[n_val:]
    scores = {}
    for wd in weight_decays:
        head = _fit(features[fit], targets[fit], multi_label, wd, num_classes, max_iter)
        scores[wd] = probe_score(head, features[val], targets[val], multi_label)
    best = max(weight_decays, key=lambda wd: (scores[wd], wd))  # ties: the stronger regularisation
    head = _fit(features, targets, multi_label, best, num_classes, max_iter)
    return {"head": head, "mean": mean, "std": std, "weight_decay": best, "validation_scores": scores}


def load_frozen_encoder(args, model_class=None, log=print):
    """The encoder an evaluation script scores, frozen in eval mode: ``--model_name_or_path`` (its config), or with
    ``--random_init`` the same architecture (or ``--config_name``'s) with weights drawn from ``--seed``; either with
    ``--config_overrides``. ``model_class`` defaults to ``AutoModel``."""
    from accelerate.utils import set_seed
    from transformers import AutoConfig, AutoModel

    from .config_overrides import config_for_script
    from .loading import load_pretrained_quietly
    from .presets import build_config

    model_class = model_class or AutoModel
    base = AutoConfig.from_pretrained(args.model_name_or_path) if args.model_name_or_path else \
        build_config(args.config_name)
    config = config_for_script(base, args.config_overrides)
    if args.random_init:
        set_seed(args.seed)
        model = model_class.from_config(config) if model_class is AutoModel else model_class(config)
    else:
        model = load_pretrained_quietly(model_class, args.model_name_or_path, config=config, log=log)
    return model.eval().requires_grad_(False)


def extract_features(accelerator, model, feature_fn, loader, tracker, inputs_of, desc: str = "features"):
    """Features and targets of a whole split with a frozen encoder, computed on every process and gathered
    (``gather_for_metrics`` drops the samples repeated to even out the last batch). ``inputs_of(batch)`` gives the
    model's keyword inputs (the features the probe sees: spectrogram, frames, or both)."""
    from tqdm.auto import tqdm

    features, targets = [], []
    for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process):
        tracker.update(batch)
        with torch.no_grad():
            feats = feature_fn(model, inputs_of(batch))
        feats, labels = accelerator.gather_for_metrics((feats.float(), batch["labels"]))
        features.append(feats.cpu())
        targets.append(labels.cpu())
    return torch.cat(features), torch.cat(targets)


def run_linear_probe(train_x, train_y, eval_x, eval_y, labels, args, start: float, bad: dict, unit: str, log=print,
                     **extra) -> dict:
    """Fit the probe on the training features (L2 strength from ``args.weight_decays``, chosen on a held-out part),
    score it on both splits, log the result, write ``probe_results.json`` to ``args.output_dir`` if given; returns
    the results (``extra`` keys are recorded after the model's name, ``bad`` -- the bad-sample totals -- last)."""
    import json
    import os
    import time

    from .utils import format_duration

    probe = fit_linear_probe(train_x, train_y, labels.multi_label, labels.num_labels, tuple(args.weight_decays),
                             seed=args.seed)
    metric_name = "mAP" if labels.multi_label else "accuracy"
    train_score = apply_linear_probe(probe, train_x, train_y, labels.multi_label)
    eval_score = apply_linear_probe(probe, eval_x, eval_y, labels.multi_label)
    results = {
        "model": args.model_name_or_path or args.config_name,
        **extra,
        "random_init": args.random_init,
        "metric": metric_name,
        f"train_{metric_name}": train_score,
        f"eval_{metric_name}": eval_score,
        "feature_dim": int(train_x.shape[1]),
        "num_train": int(train_x.shape[0]),
        "num_eval": int(eval_x.shape[0]),
        "weight_decay": probe["weight_decay"],
        "validation_scores": {str(k): v for k, v in probe["validation_scores"].items()},
        "wall_time_seconds": round(time.time() - start, 1),
        "bad_samples": bad,
    }
    log(f"linear probe {metric_name}: eval {eval_score:.4f} (train {train_score:.4f}; L2 {probe['weight_decay']}; "
        f"{train_x.shape[0]} train / {eval_x.shape[0]} eval {unit}, {train_x.shape[1]}-d features) "
        f"in {format_duration(time.time() - start)}")
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "probe_results.json"), "w") as handle:
            json.dump(results, handle, indent=1)
    return results


def apply_linear_probe(probe: dict, features: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
    """Score of a probe from :func:`fit_linear_probe` on new features."""
    features = (features.double() - probe["mean"]) / probe["std"]
    targets = targets.double() if multi_label else targets.long()
    return probe_score(probe["head"], features, targets, multi_label)


__all__ = [
    "FEATURE_FUNCTIONS",
    "apply_linear_probe",
    "audiomae_features",
    "avmae_features",
    "extract_features",
    "fit_linear_probe",
    "load_frozen_encoder",
    "mae_st_features",
    "maskfeat_features",
    "mavil_features",
    "pooled_logmel_features",
    "pooled_pixel_features",
    "probe_score",
    "recall_at_k",
    "register_feature_function",
    "resolve_feature_function",
    "run_linear_probe",
    "videomae_features",
]


# ---------------------------------------------------------------------------------------------------------------------
# Hand-made baselines: features that learn nothing, to put a learned encoder's score in context. They ignore the model
# (pass ``--random_init --feature_fn hf_maskedav.training.probe:pooled_logmel_features``) and read the processed input.
# ---------------------------------------------------------------------------------------------------------------------


def pooled_logmel_features(model, inputs: dict) -> torch.Tensor:
    """Mean and standard deviation over time of each mel bin of the (normalised) fbank: ``[N, 2 * mel_bins]``.

    Frames the feature extractor added as padding (every bin equal to the padding value of the first padded frame,
    which is constant across bins) are left out, so short clips are pooled over their own frames only — the FSDD
    README's logistic-regression baseline.
    """
    values = inputs["input_values"].float()
    if values.dim() == 4:
        values = values[:, 0]  # [N, 1, T, F] -> [N, T, F]
    constant_frame = (values.amax(dim=-1) - values.amin(dim=-1)) == 0  # [N, T] padding frames are flat
    keep = (~constant_frame).float()[..., None]  # [N, T, 1]
    count = keep.sum(dim=1).clamp_min(1.0)
    mean = (values * keep).sum(dim=1) / count
    var = (((values - mean[:, None]) ** 2) * keep).sum(dim=1) / count
    return torch.cat([mean, var.sqrt()], dim=-1)


def pooled_pixel_features(model, inputs: dict, grid: int = 4) -> torch.Tensor:
    """Colour layout and motion energy of a clip: each frame average-pooled to ``grid x grid`` cells per channel, then
    the mean and standard deviation of every cell over time and the mean absolute change between frames —
    ``[N, 3 * C * grid * grid]``. ``pixel_values`` is ``[N, T, C, H, W]`` (the video processors' layout)."""
    pixels = inputs["pixel_values"].float()
    batch, frames, channels = pixels.shape[:3]
    cells = torch.nn.functional.adaptive_avg_pool2d(pixels.flatten(0, 1), grid).view(batch, frames, -1)  # [N, T, C*g*g]
    motion = (cells[:, 1:] - cells[:, :-1]).abs().mean(dim=1) if frames > 1 else torch.zeros_like(cells[:, 0])
    return torch.cat([cells.mean(dim=1), cells.std(dim=1, unbiased=False), motion], dim=-1)
