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
from .utils import KeyTable, fixture_io


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


# ---------------------------------------------------------------------------------------------------------------------
# Released checkpoints and the pieces conversion/convert_maskfeat.py plugs into the shared command line.
#
# A SlowFast model is built from its config (``MaskMViT(cfg)``), so the "official kwargs" of this family are a SlowFast
# config: the sections of the official yaml files (configs/masked_ssl/*_MaskFeat_PT.yaml @ SlowFast 287ec00) that
# decide the architecture. Options the yaml files leave out keep SlowFast's defaults, as config_from_slowfast_cfg does.

_PYSLOWFAST_URL = "https://dl.fbaipublicfiles.com/pyslowfast/masked_models/{file}"
_README = "SlowFast projects/maskfeat README (Wei et al. 2022)"


def _pool_q_stride(strides: list[tuple[int, int, int]]) -> list[list[int]]:
    return [[block, *stride] for block, stride in enumerate(strides)]


def _image_pt_cfg(dim: int, depth: int, heads: int) -> dict:
    """``in1k_VIT_{B,L}_MaskFeat_PT.yaml``."""
    return {
        "DATA": {"NUM_FRAMES": 1, "TRAIN_CROP_SIZE": 224, "TEST_CROP_SIZE": 224, "INPUT_CHANNEL_NUM": [3],
                 "MEAN": [0.485, 0.456, 0.406], "STD": [0.229, 0.224, 0.225]},
        "MVIT": {"PATCH_2D": True, "MODE": "conv", "CLS_EMBED_ON": True, "PATCH_KERNEL": [16, 16],
                 "PATCH_STRIDE": [16, 16], "PATCH_PADDING": [0, 0], "EMBED_DIM": dim, "NUM_HEADS": heads,
                 "MLP_RATIO": 4.0, "QKV_BIAS": True, "DROPPATH_RATE": 0.0, "DEPTH": depth, "NORM": "layernorm"},
        "MASK": {"ENABLE": True, "PRETRAIN_DEPTH": [depth - 1], "HEAD_TYPE": "separate", "PRED_HOG": True},
        "AUG": {"GEN_MASK_LOADER": True, "MASK_RATIO": 0.4},
        "MODEL": {"ARCH": "maskmvit", "MODEL_NAME": "MaskMViT", "LOSS_FUNC": "multi_mse", "DROPOUT_RATE": 0.0},
    }


def _video_pt_cfg(dim: int, depth: int, heads: int, stages: list[int]) -> dict:
    """``k400_MVITv2_{S,L}_16x4_MaskFeat_PT.yaml``: query pooling (1, 2, 2) at the first two stage starts; the third
    keeps (1, 1, 1) "for 14x14 output" (the official yaml comment)."""
    strides = [(1, 1, 1)] * depth
    for block in stages[:2]:
        strides[block] = (1, 2, 2)
    multipliers = [[block, 2.0] for block in stages]
    return {
        "DATA": {"NUM_FRAMES": 16, "SAMPLING_RATE": 4, "TRAIN_CROP_SIZE": 224, "TEST_CROP_SIZE": 224,
                 "INPUT_CHANNEL_NUM": [3], "MEAN": [0.45, 0.45, 0.45], "STD": [0.225, 0.225, 0.225]},
        "MVIT": {"DEPTH": depth, "NUM_HEADS": heads, "EMBED_DIM": dim, "PATCH_KERNEL": [3, 7, 7],
                 "PATCH_STRIDE": [2, 4, 4], "PATCH_PADDING": [1, 3, 3], "MLP_RATIO": 4.0, "QKV_BIAS": True,
                 "NORM": "layernorm", "DIM_MUL": multipliers, "HEAD_MUL": multipliers,
                 "POOL_Q_STRIDE": _pool_q_stride(strides), "POOL_KVQ_KERNEL": [3, 3, 3],
                 "POOL_KV_STRIDE_ADAPTIVE": [1, 8, 8], "DROPPATH_RATE": 0.0, "CLS_EMBED_ON": True,
                 "USE_ABS_POS": False, "SEP_POS_EMBED": True, "REL_POS_SPATIAL": True, "REL_POS_TEMPORAL": True,
                 "RESIDUAL_POOLING": True, "MODE": "conv"},
        "MASK": {"ENABLE": True, "PRETRAIN_DEPTH": [depth - 1], "HEAD_TYPE": "separate", "PRED_HOG": True},
        "AUG": {"GEN_MASK_LOADER": True, "MASK_RATIO": 0.4, "MASK_TUBE": False, "MASK_FRAMES": False,
                "MASK_WINDOW_SIZE": [8, 7, 7]},
        "MODEL": {"ARCH": "maskmvit", "MODEL_NAME": "MaskMViT", "LOSS_FUNC": "multi_mse", "DROPOUT_RATE": 0.0},
    }


def _presets():
    from .cli import Preset

    image_processor = {}  # MaskFeatImageProcessor defaults: short side 256 bicubic, centre crop 224, ImageNet stats
    video_processor = {"frame_sampling_rate": 4}  # 16 frames every 4, short side 256, crop 224, mean 0.45 / std 0.225
    presets = {}
    for size, dim, depth, heads, file, top1 in (
        ("base", 768, 12, 12, "in1k_VIT_B_MaskFeat_PT_epoch_01600.pyth", 84.0),
        ("large", 1024, 24, 16, "in1k_VIT_L_MaskFeat_PT_epoch_01600.pyth", 85.7),
    ):
        name = f"maskfeat-vit-{size}-in1k-pretrained"
        presets[name] = Preset(
            name=name, url=_PYSLOWFAST_URL.format(file=file), task="image-pretraining",
            official_kwargs=_image_pt_cfg(dim, depth, heads), processor=image_processor, license="apache-2.0",
            datasets=["ILSVRC/imagenet-1k"],
            description=f"MaskFeat ViT-{size[0].upper()}/16 self-supervised on ImageNet-1K (1600 epochs, 40% block "
            "masking, HOG targets; PySlowFast release). Encoder + the HOG prediction head of pre-training: use it as "
            "an encoder (AutoModel) or fine-tune it (MaskFeatForImageClassification).",
            results=[dict(task_type="image-classification", dataset_type="ILSVRC/imagenet-1k",
                          dataset_name="ImageNet-1K (after fine-tuning, 224x224)", metric_type="accuracy",
                          metric_name="top-1", metric_value=top1, source=_README)],
        )
    for size, dim, depth, heads, stages, file, top1 in (
        ("small", 96, 16, 1, [1, 3, 14], "k400_MVIT_S_MaskFeat_PT_epoch_00300.pyth", 82.2),
        ("large", 144, 48, 2, [2, 8, 44], "k400_MVIT_L_MaskFeat_PT_epoch_00800.pyth", 84.3),
    ):
        name = f"maskfeat-mvitv2-{size}-16x4-k400-pretrained"
        epochs = file.split("_epoch_")[1].split(".")[0].lstrip("0")
        presets[name] = Preset(
            name=name, url=_PYSLOWFAST_URL.format(file=file), task="video-pretraining",
            official_kwargs=_video_pt_cfg(dim, depth, heads, stages), processor=video_processor, license="apache-2.0",
            datasets=["kinetics400"],
            description=f"MaskFeat MViTv2-{size[0].upper()} 16x4 self-supervised on Kinetics-400 ({epochs} epochs, 40% "
            "cube masking, HOG targets; PySlowFast release). Encoder + the HOG prediction head of pre-training. The "
            "last stage keeps 14x14 tokens as in pre-training; the official fine-tuning pools it to 7x7 "
            f"(MaskFeatConfig.from_preset('mvitv2-{size}-16x4') + load_pretrained_encoder).",
            results=[dict(task_type="video-classification", dataset_type="kinetics400",
                          dataset_name="Kinetics-400 (after fine-tuning, 16x4, 1x10 views)", metric_type="accuracy",
                          metric_name="top-1", metric_value=top1, source=_README)],
        )
    return presets


PRESETS = _presets()


def is_maskfeat_fixture(fixture: Mapping) -> bool:
    """A SlowFast fixture of a MaskFeat pre-training model or an MViT classifier (SlowFast's ``MaskMViT`` with
    ``MASK.MAE_ON`` is MAE-ST, not MaskFeat; other architectures are not MViT at all)."""
    if fixture.get("official_repo") != "facebookresearch/SlowFast" or "cfg_yaml" not in fixture:
        return False
    cfg = yaml.safe_load(fixture["cfg_yaml"]) or {}
    return cfg.get("MODEL", {}).get("MODEL_NAME") in ("MaskMViT", "MViT") and not cfg.get("MASK", {}).get("MAE_ON")


def task_from_kwargs(cfg) -> str:
    """``image-``/``video-`` + ``pretraining`` (``MASK.ENABLE``, a ``MaskMViT``) or ``classification`` (``MViT``)."""
    if not cfg:
        raise ValueError(
            "no SlowFast config: this checkpoint stores none (checkpoint['cfg']); give the architecture with --preset "
            "or --official_kwargs <JSON of the SlowFast config sections MVIT, DATA, MASK, AUG, MODEL>"
        )
    cfg = _cfg_dict(cfg)
    modality = "image" if cfg["MVIT"].get("PATCH_2D", False) else "video"
    return f"{modality}-{'pretraining' if cfg.get('MASK', {}).get('ENABLE', False) else 'classification'}"


def kwargs_from_checkpoint(checkpoint) -> dict | None:
    """The SlowFast config stored in a ``.pyth`` (``checkpoint["cfg"]``, YAML text), parsed; None when absent."""
    cfg = checkpoint.get("cfg") if isinstance(checkpoint, Mapping) else None
    if cfg is None:
        return None
    return _cfg_dict(cfg)


def build_model(official_kwargs, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model of the official architecture.

    Args:
        official_kwargs: the SlowFast config (dict or YAML text); empty -> the fixture's ``cfg_yaml``.
        task: ``image-pretraining``, ``video-pretraining``, ``image-classification`` or ``video-classification``.
        overrides: further config fields (e.g. ``id2label``).
    """
    from ..models.maskfeat import MaskFeatForImageClassification, MaskFeatForPreTraining, MaskFeatForVideoClassification

    cfg = official_kwargs or (fixture or {}).get("cfg_yaml")
    expected = task_from_kwargs(cfg)
    if task != expected:
        raise ValueError(f"the SlowFast config describes a {expected!r} model, not {task!r}")
    config = config_from_slowfast_cfg(cfg, **overrides)
    if task.endswith("pretraining"):
        return MaskFeatForPreTraining(config)
    return (MaskFeatForVideoClassification if config.is_video else MaskFeatForImageClassification)(config)


def build_processor(config, processor_kwargs: Mapping):
    """SlowFast's test transform at the model's size: short side ``crop / 0.875`` (256 for 224), centre crop."""
    from ..models.maskfeat import MaskFeatImageProcessor, MaskFeatVideoProcessor

    side = config.image_size
    kwargs = dict(size={"shortest_edge": int(round(side / 0.875))}, crop_size={"height": side, "width": side},
                  image_mean=list(config.image_mean), image_std=list(config.image_std))
    if config.is_video:
        kwargs["num_frames"] = config.num_frames
    kwargs.update(processor_kwargs)
    return (MaskFeatVideoProcessor if config.is_video else MaskFeatImageProcessor)(**kwargs)


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of a SlowFast fixture; returns ``(name, ours, official, atol, rtol)`` rows.

    Pre-training: predictions and HOG targets (masked rows and every token), the loss, the last block's output, the raw
    HOG map, the masks at prediction and at patch resolution. Classifiers: the train-mode logits, the eval-mode
    probabilities (the official head applies ``MODEL.HEAD_ACT`` in eval mode; ours returns logits) and the normed
    pooled features.
    """
    from ..models.maskfeat import MaskFeatForPreTraining
    from ..models.maskfeat.modeling_maskfeat import resize_mask

    io, atol, rtol = fixture_io(folder, fixture)
    config = model.config
    pixels = io["pixel_values"]  # SlowFast layout: [N, C, H, W] or [N, C, T, H, W]
    pixel_values = pixels.permute(0, 2, 1, 3, 4) if config.is_video else pixels  # ours: [N, T, C, H, W]
    was_training = model.training
    try:
        with torch.no_grad():
            if isinstance(model, MaskFeatForPreTraining):
                model.eval()
                out = model(pixel_values, bool_masked_pos=io["mask"])
                if config.is_video:
                    strided = pixels[:, :, :: config.patch_stride[0]]  # [N, C, T', H, W]
                    hog_map = model.hog(strided.transpose(1, 2).flatten(0, 1))
                    hog_map = hog_map.reshape(pixels.shape[0], strided.shape[2], *hog_map.shape[1:])
                else:
                    hog_map = model.hog(pixels)
                mask_grid = io["mask"] if config.is_video else io["mask"][:, None]
                ours = {
                    "pred": out.logits[out.mask],
                    "target": out.hog_targets[out.mask],
                    "loss": out.loss.reshape(1),
                    "last_block_output": out.last_hidden_state,
                    "pred_all_tokens": out.logits,
                    "hog_target_all_tokens": out.hog_targets,
                    "hog_map": hog_map,
                    "bool_masked_pos": out.mask,
                    "bool_masked_pos_embed": resize_mask(mask_grid, config.patch_grid).bool(),
                }
            else:
                cfg = _cfg_dict(fixture["cfg_yaml"]) if "cfg_yaml" in fixture else {}
                activation = cfg.get("MODEL", {}).get("HEAD_ACT", "softmax")
                model.train()  # the fixture's train-mode output (its configs have no dropout or drop-path)
                ours = {"logits": model(pixel_values).logits}
                model.eval()
                logits = model(pixel_values).logits
                ours["probs"] = {"softmax": logits.softmax(-1), "sigmoid": logits.sigmoid()}.get(activation, logits)
                if config.use_mean_pooling:
                    ours["pooled_normed"] = model.norm(model.maskfeat(pixel_values).last_hidden_state[:, 1:].mean(1))
    finally:
        model.train(was_training)
    return [(name, value.detach(), io[name], atol, rtol) for name, value in ours.items() if name in io]


__all__ = [
    "PRESETS",
    "build_model",
    "build_processor",
    "is_maskfeat_fixture",
    "kwargs_from_checkpoint",
    "task_from_kwargs",
    "verify_fixture",
    "check_sobel_buffers",
    "config_from_slowfast_cfg",
    "convert_state_dict",
    "key_table",
    "load_official_into",
    "load_pretrained_encoder",
]
