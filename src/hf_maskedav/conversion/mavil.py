"""MAViL checkpoints of the authors' encoder code (roger-tseng/av-superb, ``upstream_models/mavil``) -> hf_maskedav MAViL.

The av-superb code (``models_vitmm.VisionTransformerMM`` + ``expert.py``) stores ``{"model": state_dict}`` with keys
``patch_embed.proj.*``, ``cls_token``, ``pos_embed``, ``blocks.{i}.*`` (audio), ``patch_embed_v.proj.*``,
``cls_token_v``, ``pos_embed_v``, ``blocks_v.{i}.*`` (video), ``blocks_av.{i}.*`` (fusion) and, in fine-tuned files,
``fc_norm_av``/``head_av`` (audio+visual head) or ``fc_norm_a``/``head_a``/``fc_norm_v``/``head_v``.

* Layout is read from the keys: the depth of every stack from its ``.{i}.`` indices (the authors' expert guesses
  "fine-tuned" from a substring ``blocks_av.2``, which misreads a 2-fusion-layer file with a head), the heads from the
  presence of their keys, widths from tensor shapes. The attention head count is not stored in the weights and
  must be given (default: ``hidden_size // 64``, the ViT convention of the authors' factories for S/B/L).
* The position tables ``pos_embed``/``pos_embed_v`` are stored values in these files (the authors' code never
  computes them), so the converted model keeps them as stored buffers (``position_tables="stored"``). The
  converter reports how far they are from the sin-cos tables our model can build (:func:`position_table_report`).
* Strict key accounting through :class:`~hf_maskedav.conversion.utils.KeyTable`: every checkpoint key is mapped or
  explicitly ignored by the caller, every model key is filled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..models.mavil import MAViLConfig, MAViLForAudioVisualClassification, MAViLModel
from ..models.mavil.modeling_mavil import _pool, time_major_audio_table, video_table
from ..layers import audiomae_position_table
from .utils import TIMM_BLOCK_PARTS, KeyTable, fixture_io, forward_call_arguments, load_official_checkpoint, unwrap_state_dict

# Official head key prefixes -> our head names (config.classifier_heads) and module names.
HEADS = {
    "audio_visual": ("fc_norm_av", "head_av", "audio_visual_norm", "audio_visual_classifier"),
    "audio": ("fc_norm_a", "head_a", "audio_norm", "audio_classifier"),
    "video": ("fc_norm_v", "head_v", "video_norm", "video_classifier"),
}
STACKS = {"blocks": "audio_layers", "blocks_v": "video_layers", "blocks_av": "fusion_layers"}


def stack_depth(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of blocks of ``prefix`` (``blocks``, ``blocks_v``, ``blocks_av``) from the keys ``prefix.<i>.*``.

    The indices must be exactly ``0 .. depth-1``.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    indices = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if indices and indices != set(range(len(indices))):
        raise ValueError(f"{prefix}.* block indices are not contiguous from 0: {sorted(indices)}")
    return len(indices)


def classifier_heads(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """The heads present in a checkpoint (``audio_visual``, ``audio``, ``video``), from their keys."""
    heads = []
    for name, (norm, head, _, _) in HEADS.items():
        present = [k for k in (f"{norm}.weight", f"{norm}.bias", f"{head}.weight", f"{head}.bias") if k in state_dict]
        if present and len(present) != 4:
            raise ValueError(f"incomplete {name} head in the checkpoint: only {present}")
        if present:
            heads.append(name)
    return heads


def describe_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Everything the weights say about the architecture."""
    for key in ("cls_token", "patch_embed.proj.weight", "patch_embed_v.proj.weight", "pos_embed", "pos_embed_v"):
        if key not in state_dict:
            raise KeyError(f"{key!r} missing: this is not an av-superb MAViL checkpoint (keys: {sorted(state_dict)[:8]}...)")
    audio_conv = state_dict["patch_embed.proj.weight"]  # [D, 1, p, p]
    video_conv = state_dict["patch_embed_v.proj.weight"]  # [D, C, t, p, p]
    info = dict(
        hidden_size=int(state_dict["cls_token"].shape[-1]),
        audio_patch_size=int(audio_conv.shape[-1]),
        audio_patch_size_time=int(audio_conv.shape[-2]),
        num_channels=int(video_conv.shape[1]),
        tubelet_size=int(video_conv.shape[2]),
        video_patch_size=int(video_conv.shape[-1]),
        audio_num_hidden_layers=stack_depth(state_dict, "blocks"),
        video_num_hidden_layers=stack_depth(state_dict, "blocks_v"),
        fusion_num_hidden_layers=stack_depth(state_dict, "blocks_av"),
        num_audio_patches=int(state_dict["pos_embed"].shape[1]) - 1,
        num_video_patches=int(state_dict["pos_embed_v"].shape[1]) - 1,
        classifier_heads=classifier_heads(state_dict),
    )
    if info["audio_patch_size"] != info["audio_patch_size_time"]:
        raise ValueError(f"non-square audio patches {tuple(audio_conv.shape[-2:])} are not supported")
    if video_conv.shape[-1] != video_conv.shape[-2]:
        raise ValueError(f"non-square video patches {tuple(video_conv.shape[-2:])} are not supported")
    if info["audio_num_hidden_layers"] and "blocks.0.mlp.fc1.weight" in state_dict:
        info["intermediate_size"] = int(state_dict["blocks.0.mlp.fc1.weight"].shape[0])
        info["qkv_bias"] = "blocks.0.attn.qkv.bias" in state_dict
    if info["classifier_heads"]:
        head = HEADS[info["classifier_heads"][0]][1]
        info["num_labels"] = int(state_dict[f"{head}.weight"].shape[0])
    return info


def config_from_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    audio_size: tuple[int, int] = (1024, 128),
    video_size: tuple[int, int, int] = (8, 224, 224),
    num_attention_heads: int | None = None,
    **overrides,
) -> MAViLConfig:
    """Our config for an av-superb MAViL state dict.

    Args:
        audio_size: ``(frames, mel_bins)`` of the spectrogram the checkpoint was built for (the token grid is not
            stored: only its size is). The av-superb expert uses 1024x128.
        video_size: ``(frames, height, width)`` (the authors' ``n_frm`` and 224x224).
        num_attention_heads: not stored in the weights; ``hidden_size // 64`` when omitted.
        overrides: other config fields (e.g. ``mask_time_prob``).
    """
    info = describe_checkpoint(state_dict)
    dim = info["hidden_size"]
    fields = dict(
        max_length=int(audio_size[0]),
        num_mel_bins=int(audio_size[1]),
        audio_patch_size=info["audio_patch_size"],
        num_frames=int(video_size[0]),
        image_size=int(video_size[1]),
        video_patch_size=info["video_patch_size"],
        tubelet_size=info["tubelet_size"],
        num_channels=info["num_channels"],
        hidden_size=dim,
        num_attention_heads=num_attention_heads or max(dim // 64, 1),
        intermediate_size=info.get("intermediate_size", 4 * dim),
        qkv_bias=info.get("qkv_bias", True),
        audio_num_hidden_layers=info["audio_num_hidden_layers"],
        video_num_hidden_layers=info["video_num_hidden_layers"],
        fusion_num_hidden_layers=info["fusion_num_hidden_layers"],
        layer_norm_eps=1e-6,
        use_cls_token=True,
        position_tables="stored",
        audio_position_table=closest_audio_table(state_dict["pos_embed"], audio_size, info["audio_patch_size"]),
    )
    if video_size[1] != video_size[2]:
        raise ValueError(f"only square frames are supported, got {video_size[1]}x{video_size[2]}")
    if info["classifier_heads"]:
        fields.update(classifier_heads=info["classifier_heads"], num_labels=info["num_labels"])
    fields.update(overrides)
    config = MAViLConfig(**fields)
    if config.num_audio_patches != info["num_audio_patches"]:
        raise ValueError(
            f"the checkpoint's audio table has {info['num_audio_patches']} token rows but a {audio_size} spectrogram "
            f"with {info['audio_patch_size']}x{info['audio_patch_size']} patches gives {config.num_audio_patches}: "
            "pass the audio_size the checkpoint was trained with"
        )
    if config.num_video_patches != info["num_video_patches"]:
        raise ValueError(
            f"the checkpoint's video table has {info['num_video_patches']} token rows but {video_size} with "
            f"{config.tubelet_size}x{config.video_patch_size}x{config.video_patch_size} tubelets gives "
            f"{config.num_video_patches}: pass the video_size the checkpoint was trained with"
        )
    return config


def _audio_candidates(embed_dim: int, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    return {
        "time_major": time_major_audio_table(embed_dim, *grid),
        "audiomae": audiomae_position_table(embed_dim, *grid),
    }


def closest_audio_table(pos_embed: torch.Tensor, audio_size, patch: int) -> str:
    """Which of our audio sin-cos layouts is closest to a stored table (``"time_major"`` or ``"audiomae"``)."""
    grid = (int(audio_size[0]) // patch, int(audio_size[1]) // patch)
    table = pos_embed.reshape(-1, pos_embed.shape[-1]).float()
    if grid[0] * grid[1] + 1 != table.shape[0] or table.shape[-1] % 4:
        return "audiomae"
    errors = {name: float((table - ours).abs().max()) for name, ours in _audio_candidates(table.shape[-1], grid).items()}
    return min(errors, key=errors.get)


def position_table_report(state_dict: Mapping[str, torch.Tensor], config: MAViLConfig) -> dict[str, dict[str, float]]:
    """Max abs difference between the checkpoint's stored tables and the sin-cos tables we can build.

    Returns ``{"pos_embed": {"time_major": e1, "audiomae": e2}, "pos_embed_v": {"sincos_3d": e3}}``; a value near 0
    says which layout the checkpoint was trained with (``nan`` when the shapes cannot match).
    """
    report = {}
    audio = state_dict["pos_embed"].reshape(-1, state_dict["pos_embed"].shape[-1]).float()
    report["pos_embed"] = {}
    for name, ours in _audio_candidates(config.hidden_size, config.audio_grid_size).items():
        report["pos_embed"][name] = float((audio - ours).abs().max()) if ours.shape == audio.shape else float("nan")
    video = state_dict["pos_embed_v"].reshape(-1, state_dict["pos_embed_v"].shape[-1]).float()
    ours = video_table(config.hidden_size, *config.video_grid_size)
    report["pos_embed_v"] = {"sincos_3d": float((video - ours).abs().max()) if ours.shape == video.shape else float("nan")}
    return report


def key_table(config: MAViLConfig, prefix: str = "mavil.", ignore: Iterable[str] = ()) -> KeyTable:
    """Official key -> our key. ``prefix`` is ``"mavil."`` for models with heads, ``""`` for :class:`MAViLModel`."""
    rules = {
        "patch_embed.proj.weight": f"{prefix}audio_embeddings.patch_embed.proj.weight",
        "patch_embed.proj.bias": f"{prefix}audio_embeddings.patch_embed.proj.bias",
        "cls_token": f"{prefix}audio_embeddings.cls_token",
        "pos_embed": f"{prefix}audio_embeddings.position_embeddings.table",
        "patch_embed_v.proj.weight": f"{prefix}video_embeddings.patch_embed.proj.weight",
        "patch_embed_v.proj.bias": f"{prefix}video_embeddings.patch_embed.proj.bias",
        "cls_token_v": f"{prefix}video_embeddings.cls_token",
        "pos_embed_v": f"{prefix}video_embeddings.position_embeddings.table",
    }
    for official, ours in STACKS.items():
        for src, dst in TIMM_BLOCK_PARTS.items():
            for param in ("weight", "bias"):
                rules[f"{official}.{{}}.{src}.{param}"] = f"{prefix}{ours}.{{}}.{dst}.{param}"
    if prefix:  # heads exist only on the classification model
        for name in config.classifier_heads:
            norm, head, our_norm, our_head = HEADS[name]
            for param in ("weight", "bias"):
                rules[f"{norm}.{param}"] = f"{our_norm}.{param}"
                rules[f"{head}.{param}"] = f"{our_head}.{param}"
    return KeyTable(rules, ignore=ignore)


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model, ignore: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Map an av-superb state dict onto ``model`` (:class:`MAViLModel` or a model with heads), strictly.

    Args:
        ignore: checkpoint keys (``{}`` = an index) the caller knowingly drops, e.g. heads when converting a
            fine-tuned file into :class:`MAViLModel`. Anything else unmapped is an error.
    """
    prefix = "" if isinstance(model, MAViLModel) else "mavil."
    converted = key_table(model.config, prefix, ignore).convert(state_dict, model)
    return {k: v.reshape(model.state_dict()[k].shape) for k, v in converted.items()}


def load_official_into(model, state_dict: Mapping[str, torch.Tensor], ignore: Iterable[str] = ()):
    """Convert and load ``state_dict`` into ``model`` (strict); returns the model."""
    if model.config.position_tables != "stored":
        raise ValueError(
            "the av-superb position tables are stored values: build the model with position_tables='stored' "
            "(config_from_checkpoint does)"
        )
    model.load_state_dict(convert_state_dict(state_dict, model, ignore), strict=True)
    return model


def convert_official_checkpoint(
    path: str | Path,
    audio_size: tuple[int, int] = (1024, 128),
    video_size: tuple[int, int, int] = (8, 224, 224),
    num_attention_heads: int | None = None,
    **overrides,
):
    """Load an av-superb MAViL ``.pth`` and return ``(model, report)``.

    The model is :class:`MAViLForAudioVisualClassification` when the file has heads, else :class:`MAViLModel` (the
    public MAViL-Base file is a pretrained encoder with 2 fusion layers and no head). ``report`` holds the layout
    read from the keys and :func:`position_table_report`.
    """
    state_dict = unwrap_state_dict(load_official_checkpoint(path), containers=("model",))
    config = config_from_checkpoint(state_dict, audio_size, video_size, num_attention_heads, **overrides)
    model_class = MAViLForAudioVisualClassification if config_has_heads(state_dict) else MAViLModel
    model = load_official_into(model_class(config), state_dict).eval()
    report = {"layout": describe_checkpoint(state_dict), "position_tables": position_table_report(state_dict, config)}
    return model, report


def config_has_heads(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return bool(classifier_heads(state_dict))


# ---------------------------------------------------------------------------------------------------------------------
# The released checkpoint and the pieces conversion/convert_mavil.py plugs into the shared command line.
#
# The "official kwargs" of this family are the keyword arguments av-superb's expert passes to VisionTransformerMM
# (``num_heads`` is the one the weights do not tell; ``n_frm`` the frame count), plus two sizes the expert fixes when it
# replaces the patch embeddings: ``audio_size`` (fbank frames x mel bins, 1024 x 128) and ``video_size`` (frames x
# height x width, n_frm x 224 x 224). Everything else -- depths, heads, widths, token counts -- is read from the keys.

MAVIL_BASE_GDRIVE_ID = "160pJQDQGlNwIb5xWlSc73A713I4uXCtg"  # av-superb hubconf.py, mavil_base
_SLIDES = "Huang et al. 2023 (MAViL, AS-SSL pre-training, after fine-tuning)"


def _presets():
    from .cli import Preset

    results = []
    for dataset, dataset_type, metric, values in (
        ("AudioSet-2M", "agkphysics/AudioSet", "mAP", (48.7, 28.3, 51.9)),
        ("AudioSet-20K", "agkphysics/AudioSet", "mAP", (41.6, 23.7, 44.6)),
        ("VGGSound", "vggsound", "accuracy", (60.6, 50.0, 66.5)),
    ):
        for modality, value in zip(("audio", "video", "audio+video"), values):
            results.append(dict(
                task_type="audio-classification" if modality == "audio" else "video-classification",
                dataset_type=dataset_type, dataset_name=f"{dataset}, {modality} (paper, after fine-tuning)",
                metric_type="map" if metric == "mAP" else "accuracy", metric_name=metric, metric_value=value,
                source=_SLIDES,
            ))
    name = "mavil-base-avsuperb-pretrained"
    return {
        name: Preset(
            name=name,
            url=f"https://drive.google.com/u/0/uc?id={MAVIL_BASE_GDRIVE_ID}&export=download&confirm=t",
            task="encoder",
            official_kwargs=dict(
                patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True, global_pool=True,
                av_fusion=True, depth_av=2, n_frm=8, pos_train=False, ft=False,
                audio_size=[1024, 128], video_size=[8, 224, 224],
            ),
            processor={},  # AudioSet fbank statistics; 8 frames at 2 fps squashed to 224x224, ImageNet statistics
            license="cc-by-nc-4.0",
            datasets=["agkphysics/AudioSet"],
            description="MAViL-Base (ViT-B audio and video encoders, 2 fusion layers) pretrained on AudioSet, as "
            "published by the MAViL authors with their encoder code in AV-SUPERB (roger-tseng/av-superb, "
            "upstream_models/mavil; hubconf mavil_base). Meta released no official MAViL code or weights; which "
            "training stage and data this file corresponds to is not documented. Encoders only (no decoders, no "
            "classifier): use it for features (MAViLModel) or fine-tune MAViLForAudioVisualClassification from it.",
            results=results,
        )
    }


PRESETS = _presets()


def is_mavil_fixture(fixture: Mapping) -> bool:
    """A fixture made with av-superb's ``VisionTransformerMM`` (the MAViL authors' encoder code)."""
    return fixture.get("official_repo") == "roger-tseng/av-superb" and "VisionTransformerMM" in fixture.get("class", "")


def task_from_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``classification`` when the file has a head (``fc_norm_av``/``head_av`` or the uni-modal ones), else ``encoder``.

    (The authors' expert guesses from the substring ``blocks_av.2``; see :func:`describe_checkpoint`.)
    """
    return "classification" if classifier_heads(state_dict) else "encoder"


def _sizes(official_kwargs: Mapping, fixture: Mapping | None) -> tuple[tuple[int, int], tuple[int, int, int]]:
    frames = int(official_kwargs.get("n_frm", 8))
    audio_size = tuple(official_kwargs.get("audio_size", (1024, 128)))
    video_size = tuple(official_kwargs.get("video_size", (frames, 224, 224)))
    if fixture is not None:  # the sizes the fixture's patch embeddings were built for are its input sizes
        shapes = fixture["input_shapes"]
        audio_size = tuple(shapes["input_values"][-2:])
        video_size = (frames, *shapes["pixel_values"][-2:])
    return (int(audio_size[0]), int(audio_size[1])), tuple(int(v) for v in video_size)


def check_kwargs_against_checkpoint(official_kwargs: Mapping, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise naming the keys and shapes where the checkpoint contradicts the given architecture (e.g. a preset's).

    (``patch_size`` is not checked: the expert replaces the patch embeddings after construction.)
    """
    info = describe_checkpoint(state_dict)
    checks = (
        ("embed_dim", "hidden_size", "cls_token", tuple(state_dict["cls_token"].shape)),
        ("depth", "audio_num_hidden_layers", "blocks.{i}.*", f"{info['audio_num_hidden_layers']} blocks"),
        ("depth", "video_num_hidden_layers", "blocks_v.{i}.*", f"{info['video_num_hidden_layers']} blocks"),
        ("depth_av", "fusion_num_hidden_layers", "blocks_av.{i}.*", f"{info['fusion_num_hidden_layers']} blocks"),
    )
    problems = [
        f"{key}: checkpoint {found} vs {kwarg}={official_kwargs[kwarg]}"
        for kwarg, field, key, found in checks
        if kwarg in official_kwargs and int(official_kwargs[kwarg]) != info[field]
    ]
    if problems:
        raise ValueError(
            "the checkpoint does not match the described architecture (check --preset / --official_kwargs): "
            + "; ".join(problems)
        )


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model laid out like ``state_dict`` (the official one): :class:`MAViLModel` for an
    encoder checkpoint, :class:`MAViLForAudioVisualClassification` with the checkpoint's heads otherwise.

    Args:
        official_kwargs: see the comment above ``PRESETS`` (``num_heads``, ``n_frm``, ``audio_size``, ``video_size``).
        task: ``encoder`` or ``classification``; must be what the keys say.
        fixture: a parity fixture (its input shapes give the sizes).
        overrides: further config fields (e.g. ``id2label``).
    """
    if state_dict is None:
        raise ValueError("the MAViL layout is read from the checkpoint's keys: pass state_dict (the official one)")
    expected = task_from_checkpoint(state_dict)
    if task != expected:
        raise ValueError(f"the checkpoint is a MAViL {expected!r} checkpoint (read from its keys), not {task!r}")
    check_kwargs_against_checkpoint(official_kwargs, state_dict)
    audio_size, video_size = _sizes(official_kwargs, fixture)
    heads = official_kwargs.get("num_heads")
    config = config_from_checkpoint(state_dict, audio_size, video_size, int(heads) if heads else None, **overrides)
    if task == "classification":
        if config.num_labels == 527 and "problem_type" not in overrides:
            config.problem_type = "multi_label_classification"  # AudioSet: sigmoid scores
        return MAViLForAudioVisualClassification(config)
    return MAViLModel(config)


def build_processor(config: MAViLConfig, processor_kwargs: Mapping):
    """:class:`MAViLProcessor` at the model's sizes. ``processor_kwargs`` may hold ``feature_extractor`` and
    ``video_processor`` dicts of arguments."""
    from ..models.audiomae import AudioMAEFeatureExtractor
    from ..models.mavil import MAViLProcessor, MAViLVideoProcessor

    unknown = set(processor_kwargs) - {"feature_extractor", "video_processor"}
    if unknown:
        raise ValueError(f"MAViL processor settings take 'feature_extractor' and 'video_processor' dicts, got {unknown}")
    audio = dict(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    audio.update(processor_kwargs.get("feature_extractor", {}))
    video = dict(num_frames=config.num_frames, size={"height": config.image_size, "width": config.image_size})
    video.update(processor_kwargs.get("video_processor", {}))
    return MAViLProcessor(AudioMAEFeatureExtractor(**audio), MAViLVideoProcessor(**video))


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of an av-superb fixture; returns ``(name, ours, official, atol, rtol)`` rows.

    Every layer's token sequences (audio, video, fusion), the expert's pooled per-layer features, the pooled concat;
    with an A+V head also its normed input, the logits, and a forward with the fine-tuning token dropping pinned by
    the fixture's noise (probabilities from ``forward_call``) with the kept indices.
    """
    io, atol, rtol = fixture_io(folder, fixture)
    config = model.config
    audio = io["input_values"]  # [N, 1, T, F]
    # official forward: source video [N, C, T, H, W] cut to the first n_frm frames; ours takes [N, T, C, H, W]
    video = io["pixel_values"][:, :, : config.num_frames].transpose(1, 2).contiguous()
    has_heads = isinstance(model, MAViLForAudioVisualClassification)
    base = model.mavil if has_heads else model
    av_head = has_heads and model.audio_visual_norm is not None
    model.eval()
    rows = {}
    with torch.no_grad():
        out = base(input_values=audio, pixel_values=video, output_hidden_states=True)
        audio_length = out.fused_audio_hidden_state.shape[1]
        ours = {
            "audio_hidden_states": torch.stack(out.audio_hidden_states),
            "video_hidden_states": torch.stack(out.video_hidden_states),
            "fusion_hidden_states": torch.stack(out.fusion_hidden_states),
            "audio_feats": torch.stack([_pool(h) for h in out.audio_hidden_states]),
            "video_feats": torch.stack([_pool(h) for h in out.video_hidden_states]),
        }
        fusion_feats = [
            torch.cat([_pool(h[:, :audio_length]), _pool(h[:, audio_length:])], dim=-1) for h in out.fusion_hidden_states
        ]
        ours["pooled_concat"] = fusion_feats[-1]
        if av_head:
            # expert.py: only the last fusion entry goes through fc_norm_av, and only for a fine-tuned model
            fusion_feats[-1] = model.audio_visual_norm(fusion_feats[-1])
            ours["pooled_normed"] = fusion_feats[-1]
            ours["logits"] = model(input_values=audio, pixel_values=video).logits
        rows = {name: (value, io[name]) for name, value in ours.items() if name in io}
        if "fusion_feats" in io:
            if av_head or "pooled_normed" not in io:
                rows["fusion_feats"] = (torch.stack(fusion_feats), io["fusion_feats"])
            else:  # outputs of a fine-tuned model, whose last entry went through its head's norm, which ours lacks
                rows["fusion_feats[:-1]"] = (torch.stack(fusion_feats[:-1]), io["fusion_feats"][:-1])

        if av_head and "logits_masked" in io:
            # the official forward call's token-dropping probabilities, passed per call as the authors do
            args = forward_call_arguments(fixture)
            probs = dict(
                mask_time_prob=args.get("mask_t_prob", 0.0),
                mask_freq_prob=args.get("mask_f_prob", 0.0),
                mask_video_prob=args.get("mask_v_prob", 0.0),
            )
            captured = {}
            hook = model.audio_visual_norm.register_forward_hook(lambda m, i, o: captured.__setitem__("normed", o))
            try:
                noise = dict(time_noise=io["noise_t"], freq_noise=io["noise_f"], video_noise=io["noise_v"])
                masked = model(input_values=audio, pixel_values=video, **noise, **probs)
            finally:
                hook.remove()
            # the kept indices our model used, against the official argsort of the same noise
            audio_keep, video_keep = model._finetune_masking(
                audio, video.transpose(1, 2), io["noise_t"], io["noise_f"], io["noise_v"], *probs.values()
            )
            rows["logits_masked"] = (masked.logits, io["logits_masked"])
            if "pooled_normed_masked" in io:
                rows["pooled_normed_masked"] = (captured["normed"], io["pooled_normed_masked"])
            if "ids_keep_t" in io and "ids_keep_f" in io:
                freq = io["noise_f"].shape[1]
                expected = (io["ids_keep_t"][:, :, None] * freq + io["ids_keep_f"][:, None, :]).flatten(1)
                rows["ids_keep_audio (from ids_keep_t, ids_keep_f)"] = (audio_keep, expected)
            if "ids_keep_v" in io:
                rows["ids_keep_v"] = (video_keep, io["ids_keep_v"])
    return [(name, ours.detach(), ref, atol, rtol) for name, (ours, ref) in rows.items()]


__all__ = [
    "PRESETS",
    "build_model",
    "build_processor",
    "is_mavil_fixture",
    "task_from_checkpoint",
    "verify_fixture",
    "classifier_heads",
    "config_from_checkpoint",
    "convert_official_checkpoint",
    "convert_state_dict",
    "describe_checkpoint",
    "key_table",
    "load_official_into",
    "position_table_report",
    "stack_depth",
]
