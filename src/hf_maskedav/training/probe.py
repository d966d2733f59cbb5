"""Linear probing: frozen-encoder features (one pluggable function per model family) and a linear classifier.

``FEATURE_FUNCTIONS`` maps a config ``model_type`` to ``fn(model, inputs) -> [N, D]``; ``inputs`` are the keyword
arguments the model takes (``input_values`` for audio, ``pixel_values`` for video...). Another family registers its
own with :func:`register_feature_function` (or a script passes ``--feature_fn module:function``).

Each registered function takes a bare encoder (``AutoModel``) and returns the mean of the final patch tokens (cls
excluded), every token visible -- the pooling the family's classifier uses. MAViL gives the features of the inputs it
receives: audio only (``input_values``), video only (``pixel_values``), or both: the mean-pooled audio and video parts
of the fusion output, concatenated (what its audio+visual head sees). ``TOKEN_FUNCTIONS`` give the same tokens
unpooled (``fn(model, inputs) -> [N, L, D]``) for the attentive probe (:func:`fit_attentive_probe`: a learned query
attending over the frozen tokens, then a linear layer), which keeps evidence that a mean dilutes. Also here: retrieval
recall (:func:`recall_at_k`) and two hand-made baselines that learn nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import torch

FEATURE_FUNCTIONS: dict[str, Callable] = {}
# how a probe reads an encoder: "mean" = logistic regression on the mean-pooled tokens (the registered features);
# "attentive" = a learned query attending over the tokens, then a linear layer (fit_attentive_probe)
READOUTS = ("mean", "attentive")
# the attentive probe's AdamW weight decays tried (the linear probe's L2 strengths are another scale)
ATTENTIVE_WEIGHT_DECAYS = (1e-2, 1e-1, 1.0)
LINEAR_WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def register_feature_function(model_type: str):
    """Decorator: use the decorated ``fn(model, inputs) -> [N, D]`` for models whose ``config.model_type`` is this."""

    def wrap(fn):
        FEATURE_FUNCTIONS[model_type] = fn
        return fn

    return wrap


TOKEN_FUNCTIONS: dict[str, Callable] = {}


def register_token_function(model_type: str):
    """Decorator: use the decorated ``fn(model, inputs) -> [N, L, D]`` (the final tokens the registered feature
    pools, unpooled) for the attentive probe of models whose ``config.model_type`` is this."""

    def wrap(fn):
        TOKEN_FUNCTIONS[model_type] = fn
        return fn

    return wrap


@register_token_function("maskedav_audiomae")
def audiomae_tokens(model, inputs: dict) -> torch.Tensor:
    """Audio-MAE's final (normed) patch tokens, cls excluded, every token visible."""
    return model(**inputs).last_hidden_state[:, 1:]  # [N, 1 + L, D] -> [N, L, D]


@register_token_function("maskedav_videomae")
def videomae_tokens(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state  # no cls token


@register_token_function("maskedav_mae_st")
def mae_st_tokens(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:]


@register_token_function("maskedav_maskfeat")
def maskfeat_tokens(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:]


def _mavil_token_parts(model, inputs: dict) -> list[torch.Tensor]:
    """MAViL's tokens of the given inputs, cls excluded: ``[fused audio, fused video]`` when both are given, else the
    one encoder's output."""
    audio, video = inputs.get("input_values"), inputs.get("pixel_values")
    out = model(input_values=audio, pixel_values=video, return_dict=True)
    skip = 1  # one cls token per modality
    if audio is not None and video is not None:
        return [out.fused_audio_hidden_state[:, skip:], out.fused_video_hidden_state[:, skip:]]
    hidden = out.audio_last_hidden_state if audio is not None else out.video_last_hidden_state
    return [hidden[:, skip:]]


@register_token_function("maskedav_mavil")
def mavil_tokens(model, inputs: dict) -> torch.Tensor:
    """The tokens :func:`mavil_features` pools: one modality's, or both parts of the fusion output, concatenated along
    the token axis."""
    return torch.cat(_mavil_token_parts(model, inputs), dim=1)


def _avmae_token_parts(model, inputs: dict) -> list[torch.Tensor]:
    audio, video = inputs.get("input_values"), inputs.get("pixel_values")
    out = model(input_values=audio, pixel_values=video, return_dict=True)
    return [hidden for hidden, given in ((out.audio_last_hidden_state, audio), (out.video_last_hidden_state, video))
            if given is not None]


@register_token_function("maskedav_avmae")
def avmae_tokens(model, inputs: dict) -> torch.Tensor:
    """AV-MAE's tokens after the joint layers (no cls token), each given modality's, concatenated along the tokens."""
    return torch.cat(_avmae_token_parts(model, inputs), dim=1)


@register_feature_function("maskedav_audiomae")
def audiomae_features(model, inputs: dict) -> torch.Tensor:
    """Audio-MAE clip embedding: mean of the final (normed) patch tokens, cls excluded, every token visible — the
    pooling its classifier uses."""
    return audiomae_tokens(model, inputs).mean(dim=1)


@register_feature_function("maskedav_videomae")
def videomae_features(model, inputs: dict) -> torch.Tensor:
    return videomae_tokens(model, inputs).mean(dim=1)


@register_feature_function("maskedav_mae_st")
def mae_st_features(model, inputs: dict) -> torch.Tensor:
    return mae_st_tokens(model, inputs).mean(dim=1)


@register_feature_function("maskedav_maskfeat")
def maskfeat_features(model, inputs: dict) -> torch.Tensor:
    return maskfeat_tokens(model, inputs).mean(dim=1)


@register_feature_function("maskedav_mavil")
def mavil_features(model, inputs: dict) -> torch.Tensor:
    """MAViL: the mean of one modality's tokens, or with both inputs the mean-pooled audio and video parts of the
    fusion output, concatenated (what its audio+visual head sees)."""
    return torch.cat([part.mean(dim=1) for part in _mavil_token_parts(model, inputs)], dim=-1)


@register_feature_function("maskedav_avmae")
def avmae_features(model, inputs: dict) -> torch.Tensor:
    """AV-MAE (no cls token): the mean of each given modality's tokens after the joint layers, concatenated (audio,
    video) when both are given."""
    return torch.cat([part.mean(dim=1) for part in _avmae_token_parts(model, inputs)], dim=-1)


def recall_at_k(similarity: torch.Tensor, ks=(1, 5, 10)) -> dict[int, float]:
    """Recall@k of a square ``[N, N]`` query x candidate similarity matrix whose diagonal holds the true pairs
    (ties are counted against the query: a candidate scoring equal to the true one ranks before it)."""
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square similarity matrix, got {tuple(similarity.shape)}")
    true = similarity.diagonal()[:, None]
    rank = (similarity >= true).sum(dim=1) - 1  # candidates scoring at least as high, the true one excluded
    return {k: float((rank < k).float().mean()) for k in ks}


def resolve_feature_function(model_type: str, override: str | None = None, readout: str = "mean") -> Callable:
    """``override`` as ``"package.module:function"``, else the registered function of ``model_type``: its feature
    function (``[N, D]``) for ``readout="mean"``, its token function (``[N, L, D]``) for ``"attentive"``."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    if override:
        module_name, _, attribute = override.partition(":")
        if not attribute:
            raise ValueError(f"--feature_fn must look like 'package.module:function', got {override!r}")
        return getattr(importlib.import_module(module_name), attribute)
    registry, register = ((FEATURE_FUNCTIONS, "register_feature_function") if readout == "mean"
                          else (TOKEN_FUNCTIONS, "register_token_function"))
    if model_type not in registry:
        raise ValueError(
            f"no {'feature' if readout == 'mean' else 'token'} function registered for model type {model_type!r} "
            f"(known: {sorted(registry)}); register one with hf_maskedav.training.probe.{register} or pass --feature_fn"
        )
    return registry[model_type]


def _probe_loss(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Sigmoid cross-entropy per class (multi-label) or softmax cross-entropy: the loss of both probes."""
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    return torch.nn.functional.cross_entropy(logits, targets)


def _select_weight_decay_and_refit(fit, features, targets, multi_label, weight_decays, validation_fraction, seed):
    """The probes' model selection: ``fit(features, targets, weight_decay) -> head`` on a seeded (1 -
    ``validation_fraction``) part of the (standardised) training set for each weight decay, score each on the rest,
    refit the best on all of it (ties: the stronger regularisation). Returns ``(head, best, scores)``."""
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(features) * validation_fraction))
    val, train = order[:n_val], order[n_val:]
    scores = {}
    for wd in weight_decays:
        scores[wd] = probe_score(fit(features[train], targets[train], wd), features[val], targets[val], multi_label)
    best = max(weight_decays, key=lambda wd: (scores[wd], wd))
    return fit(features, targets, best), best, scores


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
        loss = _probe_loss(head(features), targets, multi_label) + 0.5 * weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def probe_score(head: torch.nn.Module, features: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
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
    weight_decays=LINEAR_WEIGHT_DECAYS,
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
    head, best, scores = _select_weight_decay_and_refit(
        lambda x, y, wd: _fit(x, y, multi_label, wd, num_classes, max_iter),
        features, targets, multi_label, weight_decays, validation_fraction, seed)
    return {"head": head, "mean": mean, "std": std, "weight_decay": best, "validation_scores": scores}


class AttentivePoolingHead(torch.nn.Module):
    """An attentive probe: one learned query cross-attends over the (frozen, standardised, layer-normed) tokens, the
    pooled vector goes through a linear classifier. No residual, no MLP: the smallest read-out that can weigh tokens
    by content, so that a small object's few tokens are not averaged away with the background.

    With a single learned query, ``q . W_k x`` is ``(W_k^T q) . x``: each head's keys reduce to one learned vector
    over the token width (``key_query``, ``[heads, D]``, the key bias cancels in the softmax), and the values are
    projected after the attention-weighted sum (``W_v`` is linear). The same function as projecting every token,
    at ``O(N L D heads)`` instead of ``O(N L D^2)``.

    Args:
        hidden_size: token width ``D`` (divisible by ``num_heads``).
        num_classes: outputs.
        num_heads: attention heads.
    """

    def __init__(self, hidden_size: int, num_classes: int, num_heads: int = 4):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"token width {hidden_size} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.norm = torch.nn.LayerNorm(hidden_size)
        self.key_query = torch.nn.Parameter(torch.zeros(num_heads, hidden_size))
        self.v_proj = torch.nn.Linear(hidden_size, hidden_size)
        self.o_proj = torch.nn.Linear(hidden_size, hidden_size)
        self.classifier = torch.nn.Linear(hidden_size, num_classes)
        torch.nn.init.trunc_normal_(self.key_query, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, L, D]`` tokens -> ``[N, num_classes]`` logits."""
        batch, _, width = tokens.shape
        heads, head_dim = self.num_heads, width // self.num_heads
        hidden = self.norm(tokens)
        scores = torch.einsum("nld,hd->nhl", hidden, self.key_query) * head_dim**-0.5
        mixed = torch.einsum("nhl,nld->nhd", scores.softmax(dim=-1), hidden)  # each head's weighted token, [N, H, D]
        value_weight = self.v_proj.weight.view(heads, head_dim, width)
        pooled = torch.einsum("nhd,hed->nhe", mixed, value_weight).reshape(batch, width) + self.v_proj.bias
        return self.classifier(self.o_proj(pooled))


def _fit_attentive(tokens, targets, multi_label, weight_decay, num_classes, seed, steps, batch_size, learning_rate,
                   num_heads) -> AttentivePoolingHead:
    """``steps`` AdamW updates on shuffled mini-batches (whole epochs, the last one cut short), cosine learning-rate
    decay to 0 after a 5 % warm-up; deterministic given ``seed``."""
    from .optim import cosine_schedule_with_warmup

    torch.manual_seed(seed)
    head = AttentivePoolingHead(tokens.shape[-1], num_classes, num_heads)
    decay = [p for name, p in head.named_parameters() if p.dim() >= 2 and name != "key_query"]
    rest = [p for name, p in head.named_parameters() if not (p.dim() >= 2 and name != "key_query")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=learning_rate)
    schedule = cosine_schedule_with_warmup(optimizer, warmup_steps=max(1, steps // 20), total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    batches_per_epoch = -(-len(tokens) // batch_size)
    head.train()
    for epoch in range(-(-steps // batches_per_epoch)):
        order = torch.randperm(len(tokens), generator=generator).split(batch_size)
        for index in order[: steps - epoch * batches_per_epoch]:
            loss = _probe_loss(head(tokens[index]), targets[index], multi_label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return head.eval()


def fit_attentive_probe(
    train_tokens: torch.Tensor,
    train_targets: torch.Tensor,
    multi_label: bool,
    num_classes: int,
    weight_decays=ATTENTIVE_WEIGHT_DECAYS,
    validation_fraction: float = 0.2,
    seed: int = 0,
    steps: int = 1000,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    num_heads: int = 4,
) -> dict:
    """The attentive probe: standardise every token channel (statistics over all training tokens), train an
    :class:`AttentivePoolingHead` per weight decay on 80 % of the training set (``steps`` AdamW updates of
    ``batch_size``, whatever the set's size), keep the decay that scores best on the other 20 %, retrain on all of
    it. The encoder stays frozen: only the head (about ``4 D^2`` weights) learns.

    Args:
        train_tokens: ``[N, L, D]`` (a token function's output).
        train_targets: ``[N]`` class indices, or ``[N, C]`` multi-hot with ``multi_label``.
        weight_decays: AdamW weight decays tried (on the head's matrices).

    Returns:
        ``{"head", "mean", "std", "weight_decay", "validation_scores"}``, as :func:`fit_linear_probe`; apply with
        :func:`apply_linear_probe`.
    """
    if train_tokens.dim() != 3:
        raise ValueError(f"the attentive probe takes tokens [N, L, D], got a tensor of shape "
                         f"{tuple(train_tokens.shape)} (a --feature_fn for it must return the tokens unpooled)")
    tokens = train_tokens.float()
    targets = train_targets.float() if multi_label else train_targets.long()
    mean, std = tokens.mean((0, 1)), tokens.std((0, 1)).clamp_min(1e-6)
    tokens = (tokens - mean) / std
    options = dict(num_classes=num_classes, seed=seed, steps=steps, batch_size=batch_size,
                   learning_rate=learning_rate, num_heads=num_heads)
    head, best, scores = _select_weight_decay_and_refit(
        lambda x, y, wd: _fit_attentive(x, y, multi_label, wd, **options),
        tokens, targets, multi_label, weight_decays, validation_fraction, seed)
    return {"head": head, "mean": mean, "std": std, "weight_decay": best, "validation_scores": scores}


def add_readout_arguments(parser, linear_weight_decays) -> None:
    """``--readout`` and ``--weight_decays`` of the probe scripts; the decays' default depends on the read-out
    (``linear_weight_decays``, the script's L2 strengths for the mean read-out, or :data:`ATTENTIVE_WEIGHT_DECAYS`)."""
    parser.add_argument(
        "--readout", default="mean", choices=READOUTS,
        help="'mean': logistic regression on the mean of the final tokens (the registered feature: a linear probe); "
             "'attentive': a learned query attending over the final tokens, then a linear layer (an attentive probe: "
             "a few tokens that carry the class, such as a small object's, are not averaged away)")
    parser.add_argument(
        "--weight_decays", type=float, nargs="+", default=None,
        help="regularisation strengths tried, chosen on 20%% of the training split (default: the linear probe's L2 "
             f"{' '.join(f'{wd:g}' for wd in linear_weight_decays)}; the attentive probe's AdamW weight decay "
             f"{' '.join(f'{wd:g}' for wd in ATTENTIVE_WEIGHT_DECAYS)})")
    parser.add_argument("--attentive_steps", type=int, default=1000,
                        help="AdamW updates (batches of 64) per fit of the attentive probe")
    parser.add_argument(
        "--standardize", default="train", choices=STANDARDIZATIONS,
        help="linear read-out: standardise the features with the training split's mean and std ('train', the usual "
             "probe), or each split with its own ('each_split': the evaluation split's statistics come from its "
             "unlabelled features, as AdaBN adapts batch norm to a new domain; for a test set recorded elsewhere, "
             "e.g. new speakers)")
    parser.set_defaults(linear_weight_decays=tuple(linear_weight_decays))


STANDARDIZATIONS = ("train", "each_split")


def match_statistics(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``features`` ``[N, D]`` moved to the per-dimension mean and std of ``reference`` ``[M, D]``: standardised by
    their own statistics, then given the reference's, so that a probe standardising with the reference's statistics
    sees each split standardised by its own (``--standardize each_split``). Needs at least 2 rows of each."""
    if features.shape[0] < 2 or reference.shape[0] < 2:
        raise ValueError(f"--standardize each_split needs at least 2 clips per split (got {features.shape[0]} and "
                         f"{reference.shape[0]}); use --standardize train")
    features, reference = features.double(), reference.double()
    own = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    return own * reference.std(0).clamp_min(1e-6) + reference.mean(0)


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
    """Fit the probe on the training features (``args.readout``: ``"mean"``, the linear probe on ``[N, D]`` features,
    or ``"attentive"``, :func:`fit_attentive_probe` on ``[N, L, D]`` tokens; the weight decay from
    ``args.weight_decays``, default per read-out, chosen on a held-out part), score it on both splits, log the
    result, write ``probe_results.json`` to ``args.output_dir`` if given; returns the results (``extra`` keys are
    recorded after the model's name, ``bad`` -- the bad-sample totals -- last)."""
    import json
    import os
    import time

    from .utils import format_duration

    readout = getattr(args, "readout", "mean")
    standardize = getattr(args, "standardize", "train")
    if standardize == "each_split":
        if readout != "mean":
            raise ValueError("--standardize each_split is for the linear read-out (--readout mean)")
        eval_x = match_statistics(eval_x, train_x)
    if readout == "attentive":
        probe = fit_attentive_probe(train_x, train_y, labels.multi_label, labels.num_labels,
                                    tuple(args.weight_decays or ATTENTIVE_WEIGHT_DECAYS), seed=args.seed,
                                    steps=args.attentive_steps)
    else:
        linear = getattr(args, "linear_weight_decays", LINEAR_WEIGHT_DECAYS)
        probe = fit_linear_probe(train_x, train_y, labels.multi_label, labels.num_labels,
                                 tuple(args.weight_decays or linear), seed=args.seed)
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
        "readout": readout,
        "standardize": standardize,
        "feature_dim": int(train_x.shape[-1]),
        **({"num_tokens": int(train_x.shape[1])} if readout == "attentive" else {}),
        "num_train": int(train_x.shape[0]),
        "num_eval": int(eval_x.shape[0]),
        "weight_decay": probe["weight_decay"],
        "validation_scores": {str(k): v for k, v in probe["validation_scores"].items()},
        "wall_time_seconds": round(time.time() - start, 1),
        "bad_samples": bad,
    }
    what = (f"{train_x.shape[1]} tokens of {train_x.shape[2]}-d" if readout == "attentive"
            else f"{train_x.shape[1]}-d features")
    adapted = " (each split standardised by its own statistics)" if standardize == "each_split" else ""
    log(f"{'attentive' if readout == 'attentive' else 'linear'} probe{adapted} {metric_name}: eval {eval_score:.4f} "
        f"(train {train_score:.4f}; {'weight decay' if readout == 'attentive' else 'L2'} {probe['weight_decay']}; "
        f"{train_x.shape[0]} train / {eval_x.shape[0]} eval {unit}, {what}) in {format_duration(time.time() - start)}")
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "probe_results.json"), "w") as handle:
            json.dump(results, handle, indent=1)
    return results


def classifier_inputs(model, inputs: dict) -> torch.Tensor:
    """What a classification model's ``classifier`` (its final ``nn.Linear``) reads: the pooled, normed feature of
    every clip, taken with a forward hook so that each family's own pooling is used as it is."""
    captured = []
    hook = model.classifier.register_forward_hook(lambda module, args, output: captured.append(args[0]))
    try:
        model(**inputs)
    finally:
        hook.remove()
    return captured[0]


def fit_head_by_linear_probe(accelerator, model, loader, tracker, inputs_of, multi_label: bool, seed: int = 0,
                             log=print) -> dict:
    """Set a classification model's head to the linear probe of its own (frozen) features: the first stage of
    LP-FT (Kumar et al., ICLR 2022, "Fine-tuning can distort pretrained features and underperform
    out-of-distribution"). Fine-tuning from a random head sends large, random gradients into a pretrained encoder in
    the first steps; from a head that already reads the features it changes them far less.

    ``loader`` goes over the training split without augmentation (every process its shard; the features are
    gathered, so every process fits the same head). The probe is :func:`fit_linear_probe` (standardised features,
    L2 chosen on a held-out fifth); the standardisation is folded into the head's weight and bias. Returns the
    probe's ``{"weight_decay", "validation_scores", "train_score", "num_train"}``.
    """
    inner = accelerator.unwrap_model(model)
    head = inner.classifier
    was_training = inner.training
    inner.eval()
    features, targets = extract_features(accelerator, inner, classifier_inputs, loader, tracker, inputs_of,
                                         desc="head: linear probe")
    probe = fit_linear_probe(features, targets, multi_label, head.out_features, seed=seed)
    with torch.no_grad():
        weight = probe["head"].weight / probe["std"]  # W ((x - mean) / std) + b = (W / std) x + (b - W mean / std)
        bias = probe["head"].bias - weight @ probe["mean"]
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))
    inner.train(was_training)
    train_score = apply_linear_probe(probe, features, targets, multi_label)
    metric = "mAP" if multi_label else "accuracy"
    log(f"head set to the linear probe of the encoder's features: train {metric} {train_score:.4f} "
        f"(L2 {probe['weight_decay']}, {features.shape[0]} clips, {features.shape[1]}-d)")
    return {"weight_decay": probe["weight_decay"], "validation_scores": probe["validation_scores"],
            "train_score": train_score, "num_train": int(features.shape[0])}


def apply_linear_probe(probe: dict, features: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
    """Score of a probe from :func:`fit_linear_probe` (``[N, D]`` features) or :func:`fit_attentive_probe`
    (``[N, L, D]`` tokens) on new inputs of the same kind."""
    features = (features.to(probe["mean"].dtype) - probe["mean"]) / probe["std"]
    targets = targets.to(probe["mean"].dtype) if multi_label else targets.long()
    return probe_score(probe["head"], features, targets, multi_label)


__all__ = [
    "ATTENTIVE_WEIGHT_DECAYS",
    "AttentivePoolingHead",
    "FEATURE_FUNCTIONS",
    "LINEAR_WEIGHT_DECAYS",
    "READOUTS",
    "TOKEN_FUNCTIONS",
    "add_readout_arguments",
    "apply_linear_probe",
    "audiomae_features",
    "audiomae_tokens",
    "avmae_features",
    "avmae_tokens",
    "classifier_inputs",
    "extract_features",
    "fit_attentive_probe",
    "fit_head_by_linear_probe",
    "fit_linear_probe",
    "load_frozen_encoder",
    "match_statistics",
    "mae_st_features",
    "mae_st_tokens",
    "maskfeat_features",
    "maskfeat_tokens",
    "mavil_features",
    "mavil_tokens",
    "pooled_logmel_features",
    "pooled_pixel_features",
    "probe_score",
    "recall_at_k",
    "register_feature_function",
    "register_token_function",
    "resolve_feature_function",
    "run_linear_probe",
    "videomae_features",
    "videomae_tokens",
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
