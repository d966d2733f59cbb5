"""Official MaskFeat / MViTv2 checkpoints (facebookresearch/SlowFast ``.pyth``) -> hf_maskedav MaskFeat.

SlowFast saves ``{"epoch", "model_state", "optimizer_state", "cfg"}``; ``cfg`` is the merged YAML config the model
was built from. From it:

* :func:`config_from_slowfast_cfg` -- the ``cfg`` (YAML text or dict) -> :class:`MaskFeatConfig`; options the port
  does not implement raise ``NotImplementedError`` naming the option (nothing is silently dropped).
* :func:`key_table` / :func:`convert_state_dict` -- strict key accounting for the three official layouts:
  ``MaskMViT`` pre-training (mask token, ``pred_head``, HOG Sobel buffers), ``MViT`` classifiers (``norm``,
  ``head.projection``) and the bare encoder. The Sobel buffers ``hogs.0.weight_{x,y}`` are fixed constants: they
  are compared with ours and not loaded.
* :func:`load_official_into` -- convert and load (strict); :func:`load_pretrained_encoder` loads a pre-training
  checkpoint into a classifier's encoder for fine-tuning (the official fine-tuning starts the same way).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import yaml

from ..layers.hog import sobel_kernels
from ..models.maskfeat import MaskFeatConfig, MaskFeatModel
from .utils import KeyTable


def _cfg_dict(cfg) -> dict:
    if isinstance(cfg, str):
        cfg = yaml.safe_load(cfg)
    if not isinstance(cfg, Mapping) or "MVIT" not in cfg:
        raise ValueError("expected a SlowFast config (YAML text or dict with an MVIT section)")
    return dict(cfg)


def _unsupported(condition: bool, option: str, why: str) -> None:
    if condition:
        raise NotImplementedError(f"SlowFast option {option} is not supported by this port: {why}")


def config_from_slowfast_cfg(cfg, for_classification: bool | None = None, **overrides) -> MaskFeatConfig:
    """Build our config from a SlowFast config (``checkpoint["cfg"]`` or a fixture's ``cfg_yaml``).

    Args:
        cfg: YAML text or the parsed dict.
        for_classification: set ``num_labels`` from ``MODEL.NUM_CLASSES`` (default: when ``MASK.ENABLE`` is off).
        overrides: further config fields.
    """
    cfg = _cfg_dict(cfg)
    mvit, data, mask, aug, model = cfg["MVIT"], cfg["DATA"], cfg.get("MASK", {}), cfg.get("AUG", {}), cfg["MODEL"]
    pretraining = bool(mask.get("ENABLE", False))
    if for_classification is None:
        for_classification = not pretraining

    _unsupported(mvit.get("POOL_FIRST", False), "MVIT.POOL_FIRST=True", "only pooling after the qkv projection")
    _unsupported(mvit.get("MODE", "conv") != "conv", f"MVIT.MODE={mvit.get('MODE')!r}", "only 'conv' pooling")
    _unsupported(mvit.get("SEPARATE_QKV", False), "MVIT.SEPARATE_QKV=True", "only the fused qkv projection")
    _unsupported(mvit.get("DIM_MUL_IN_ATT", False), "MVIT.DIM_MUL_IN_ATT=True", "the MaskFeat models widen in the MLP")
    _unsupported(not mvit.get("CLS_EMBED_ON", True), "MVIT.CLS_EMBED_ON=False", "the MaskFeat models use a cls token")
    _unsupported(mvit.get("NORM", "layernorm") != "layernorm", f"MVIT.NORM={mvit.get('NORM')!r}", "only layernorm")
    _unsupported(mvit.get("NORM_STEM", False), "MVIT.NORM_STEM=True", "no stem norm in the MaskFeat models")
    _unsupported(mvit.get("REV", {}).get("ENABLE", False), "MVIT.REV.ENABLE=True", "reversible MViT is not ported")
    _unsupported(mvit.get("USE_FIXED_SINCOS_POS", False), "MVIT.USE_FIXED_SINCOS_POS=True", "learned positions only")
    _unsupported(cfg.get("DETECTION", {}).get("ENABLE", False), "DETECTION.ENABLE=True", "classification only")
    if pretraining:
        _unsupported(mask.get("MAE_ON", False), "MASK.MAE_ON=True", "that is MAE(-ST), not MaskFeat")
        _unsupported(not mask.get("PRED_HOG", False), "MASK.PRED_HOG=False", "only the HOG target is ported")
        _unsupported(mask.get("HEAD_TYPE", "separate") != "separate", f"MASK.HEAD_TYPE={mask.get('HEAD_TYPE')!r}",
                     "only the LayerNorm + Linear head")
        _unsupported(len(mask.get("PRETRAIN_DEPTH", [])) != 1, "several MASK.PRETRAIN_DEPTH",
                     "one prediction depth (every official config has one)")
        _unsupported(mask.get("MAE_RND_MASK", False), "MASK.MAE_RND_MASK=True", "masks come from the loader")

    patch_2d = bool(mvit.get("PATCH_2D", False))
    uses_pooling = any(
        bool(mvit.get(name)) for name in ("POOL_Q_STRIDE", "POOL_KV_STRIDE_ADAPTIVE", "DIM_MUL", "HEAD_MUL",
                                          "REL_POS_SPATIAL", "REL_POS_TEMPORAL", "RESIDUAL_POOLING")
    )
    crop = int(data["TRAIN_CROP_SIZE"])
    if int(data.get("TEST_CROP_SIZE", crop)) != crop:
        raise ValueError("DATA.TRAIN_CROP_SIZE and DATA.TEST_CROP_SIZE differ (the official MViT asserts they are equal)")
    use_abs = bool(mvit.get("USE_ABS_POS", True))
    _unsupported(patch_2d and use_abs and mvit.get("SEP_POS_EMBED", False), "SEP_POS_EMBED with PATCH_2D",
                 "separable positions are for video")
    fields = dict(
        backbone="mvit" if uses_pooling else "vit",
        image_size=crop,
        num_frames=1 if patch_2d else int(data["NUM_FRAMES"]),
        num_channels=int(data.get("INPUT_CHANNEL_NUM", [3])[0]),
        patch_kernel_size=[int(v) for v in mvit["PATCH_KERNEL"]],
        patch_stride=[int(v) for v in mvit["PATCH_STRIDE"]],
        patch_padding=[int(v) for v in mvit["PATCH_PADDING"]],
        hidden_size=int(mvit["EMBED_DIM"]),
        num_hidden_layers=int(mvit["DEPTH"]),
        num_attention_heads=int(mvit["NUM_HEADS"]),
        mlp_ratio=float(mvit.get("MLP_RATIO", 4.0)),
        qkv_bias=bool(mvit.get("QKV_BIAS", True)),
        hidden_dropout_prob=float(mvit.get("DROPOUT_RATE", 0.0)),
        drop_path_rate=float(mvit.get("DROPPATH_RATE", 0.0)),
        use_absolute_position_embeddings=use_abs,
        separate_position_embeddings=bool(use_abs and mvit.get("SEP_POS_EMBED", False)),
        image_mean=[float(v) for v in data.get("MEAN", [0.45] * 3)],
        image_std=[float(v) for v in data.get("STD", [0.225] * 3)],
        use_mean_pooling=bool(mvit.get("USE_MEAN_POOLING", False)),
        classifier_dropout=float(model.get("DROPOUT_RATE", 0.0)),
        head_init_scale=float(mvit.get("HEAD_INIT_SCALE", 1.0)),
    )
    if uses_pooling:
        adaptive = mvit.get("POOL_KV_STRIDE_ADAPTIVE")
        fields.update(
            dim_mul=[[int(b), float(m)] for b, m in mvit.get("DIM_MUL", [])],
            head_mul=[[int(b), float(m)] for b, m in mvit.get("HEAD_MUL", [])],
            pool_q_stride=[[int(v) for v in entry] for entry in mvit.get("POOL_Q_STRIDE", [])],
            pool_kv_stride_adaptive=[int(v) for v in adaptive] if adaptive is not None else None,
            # the official constructor rewrites POOL_KV_STRIDE from the adaptive stride; keep it only without one
            pool_kv_stride=[] if adaptive is not None else [[int(v) for v in e] for e in mvit.get("POOL_KV_STRIDE", [])],
            pool_kernel_size=[int(v) for v in mvit["POOL_KVQ_KERNEL"]] if mvit.get("POOL_KVQ_KERNEL") else None,
            residual_pooling=bool(mvit.get("RESIDUAL_POOLING", False)),
            rel_pos_spatial=bool(mvit.get("REL_POS_SPATIAL", False)),
            rel_pos_temporal=bool(mvit.get("REL_POS_TEMPORAL", False)),
            rel_pos_zero_init=bool(mvit.get("REL_POS_ZERO_INIT", False)),
        )
    if pretraining:
        fields.update(
            pretrain_depth=int(mask["PRETRAIN_DEPTH"][-1]),
            mask_ratio=float(aug.get("MASK_RATIO", 0.4)),
            # images: the official loader draws the mask on the prediction grid (our default)
            mask_window_size=None if patch_2d else [int(v) for v in aug.get("MASK_WINDOW_SIZE", [8, 7, 7])],
            max_mask_patches_per_block=aug.get("MAX_MASK_PATCHES_PER_BLOCK"),
        )
    if for_classification:
        fields["num_labels"] = int(model["NUM_CLASSES"])
    fields.update(overrides)
    return MaskFeatConfig(**fields)


def key_table(config: MaskFeatConfig, prefix: str = "maskfeat.", pretraining_keys: str = "map") -> KeyTable:
    """Official key -> our key.

    Args:
        config: our config (selects the ViT or MViTv2 block layout).
        prefix: where the encoder lives in our model (``""`` for a bare :class:`MaskFeatModel`).
        pretraining_keys: ``"map"`` (load ``mask_token`` and ``pred_head``) or ``"ignore"`` (fine-tuning from a
            pre-training checkpoint: skip them).
    """
    p = prefix
    rules = {
        "patch_embed.proj.weight": f"{p}embeddings.projection.weight",
        "patch_embed.proj.bias": f"{p}embeddings.projection.bias",
        "cls_token": f"{p}embeddings.cls_token",
        "pos_embed": f"{p}embeddings.position_embeddings",
        "pos_embed_spatial": f"{p}embeddings.space_time_position_embeddings.spatial",
        "pos_embed_temporal": f"{p}embeddings.space_time_position_embeddings.temporal",
        "pos_embed_class": f"{p}embeddings.space_time_position_embeddings.cls",
        "norm.weight": "norm.weight",
        "norm.bias": "norm.bias",
        "head.projection.weight": "classifier.weight",
        "head.projection.bias": "classifier.bias",
    }
    ignore = ["hogs.{}.weight_x", "hogs.{}.weight_y"]  # fixed Sobel kernels, checked in convert_state_dict
    pretraining = {
        "mask_token": f"{p}embeddings.mask_token",
        "pred_head.transforms.0.0.weight": "head.norm.weight",
        "pred_head.transforms.0.0.bias": "head.norm.bias",
        "pred_head.projections.0.weight": "head.projection.weight",
        "pred_head.projections.0.bias": "head.projection.bias",
    }
    if pretraining_keys == "map":
        rules.update(pretraining)
    else:
        ignore += list(pretraining)
    block = {"norm1": "norm1", "attn.qkv": "attention.qkv_proj", "attn.proj": "attention.o_proj", "norm2": "norm2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    if config.backbone == "mvit":
        block.update({"attn.norm_q": "attention.norm_q", "attn.norm_k": "attention.norm_k",
                      "attn.norm_v": "attention.norm_v", "proj": "skip_proj"})
        for name in ("pool_q", "pool_k", "pool_v"):
            rules[f"blocks.{{}}.attn.{name}.weight"] = f"{p}encoder.layers.{{}}.attention.{name}.weight"
        for name in ("rel_pos_h", "rel_pos_w", "rel_pos_t"):
            rules[f"blocks.{{}}.attn.{name}"] = f"{p}encoder.layers.{{}}.attention.{name}"
    for src, dst in block.items():
        for param in ("weight", "bias"):
            rules[f"blocks.{{}}.{src}.{param}"] = f"{p}encoder.layers.{{}}.{dst}.{param}"
    return KeyTable(rules, ignore=ignore)


def check_sobel_buffers(state_dict: Mapping[str, torch.Tensor], num_channels: int = 3) -> None:
    """The official HOG layer stores its Sobel kernels; they must be the standard ones we rebuild."""
    weight_x, weight_y = sobel_kernels(num_channels)
    for key, tensor in state_dict.items():
        if key.startswith("hogs.") and key.endswith(("weight_x", "weight_y")):
            expected = weight_x if key.endswith("weight_x") else weight_y
            if tensor.shape != expected.shape or not torch.equal(tensor.float(), expected):
                raise ValueError(f"{key}: the checkpoint's HOG Sobel kernel is not the standard one the port uses")


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model, pretraining_keys: str = "map") -> dict:
    """Map an official state dict onto ``model`` (any MaskFeat class) with strict key accounting."""
    prefix = "" if isinstance(model, MaskFeatModel) else "maskfeat."
    check_sobel_buffers(state_dict, model.config.num_channels)
    return key_table(model.config, prefix, pretraining_keys).convert(state_dict, model)


def load_official_into(model, state_dict: Mapping[str, torch.Tensor]):
    """Convert and load ``state_dict`` into ``model`` (strict); returns the model."""
    model.load_state_dict(convert_state_dict(state_dict, model), strict=True)
    return model


def load_pretrained_encoder(model, state_dict: Mapping[str, torch.Tensor]):
    """Load a MaskFeat *pre-training* checkpoint into a classifier's encoder (``model.maskfeat``) for fine-tuning.

    The mask token, HOG head and Sobel buffers are skipped (fine-tuning has none); ``norm`` and the classifier keep
    their initialisation, as in the official fine-tuning. Every encoder weight must be in the checkpoint.
    """
    encoder = model.maskfeat
    converted = convert_state_dict(state_dict, encoder, pretraining_keys="ignore")
    encoder.load_state_dict(converted, strict=True)
    return model


__all__ = [
    "check_sobel_buffers",
    "config_from_slowfast_cfg",
    "convert_state_dict",
    "key_table",
    "load_official_into",
    "load_pretrained_encoder",
]
