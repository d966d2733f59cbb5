"""VideoMAE checkpoints -> hf_maskedav VideoMAE, from the official code and from transformers' VideoMAE.

Official checkpoints (MCG-NJU/VideoMAE, Google-Drive ``.pth``):

* pretraining: ``{"model": state_dict}`` with ``encoder.*``, ``encoder_to_decoder.weight``, ``mask_token``,
  ``decoder.*`` keys -> :class:`MaskedAVVideoMAEForPreTraining`;
* fine-tuned: ``{"module": state_dict}`` (DeepSpeed) with ``patch_embed.*``, ``blocks.*``, ``fc_norm.*``, ``head.*``
  -> :class:`MaskedAVVideoMAEForVideoClassification`.

Attention keeps the official layout (fused ``qkv.weight`` without bias, ``q_bias``, ``v_bias``). The fixed sinusoid
tables are never in these checkpoints; our models rebuild them.

transformers' VideoMAE (the Hub's ``MCG-NJU/videomae-*`` repos, or a model in memory): separate ``query``/``key``/
``value`` weights are fused, ``q_bias``/``v_bias`` (on-disk names) or ``query.bias``/``value.bias`` (in-memory names)
become our ``q_bias``/``v_bias``, and :func:`config_from_transformers` copies the config's quirks (LayerNorm eps
1e-12 in the blocks but 1e-5 in ``decoder.norm``/``fc_norm``, the final encoder norm only without mean pooling,
ImageNet un-normalisation of the target).

Every conversion is strict: an official key nobody maps, a model key left empty or a shape mismatch raises
:class:`~hf_maskedav.conversion.UnmappedKeysError` listing all of them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models.videomae import (
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEForPreTraining,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEModel,
)
from .utils import KeyTable, fixture_io, load_official_checkpoint, unwrap_state_dict

# Official VideoMAE containers: pretraining saves "model", DeepSpeed fine-tuning "module".
OFFICIAL_CONTAINERS = ("model", "module")

_BLOCK = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attn.proj": "attention.o_proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def _check_supported(kwargs: Mapping) -> None:
    if kwargs.get("use_learnable_pos_emb", False):
        raise NotImplementedError(
            "use_learnable_pos_emb=True is not supported: every released VideoMAE uses the fixed sinusoid table"
        )
    if kwargs.get("init_values", 0.0):
        raise NotImplementedError(
            "layer scale (init_values > 0) is not supported: every released VideoMAE uses init_values=0"
        )
    if kwargs.get("cos_attn", False):
        raise NotImplementedError(
            "cos_attn=True (VideoMAE V2's cosine attention option) is not supported: no released V2 checkpoint or "
            "official script uses it"
        )


def config_from_official_kwargs(kwargs: Mapping, **overrides) -> MaskedAVVideoMAEConfig:
    """Our config from the official constructor's keyword arguments.

    Args:
        kwargs: arguments of ``modeling_pretrain.PretrainVisionTransformer`` (``encoder_embed_dim``, ``decoder_depth``
            ...) or of ``modeling_finetune.VisionTransformer`` (``embed_dim``, ``all_frames``, ``num_classes`` ...),
            of VideoMAE (MCG-NJU) or VideoMAE V2 (OpenGVLab; the remote-code Hub repos' ``model_config`` too, whose
            ``num_frames`` is ``all_frames``).
        overrides: further config fields (e.g. ``decoder_mask_ratio=0.5`` for V2 pretraining).

    V1's pretraining model builds its patch embedding without ``num_frames``, so it is always 16 frames; V2's takes
    ``all_frames``. V2's ``head_drop_rate`` is V1's ``fc_drop_rate``; ``with_cp`` (gradient checkpointing) changes no
    number. LayerNorms use eps 1e-6 as every registered official model function.
    """
    _check_supported(kwargs)
    pretraining = "encoder_embed_dim" in kwargs
    prefix = "encoder_" if pretraining else ""
    dim = kwargs.get(f"{prefix}embed_dim", 768)
    mlp_ratio = kwargs.get("mlp_ratio", 4.0)
    fields = dict(
        image_size=kwargs.get("img_size", 224),
        patch_size=kwargs.get("patch_size", 16),
        num_channels=kwargs.get("encoder_in_chans" if pretraining else "in_chans", 3),
        num_frames=kwargs.get("all_frames", kwargs.get("num_frames", 16)),
        tubelet_size=kwargs.get("tubelet_size", 2),
        hidden_size=dim,
        num_hidden_layers=kwargs.get(f"{prefix}depth", 12),
        num_attention_heads=kwargs.get(f"{prefix}num_heads", 12),
        intermediate_size=int(dim * mlp_ratio),
        qkv_bias=bool(kwargs.get("qkv_bias", False)),
        layer_norm_eps=1e-6,
        hidden_dropout_prob=kwargs.get("drop_rate", 0.0),
        attention_probs_dropout_prob=kwargs.get("attn_drop_rate", 0.0),
        drop_path_rate=kwargs.get("drop_path_rate", 0.0),
    )
    if kwargs.get("qk_scale") is not None:
        raise NotImplementedError("qk_scale other than head_dim**-0.5 is not supported (never used officially)")
    if pretraining:
        dec_dim = kwargs.get("decoder_embed_dim", 384)
        fields.update(
            decoder_hidden_size=dec_dim,
            decoder_num_hidden_layers=kwargs.get("decoder_depth", 4),
            decoder_num_attention_heads=kwargs.get("decoder_num_heads", 6),
            decoder_intermediate_size=int(dec_dim * mlp_ratio),
        )
        expected = fields["num_channels"] * fields["tubelet_size"] * fields["patch_size"] ** 2
        if kwargs.get("decoder_num_classes", expected) != expected:
            raise ValueError(
                f"decoder_num_classes={kwargs['decoder_num_classes']} is not channels * tubelet * patch**2 = {expected}"
            )
    else:
        fields.update(
            num_labels=kwargs.get("num_classes", 1000),
            use_mean_pooling=kwargs.get("use_mean_pooling", True),
            classifier_dropout=kwargs.get("head_drop_rate", kwargs.get("fc_drop_rate", 0.0)),
            head_init_scale=kwargs.get("init_scale", 0.001),
        )
    fields.update(overrides)
    return MaskedAVVideoMAEConfig(**fields)


def key_table(config: MaskedAVVideoMAEConfig, encoder_only: bool = False) -> KeyTable:
    """Official key -> our key, for the pretraining (``encoder.*``) and fine-tuning layouts.

    A leading ``backbone.`` is treated like ``encoder.`` (the official fine-tuning loader strips both). With
    ``encoder_only`` the targets are the bare :class:`MaskedAVVideoMAEModel`'s names and only encoder keys are mapped.
    """
    rules = {
        "mask_token": "decoder.mask_token",
        "encoder_to_decoder.weight": "decoder.encoder_to_decoder.weight",
        "decoder.norm.weight": "decoder.norm.weight",
        "decoder.norm.bias": "decoder.norm.bias",
        "decoder.head.weight": "decoder.head.weight",
        "decoder.head.bias": "decoder.head.bias",
        "fc_norm.weight": "fc_norm.weight",
        "fc_norm.bias": "fc_norm.bias",
        "head.weight": "classifier.weight",
        "head.bias": "classifier.bias",
    }
    for prefix in ("", "encoder.", "backbone."):
        for param in ("weight", "bias"):
            rules[f"{prefix}patch_embed.proj.{param}"] = f"videomae.embeddings.patch_embed.proj.{param}"
            rules[f"{prefix}norm.{param}"] = f"videomae.norm.{param}"
        rules.update(_block_rules(f"{prefix}blocks.{{}}.", "videomae.layers.{}."))
    rules.update(_block_rules("decoder.blocks.{}.", "decoder.layers.{}."))
    return KeyTable(_encoder_only(rules) if encoder_only else rules)


def _encoder_only(rules: Mapping[str, str]) -> dict[str, str]:
    return {src: dst[len("videomae.") :] for src, dst in rules.items() if dst.startswith("videomae.")}


# Keys that the bare encoder (MaskedAVVideoMAEModel) drops on purpose: the pretraining decoder and a classifier head.
NON_ENCODER_KEYS = re.compile(
    r"^(decoder\.|encoder_to_decoder\.|mask_token$|head\.|fc_norm\.|classifier\.)"
)


def _drop_non_encoder(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    if not isinstance(model, MaskedAVVideoMAEModel):
        return dict(state_dict)
    return {k: v for k, v in state_dict.items() if not NON_ENCODER_KEYS.match(k)}


def _block_rules(src: str, dst: str) -> dict[str, str]:
    rules = {}
    for name, ours in _BLOCK.items():
        for param in ("weight", "bias"):
            rules[f"{src}{name}.{param}"] = f"{dst}{ours}.{param}"
    rules[f"{src}attn.qkv.weight"] = f"{dst}attention.qkv_proj.weight"
    rules[f"{src}attn.q_bias"] = f"{dst}attention.q_bias"
    rules[f"{src}attn.v_bias"] = f"{dst}attention.v_bias"
    return rules


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map an official state dict onto ``model`` (any of our VideoMAE classes) with strict key accounting.

    Into the bare encoder (:class:`MaskedAVVideoMAEModel`) the decoder and head keys are dropped on purpose.
    """
    encoder_only = isinstance(model, MaskedAVVideoMAEModel)
    return key_table(model.config, encoder_only).convert(_drop_non_encoder(state_dict, model), model)


def load_official_into(model, state_dict: Mapping[str, torch.Tensor]):
    """Convert and load an official state dict into ``model`` (strict); returns the model."""
    model.load_state_dict(convert_state_dict(state_dict, model), strict=True)
    return model


def load_official_checkpoint_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an official ``.pth`` (container ``model`` or ``module``), loaded with ``weights_only=True``."""
    return unwrap_state_dict(load_official_checkpoint(path), containers=OFFICIAL_CONTAINERS)


# --------------------------------------------------------------------------------------- transformers' VideoMAE


def config_from_transformers(hf_config, **overrides) -> MaskedAVVideoMAEConfig:
    """Our config from a transformers ``VideoMAEConfig`` (or its ``config.json`` dict), keeping its behaviour.

    transformers' VideoMAE: blocks use ``layer_norm_eps`` (1e-12 on the Hub), ``decoder.norm`` and ``fc_norm`` use
    ``nn.LayerNorm``'s default 1e-5, the encoder has a final norm only with ``use_mean_pooling=False``, and the
    pretraining target un-normalises with the ImageNet statistics (only for 3 channels).
    """
    cfg = hf_config if isinstance(hf_config, Mapping) else hf_config.to_dict()
    if cfg.get("model_type", "videomae") != "videomae":
        raise ValueError(f"expected a transformers VideoMAE config (model_type 'videomae'), got {cfg.get('model_type')!r}")
    patch = cfg.get("patch_size", 16)
    if isinstance(patch, (list, tuple)):
        if patch[0] != patch[1]:
            raise NotImplementedError(f"non-square patches {patch} are not supported")
        patch = patch[0]
    channels = cfg.get("num_channels", 3)
    use_mean_pooling = cfg.get("use_mean_pooling", True)
    fields = dict(
        image_size=cfg.get("image_size", 224),
        patch_size=patch,
        num_channels=channels,
        num_frames=cfg.get("num_frames", 16),
        tubelet_size=cfg.get("tubelet_size", 2),
        hidden_size=cfg.get("hidden_size", 768),
        num_hidden_layers=cfg.get("num_hidden_layers", 12),
        num_attention_heads=cfg.get("num_attention_heads", 12),
        intermediate_size=cfg.get("intermediate_size", 3072),
        hidden_act=cfg.get("hidden_act", "gelu"),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        head_layer_norm_eps=1e-5,
        qkv_bias=cfg.get("qv_bias", cfg.get("qkv_bias", True)),
        hidden_dropout_prob=cfg.get("hidden_dropout_prob", 0.0),
        attention_probs_dropout_prob=cfg.get("attention_probs_dropout_prob", 0.0),
        initializer_range=cfg.get("initializer_range", 0.02),
        decoder_hidden_size=cfg.get("decoder_hidden_size", 384),
        decoder_num_hidden_layers=cfg.get("decoder_num_hidden_layers", 4),
        decoder_num_attention_heads=cfg.get("decoder_num_attention_heads", 6),
        decoder_intermediate_size=cfg.get("decoder_intermediate_size", 1536),
        norm_pix_loss=cfg.get("norm_pix_loss", True),
        use_mean_pooling=use_mean_pooling,
        use_final_norm=not use_mean_pooling,
    )
    if channels != 3:  # transformers does not un-normalise non-RGB input
        fields.update(pixel_mean=[0.0] * channels, pixel_std=[1.0] * channels)
    if cfg.get("id2label"):
        fields["id2label"] = {int(k): v for k, v in cfg["id2label"].items()}
    if cfg.get("problem_type") is not None:
        fields["problem_type"] = cfg["problem_type"]
    fields.update(overrides)
    return MaskedAVVideoMAEConfig(**fields)


def _fuse_transformers_attention(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fuse ``query``/``key``/``value`` weights into ``qkv.weight`` and name the biases ``q_bias``/``v_bias``."""
    out, prefixes = {}, set()
    for key in state_dict:
        if ".attention.attention." in key:
            prefixes.add(key.split(".attention.attention.")[0] + ".attention.attention.")
    for key, tensor in state_dict.items():
        if not any(key.startswith(p) for p in prefixes):
            out[key] = tensor
    for prefix in sorted(prefixes):
        names = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if "key.bias" in names and bool(names["key.bias"].abs().max() > 0):
            raise ValueError(f"{prefix}key.bias is non-zero, but VideoMAE attention has no key bias")
        names.pop("key.bias", None)
        try:
            out[prefix + "qkv.weight"] = torch.cat([names.pop(f"{n}.weight") for n in ("query", "key", "value")])
        except KeyError as error:
            raise ValueError(f"{prefix}: missing attention weight {error}") from error
        for ours, candidates in (("q_bias", ("q_bias", "query.bias")), ("v_bias", ("v_bias", "value.bias"))):
            found = [c for c in candidates if c in names]
            if found:
                out[prefix + ours] = names.pop(found[0])
                for extra in found[1:]:
                    names.pop(extra)
        for leftover in names:  # left for the key table to report
            out[prefix + leftover] = names[leftover]
    return out


def transformers_key_table(config: MaskedAVVideoMAEConfig, encoder_only: bool = False) -> KeyTable:
    """transformers VideoMAE key (after :func:`_fuse_transformers_attention`) -> our key."""
    layer = {
        "layernorm_before": "norm1",
        "layernorm_after": "norm2",
        "attention.output.dense": "attention.o_proj",
        "intermediate.dense": "mlp.fc1",
        "output.dense": "mlp.fc2",
    }
    rules = {
        "mask_token": "decoder.mask_token",
        "encoder_to_decoder.weight": "decoder.encoder_to_decoder.weight",
    }
    for param in ("weight", "bias"):
        rules[f"videomae.embeddings.patch_embeddings.projection.{param}"] = f"videomae.embeddings.patch_embed.proj.{param}"
        rules[f"videomae.layernorm.{param}"] = f"videomae.norm.{param}"
        rules[f"decoder.norm.{param}"] = f"decoder.norm.{param}"
        rules[f"decoder.head.{param}"] = f"decoder.head.{param}"
        rules[f"fc_norm.{param}"] = f"fc_norm.{param}"
        rules[f"classifier.{param}"] = f"classifier.{param}"
        for src, dst in (("videomae.encoder.layer.{}.", "videomae.layers.{}."), ("decoder.decoder_layers.{}.", "decoder.layers.{}.")):
            for name, ours in layer.items():
                rules[f"{src}{name}.{param}"] = f"{dst}{ours}.{param}"
    for src, dst in (("videomae.encoder.layer.{}.", "videomae.layers.{}."), ("decoder.decoder_layers.{}.", "decoder.layers.{}.")):
        rules[f"{src}attention.attention.qkv.weight"] = f"{dst}attention.qkv_proj.weight"
        rules[f"{src}attention.attention.q_bias"] = f"{dst}attention.q_bias"
        rules[f"{src}attention.attention.v_bias"] = f"{dst}attention.v_bias"
    return KeyTable(_encoder_only(rules) if encoder_only else rules)


def convert_transformers_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map a transformers VideoMAE state dict (on-disk or in-memory names) onto ``model``, strictly."""
    state_dict = dict(state_dict)
    if "videomae.embeddings.patch_embeddings.projection.weight" not in state_dict and any(
        k.startswith("embeddings.") for k in state_dict
    ):  # a bare VideoMAEModel saved without prefix
        state_dict = {f"videomae.{k}": v for k, v in state_dict.items()}
    encoder_only = isinstance(model, MaskedAVVideoMAEModel)
    state_dict = _drop_non_encoder(state_dict, model)
    return transformers_key_table(model.config, encoder_only).convert(_fuse_transformers_attention(state_dict), model)


_ARCHITECTURES = {
    "VideoMAEModel": MaskedAVVideoMAEModel,
    "VideoMAEForPreTraining": MaskedAVVideoMAEForPreTraining,
    "VideoMAEForVideoClassification": MaskedAVVideoMAEForVideoClassification,
}


def local_model_folder(source) -> Path:
    """``source`` itself when it is a folder, else the Hub repo ``source`` downloaded (config and weights only)."""
    folder = Path(source)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(source), allow_patterns=["config.json", "*.safetensors", "*.bin"]))
    return folder


def read_model_folder(source) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json as a dict, state dict)`` of a Hub-format folder or repo (``*.safetensors`` or
    ``pytorch_model.bin``); used for transformers' VideoMAE repos and VideoMAE V2's remote-code repos."""
    folder = local_model_folder(source)
    config = json.loads((folder / "config.json").read_text())
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        from safetensors.torch import load_file

        state_dict = {}
        for file in weights:
            state_dict.update(load_file(str(file)))
    elif (folder / "pytorch_model.bin").is_file():
        state_dict = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")
    return config, state_dict


def load_transformers_videomae(source, model_class=None, **config_overrides):
    """Build our VideoMAE from a checkpoint in transformers' VideoMAE format.

    Args:
        source: a transformers ``VideoMAEModel``/``VideoMAEForPreTraining``/``VideoMAEForVideoClassification``
            instance, a folder written by its ``save_pretrained``, or a Hub repo id (e.g.
            ``"MCG-NJU/videomae-base-finetuned-kinetics"``; downloaded with ``huggingface_hub``).
        model_class: our class to build; by default the counterpart of the checkpoint's architecture.
        config_overrides: fields to change in the converted config.

    Returns:
        The model, in eval mode, with every weight loaded (strict).
    """
    if isinstance(source, torch.nn.Module):
        hf_config, state_dict = source.config.to_dict(), source.state_dict()
        architecture = type(source).__name__
    else:
        hf_config, state_dict = read_model_folder(source)
        architecture = (hf_config.get("architectures") or ["VideoMAEModel"])[0]
    if model_class is None:
        if architecture not in _ARCHITECTURES:
            raise ValueError(f"unknown VideoMAE architecture {architecture!r}; pass model_class")
        model_class = _ARCHITECTURES[architecture]
    model = model_class(config_from_transformers(hf_config, **config_overrides))
    model.load_state_dict(convert_transformers_state_dict(state_dict, model), strict=True)
    return model.eval()




# ----------------------------------------------------------------------------- conversion script (conversion/convert_videomae.py)

_DRIVE = "https://drive.google.com/uc?export=download&confirm=t&id={}"
_ZOO = "MCG-NJU/VideoMAE MODEL_ZOO.md"
# encoder (dim, depth, heads) and the decoder of the released pretraining scripts (dim, depth, heads)
_SIZES = {
    "small": ((384, 12, 6), (192, 4, 3)),
    "base": ((768, 12, 12), (384, 4, 6)),
    "large": ((1024, 24, 16), (512, 12, 8)),
    "huge": ((1280, 32, 16), (640, 12, 8)),
}
# name, classes, frame sampling rate, temporal sampling at test time (SSv2: TSN-style segments), dataset type
_DATASETS = {
    "k400": ("Kinetics-400", 400, 4, "center", "kinetics400"),
    "ssv2": ("Something-Something V2", 174, 2, "uniform", "something-something-v2"),
    "ucf101": ("UCF101", 101, 4, "center", "ucf101"),
}


def _pretrain_kwargs(size: str) -> dict:
    (dim, depth, heads), (dec_dim, dec_depth, dec_heads) = _SIZES[size]
    return dict(
        img_size=224, patch_size=16, encoder_embed_dim=dim, encoder_depth=depth, encoder_num_heads=heads,
        decoder_num_classes=1536, decoder_embed_dim=dec_dim, decoder_depth=dec_depth, decoder_num_heads=dec_heads,
        mlp_ratio=4.0, qkv_bias=True, tubelet_size=2, use_learnable_pos_emb=False, init_values=0.0,
    )


def _finetune_kwargs(size: str, num_classes: int) -> dict:
    dim, depth, heads = _SIZES[size][0]
    return dict(
        img_size=224, patch_size=16, embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=4.0, qkv_bias=True,
        num_classes=num_classes, all_frames=16, tubelet_size=2, use_mean_pooling=True, init_scale=0.001,
        use_learnable_pos_emb=False, init_values=0.0,
    )


def _presets():
    from .cli import Preset

    rows = [  # size, dataset, epochs, pretrained Drive id, fine-tuned Drive id, top-1
        ("small", "k400", 1600, "1nU-H1u3eJ-VuyCveU7v-WIOcAVxs5Hww", "1ygjLRm1kvs9mwGsP3lLxUExhRo6TWnrx", 79.0),
        ("base", "k400", 800, "1JfrhN144Hdg7we213H1WxwR3lGYOlmIn", "18EGdXY9347yK3Yb28O-GxFMbk41F6Ne", 80.0),
        ("base", "k400", 1600, "1tEhLyskjb755TJ65ptsrafUG2llSwQE1", "1MzwteHH-1yuMnFb8vRBQDvngV1Zl-d3z", 81.5),
        ("large", "k400", 1600, "1qLOXWb_MGEvaI7tvuAe94CV7S2HXRwT3", "1jX1CiqxSkCfc94y8FRW1YGHy-GNvHCuD", 85.2),
        ("huge", "k400", 1600, "1AJQR1Rsi2N1pDn9tLyJ8DQrUREiBA1bO", "104ouJZxSVPSAm0LwJXd6IzjdA_RGLqZi", 86.6),
        ("small", "ssv2", 2400, "1p_I1aaONOeUvRmRQw1UT3-L2H8XJClHu", "1ajlMrT06jiiM-5YjNI2X_UFyzsuYbbtZ", 66.8),
        ("base", "ssv2", 800, "181hLvyrrPW2IOGA46fkxdJk0tNLIgdB2", "1xZCiaPF4w7lYmLt5o1D5tIZyDdLtJAvH", 69.6),
        ("base", "ssv2", 2400, "1I18dY_7rSalGL8fPWV82c0-foRUDzJJk", "1dt_59tBIyzdZd5Ecr22lTtzs_64MOZkT", 70.8),
        ("base", "ucf101", 3200, "1BHev4meNgKM0o_8DMRbuzAsKSP3IpQ3o", "1MSyon6fPpKz7oqD6WDGPFK4k_Rbyb6fw", 91.3),
    ]
    presets = {}
    for size, dataset, epochs, pretrained_id, finetuned_id, top1 in rows:
        name, classes, rate, sampling, dataset_type = _DATASETS[dataset]
        stem = f"videomae-{size}-{dataset}-{epochs}ep"
        result = dict(task_type="video-classification", dataset_type=dataset_type, dataset_name=f"{name} (16 frames)",
                      metric_type="accuracy", metric_name="top-1", metric_value=top1, source=_ZOO)
        presets[f"{stem}-pretrained"] = Preset(
            name=f"{stem}-pretrained", url=_DRIVE.format(pretrained_id), task="pretraining",
            official_kwargs=_pretrain_kwargs(size), processor=dict(frame_sampling_rate=rate), license="cc-by-nc-4.0",
            description=f"VideoMAE ViT-{size[0].upper()} self-supervised on {name} ({epochs} epochs, tube masking "
            f"{'75' if dataset == 'ucf101' else '90'}%). The published accuracy is after fine-tuning.",
            results=[result],
        )
        presets[f"{stem}-finetuned"] = Preset(
            name=f"{stem}-finetuned", url=_DRIVE.format(finetuned_id), task="classification",
            official_kwargs=_finetune_kwargs(size, classes),
            processor=dict(frame_sampling_rate=rate, temporal_sampling=sampling), license="cc-by-nc-4.0",
            description=f"VideoMAE ViT-{size[0].upper()} pretrained ({epochs} epochs) and fine-tuned on {name} "
            f"({classes} classes). Class names are not in the checkpoint: pass --labels_csv.",
            results=[result],
        )
    return presets


PRESETS = _presets()


def task_from_kwargs(kwargs: Mapping) -> str:
    """``modeling_pretrain.PretrainVisionTransformer`` takes ``encoder_embed_dim``; the fine-tuning model does not."""
    return "pretraining" if "encoder_embed_dim" in kwargs else "classification"


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model of the official architecture."""
    config = config_from_official_kwargs(official_kwargs, **overrides)
    if task == "classification":
        return MaskedAVVideoMAEForVideoClassification(config)
    return MaskedAVVideoMAEForPreTraining(config)


def build_processor(config, processor_kwargs: Mapping):
    from ..models.videomae import MaskedAVVideoMAEVideoProcessor

    height, width = config.image_hw
    # the config's pixel statistics are the one source: the processor normalises with what the target un-normalises
    kwargs = dict(num_frames=config.num_frames, size={"shortest_edge": min(height, width)},
                  crop_size={"height": height, "width": width},
                  image_mean=list(config.pixel_mean), image_std=list(config.pixel_std))
    kwargs.update(processor_kwargs)
    processor = MaskedAVVideoMAEVideoProcessor(**kwargs)
    config.check_video_processor(processor)
    return processor


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of an official-code fixture; returns ``(name, ours, official, atol, rtol)`` rows."""
    from ..layers import gather_tokens

    io, atol, rtol = fixture_io(folder, fixture)
    pixel_values = io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]
    model.eval()
    with torch.no_grad():
        if isinstance(model, MaskedAVVideoMAEForPreTraining):
            mask = io["bool_masked_pos"].bool()
            out = model(pixel_values, bool_masked_pos=mask)
            ids_masked = torch.argsort(mask.long(), dim=1, stable=True)[:, -int(mask[0].sum()) :]
            ours = {
                "logits": out.logits, "loss": out.loss.reshape(1), "encoder_output": out.last_hidden_state,
                "labels": gather_tokens(model.reconstruction_target(pixel_values, normalize=True), ids_masked),
                "labels_no_norm": gather_tokens(model.reconstruction_target(pixel_values, normalize=False), ids_masked),
                "encoder_pos_embed": model.videomae.embeddings.position_embeddings.table,
                "decoder_pos_embed": model.decoder.position_embeddings.table,
            }
        elif isinstance(model, MaskedAVVideoMAEModel):
            mask = io["bool_masked_pos"].bool()
            ours = {"encoder_output": model(pixel_values, bool_masked_pos=mask).last_hidden_state}
        else:
            out = model(pixel_values, output_hidden_states=True)
            hidden = model.videomae(pixel_values).last_hidden_state  # no final norm under mean pooling
            ours = {
                "logits": out.logits,
                "last_block_output": out.hidden_states[-1],
                "pooled_normed": model.fc_norm(hidden.mean(dim=1)) if model.fc_norm is not None else hidden[:, 0],
                "pos_embed": model.videomae.embeddings.position_embeddings.table,
            }
    return [(name, value.detach(), io[name], atol, rtol) for name, value in ours.items() if name in io]


__all__ = [
    "OFFICIAL_CONTAINERS",
    "PRESETS",
    "build_model",
    "build_processor",
    "task_from_kwargs",
    "verify_fixture",
    "config_from_official_kwargs",
    "config_from_transformers",
    "convert_state_dict",
    "convert_transformers_state_dict",
    "key_table",
    "load_official_checkpoint_file",
    "load_official_into",
    "load_transformers_videomae",
    "transformers_key_table",
]


# ----------------------------------------------------------------- transformers-format repos in the conversion script


def from_transformers(source):
    """``conversion/convert_videomae.py --transformers_checkpoint``: our model and its task from a transformers repo."""
    model = load_transformers_videomae(source)
    if isinstance(model, MaskedAVVideoMAEForVideoClassification):
        return model, "classification"
    return model, "pretraining" if isinstance(model, MaskedAVVideoMAEForPreTraining) else "encoder"


def verify_against_transformers(model, source, seed: int = 0):
    """Run transformers' own VideoMAE from ``source`` and ``model`` on one seeded clip (and tube mask); returns rows."""
    import transformers

    from ..layers import tube_masking

    folder = local_model_folder(source)
    architecture = (json.loads((folder / "config.json").read_text()).get("architectures") or ["VideoMAEModel"])[0]
    reference = getattr(transformers, architecture).from_pretrained(folder).eval()
    config = reference.config
    generator = torch.Generator().manual_seed(seed)
    size = config.image_size
    pixel_values = torch.randn(1, config.num_frames, config.num_channels, size, size, generator=generator)
    inputs = {"pixel_values": pixel_values}
    if architecture != "VideoMAEForVideoClassification":
        grid = size // config.patch_size
        inputs["bool_masked_pos"] = tube_masking(
            1, config.num_frames // config.tubelet_size, grid * grid, 0.9, generator=generator
        )
    with torch.no_grad():
        expected, ours = reference(**inputs), model(**inputs)
    names = ("loss", "logits", "last_hidden_state")
    return [
        (name, getattr(ours, name).detach(), getattr(expected, name).detach(), 1e-5, 1e-4)
        for name in names
        if getattr(expected, name, None) is not None and getattr(ours, name, None) is not None
    ]
