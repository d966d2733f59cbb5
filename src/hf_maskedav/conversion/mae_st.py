"""Official MAE-ST checkpoints (facebookresearch/mae_st and facebookresearch/SlowFast) -> hf_maskedav MAE-ST.

Two layouts exist:

* mae_st ``.pth``: ``{"model": state_dict}`` (the loaders fall back to ``"model_state"``); attention has **separate**
  ``attn.q``/``attn.k``/``attn.v`` Linear layers, which are fused here. Pretraining checkpoints carry the decoder
  (``decoder_embed``, ``mask_token``, ``decoder_cls_token``, ``decoder_pos_embed_*``, ``decoder_blocks``,
  ``decoder_norm``, ``decoder_pred``) -> :class:`MAESTForPreTraining`; fine-tuned ones a ``head``
  -> :class:`MAESTForVideoClassification`.
* PySlowFast ``.pyth``: ``{"model_state": state_dict, "cfg": ...}``; the same encoder names with a **fused**
  ``attn.qkv``. Its MaskMViT decoder (``pred_head.*``, a non-separable ``decoder_pos_embed``, the encoder's cls token
  fed to the decoder, ``frames[:, :, ::2]`` targets) is a different design from mae_st's, so SlowFast pretraining
  checkpoints convert into the encoder (:class:`MAESTModel`, then fine-tune), with the decoder keys dropped
  explicitly. A SlowFast fine-tuned classifier's ``head.projection`` maps onto our head.

In both, the encoder's final ``norm`` maps onto ``mae_st.norm``: the pretraining model applies it to every token,
the classifier to the pooled vector (as the official fine-tuning model, which loads the pretrained ``norm`` there).

Strict accounting: any key nobody maps, a model key left empty or a shape mismatch raises
:class:`~hf_maskedav.conversion.UnmappedKeysError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch

from ..models.mae_st import MAESTConfig, MAESTForPreTraining, MAESTModel
from .utils import KeyTable, fixture_io, forward_call_arguments, load_official_checkpoint, unwrap_state_dict

# mae_st writes "model"; PySlowFast writes "model_state" (mae_st's own loaders fall back to it).
OFFICIAL_CONTAINERS = ("model", "model_state")

# Keys of a pretraining decoder, dropped on purpose when converting into an encoder-only model.
DECODER_PREFIXES = ("decoder_", "dec_pos_embed", "mask_token", "pred_head.")
# Keys of a classification head, dropped on purpose when converting into the bare encoder.
HEAD_PREFIXES = ("head.",)

_BLOCK = {"norm1": "norm1", "norm2": "norm2", "attn.qkv": "attention.qkv_proj", "attn.proj": "attention.o_proj",
          "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


def config_from_official_kwargs(kwargs: Mapping, **overrides) -> MAESTConfig:
    """Our config from the official constructor's keyword arguments (``models_mae.MaskedAutoencoderViT`` or
    ``models_vit.VisionTransformer``). LayerNorm eps is 1e-6, as in every official factory function.

    Raises:
        NotImplementedError: ``sep_pos_embed=False`` or ``cls_embed=False`` (the official scripts force both on, so
            no released model uses them), or non-square frames.
    """
    for flag in ("sep_pos_embed", "cls_embed"):
        if not kwargs.get(flag, True):
            raise NotImplementedError(
                f"{flag}=False is not supported: main_pretrain.py/main_finetune.py force {flag}=True, and every "
                "released MAE-ST uses it"
            )
    image_size = kwargs.get("img_size", 224)
    if isinstance(image_size, (list, tuple)):
        if image_size[0] != image_size[1]:
            raise NotImplementedError(f"non-square frames {image_size} are not supported (the official loss asserts H == W)")
        image_size = image_size[0]
    dim = kwargs.get("embed_dim", 1024)
    mlp_ratio = kwargs.get("mlp_ratio", 4.0)
    fields = dict(
        image_size=image_size,
        patch_size=kwargs.get("patch_size", 16),
        num_channels=kwargs.get("in_chans", 3),
        num_frames=kwargs.get("num_frames", 16),
        tubelet_size=kwargs.get("t_patch_size", 2),
        hidden_size=dim,
        num_hidden_layers=kwargs.get("depth", 24),
        num_attention_heads=kwargs.get("num_heads", 16),
        intermediate_size=int(dim * mlp_ratio),
        qkv_bias=not kwargs.get("no_qkv_bias", False),
        layer_norm_eps=1e-6,
        hidden_dropout_prob=kwargs.get("drop_rate", 0.0),
        attention_probs_dropout_prob=kwargs.get("attn_drop_rate", 0.0),
        drop_path_rate=kwargs.get("drop_path_rate", 0.0),
    )
    if "decoder_embed_dim" in kwargs:
        dec_dim = kwargs["decoder_embed_dim"]
        fields.update(
            decoder_hidden_size=dec_dim,
            decoder_num_hidden_layers=kwargs.get("decoder_depth", 8),
            decoder_num_attention_heads=kwargs.get("decoder_num_heads", 16),
            decoder_intermediate_size=int(dec_dim * mlp_ratio),
            pred_t_dim=kwargs.get("pred_t_dim", 8),
            norm_pix_loss=kwargs.get("norm_pix_loss", False),
        )
    else:
        # The classifier has no decoder: pick a pred_t_dim valid for its clip (one predicted frame per token).
        fields["pred_t_dim"] = fields["num_frames"] // fields["tubelet_size"]
    if "num_classes" in kwargs:
        fields["num_labels"] = kwargs["num_classes"]
        fields["classifier_dropout"] = kwargs.get("dropout", 0.5)
    fields.update(overrides)
    return MAESTConfig(**fields)


_SEPARATE_QKV = re.compile(r"^(.*)attn\.([qkv])\.(weight|bias)$")


def fuse_separate_qkv(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mae_st's ``attn.q``/``attn.k``/``attn.v`` -> one ``attn.qkv`` (rows q, k, v: SlowFast's fused layout)."""
    out, groups = {}, {}
    for key, tensor in state_dict.items():
        match = _SEPARATE_QKV.match(key)
        if match is None:
            out[key] = tensor
        else:
            prefix, name, param = match.groups()
            groups.setdefault((prefix, param), {})[name] = tensor
    for (prefix, param), parts in sorted(groups.items()):
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"{prefix}attn: q, k and v must all have a {param}, found only {sorted(parts)}")
        out[f"{prefix}attn.qkv.{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def key_table(config: MAESTConfig, encoder_only: bool = False) -> KeyTable:
    """Official key (after :func:`fuse_separate_qkv`) -> our key, for mae_st and SlowFast names.

    With ``encoder_only`` the targets are the bare :class:`MAESTModel`'s names (no ``mae_st.`` prefix) and only
    encoder keys are mapped.
    """
    rules = {
        "cls_token": "mae_st.embeddings.cls_token",
        "pos_embed_spatial": "mae_st.embeddings.position_embeddings.spatial",
        "pos_embed_temporal": "mae_st.embeddings.position_embeddings.temporal",
        "pos_embed_class": "mae_st.embeddings.position_embeddings.cls",
        "mask_token": "decoder.mask_token",
        "decoder_cls_token": "decoder.cls_token",
        "decoder_pos_embed_spatial": "decoder.position_embeddings.spatial",
        "decoder_pos_embed_temporal": "decoder.position_embeddings.temporal",
        "decoder_pos_embed_class": "decoder.position_embeddings.cls",
    }
    for param in ("weight", "bias"):
        rules[f"patch_embed.proj.{param}"] = f"mae_st.embeddings.patch_embed.proj.{param}"
        rules[f"norm.{param}"] = f"mae_st.norm.{param}"
        rules[f"head.{param}"] = f"classifier.{param}"
        rules[f"head.projection.{param}"] = f"classifier.{param}"  # SlowFast TransformerBasicHead
        rules[f"decoder_embed.{param}"] = f"decoder.decoder_embed.{param}"
        rules[f"decoder_norm.{param}"] = f"decoder.norm.{param}"
        rules[f"decoder_pred.{param}"] = f"decoder.pred.{param}"
        for src, dst in _BLOCK.items():
            rules[f"blocks.{{}}.{src}.{param}"] = f"mae_st.layers.{{}}.{dst}.{param}"
            rules[f"decoder_blocks.{{}}.{src}.{param}"] = f"decoder.layers.{{}}.{dst}.{param}"
    if encoder_only:
        rules = {src: dst[len("mae_st.") :] for src, dst in rules.items() if dst.startswith("mae_st.")}
    return KeyTable(rules)


def is_slowfast_decoder(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for a PySlowFast MaskMViT pretraining state dict (its decoder is not mae_st's)."""
    return any(k.startswith(("pred_head.", "dec_pos_embed")) or k == "decoder_pos_embed" for k in state_dict)


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map an official state dict (mae_st or SlowFast) onto ``model`` (any of our MAE-ST classes), strictly.

    Decoder keys are dropped deliberately when ``model`` has no decoder (encoder or classifier); the bare encoder
    (:class:`MAESTModel`) also drops a classification head.
    """
    state_dict = dict(state_dict)
    encoder_only = isinstance(model, MAESTModel)
    if encoder_only:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    if isinstance(model, MAESTForPreTraining):
        if is_slowfast_decoder(state_dict):
            raise NotImplementedError(
                "this is a PySlowFast MaskMViT pretraining checkpoint: its decoder (pred_head, non-separable "
                "decoder_pos_embed, encoder cls token fed to the decoder, frames[:, :, ::2] targets) differs from "
                "mae_st's. Convert it into MAESTModel (the encoder) and fine-tune from there."
            )
    else:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(DECODER_PREFIXES)}
    return key_table(model.config, encoder_only).convert(fuse_separate_qkv(state_dict), model)


def load_official_into(model, state_dict: Mapping[str, torch.Tensor]):
    """Convert and load an official state dict into ``model`` (strict); returns the model."""
    model.load_state_dict(convert_state_dict(state_dict, model), strict=True)
    return model


def load_official_checkpoint_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an official ``.pth``/``.pyth`` (container ``model`` or ``model_state``), loaded with
    ``weights_only=True``."""
    return unwrap_state_dict(load_official_checkpoint(path), containers=OFFICIAL_CONTAINERS)




# ------------------------------------------------------------------------------ conversion script (conversion/convert_mae_st.py)

_MAE_ST_URL = "https://dl.fbaipublicfiles.com/video-mae/pretrain/mae_pretrain_vit_{size}_{dataset}.pth"
_SLOWFAST_URL = "https://dl.fbaipublicfiles.com/pyslowfast/masked_models/{file}"
_SIZES = {"base": (768, 12, 12), "large": (1024, 24, 16), "huge": (1280, 32, 16)}  # the released ViT-H uses patch 16


def _encoder_kwargs(size: str) -> dict:
    dim, depth, heads = _SIZES[size]
    return dict(img_size=224, patch_size=16, embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=4.0,
                num_frames=16, t_patch_size=2, sep_pos_embed=True, cls_embed=True)


def _presets():
    from .cli import Preset

    presets = {}
    names = {"k400": "Kinetics-400", "k600": "Kinetics-600", "k700": "Kinetics-700"}
    for size in ("large", "huge"):
        for dataset, name in names.items():
            preset = f"mae-st-{size}-{dataset}-pretrained"
            presets[preset] = Preset(
                name=preset, url=_MAE_ST_URL.format(size=size, dataset=dataset), task="encoder",
                official_kwargs=_encoder_kwargs(size), processor=dict(frame_sampling_rate=4), license="cc-by-nc-4.0",
                description=f"MAE-ST ViT-{size[0].upper()} self-supervised on {name} (90% random space-time masking, "
                "1600 effective epochs; facebookresearch/mae_st release, converted by the authors from PySlowFast). "
                "Encoder only (decoder weights are not converted): fine-tune with MAESTForVideoClassification.",
            )
    for size, file, top1 in (("base", "VIT_B_16x4_MAE_PT.pyth", 81.3), ("large", "VIT_L_16x4_MAE_PT.pyth", 84.8),
                             ("huge", "VIT_H_16x4_MAE_PT_400e_85.1.pyth", 85.1)):
        preset = f"mae-st-{size}-k400-slowfast-pretrained"
        presets[preset] = Preset(
            name=preset, url=_SLOWFAST_URL.format(file=file), task="encoder", official_kwargs=_encoder_kwargs(size),
            processor=dict(frame_sampling_rate=4), license="apache-2.0",
            description=f"MAE-ST ViT-{size[0].upper()} self-supervised on Kinetics-400 in PySlowFast (projects/mae). "
            "Encoder only: the MaskMViT decoder differs from mae_st's and is not converted.",
            results=[dict(task_type="video-classification", dataset_type="kinetics400",
                          dataset_name="Kinetics-400 (after fine-tuning, 16x4, 3x7 views)", metric_type="accuracy",
                          metric_name="top-1", metric_value=top1, source="SlowFast projects/mae README")],
        )
    return presets


PRESETS = _presets()


def task_from_kwargs(kwargs: Mapping) -> str:
    """``models_vit`` (fine-tuning) takes ``num_classes``; ``models_mae`` takes the decoder's sizes; else the encoder."""
    if "num_classes" in kwargs:
        return "classification"
    return "pretraining" if "decoder_embed_dim" in kwargs else "encoder"


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model: ``pretraining`` (with decoder), ``classification`` or ``encoder``."""
    from ..models.mae_st import MAESTForVideoClassification

    config = config_from_official_kwargs(official_kwargs, **overrides)
    classes = {"pretraining": MAESTForPreTraining, "classification": MAESTForVideoClassification, "encoder": MAESTModel}
    if task not in classes:
        raise ValueError(f"task must be one of {sorted(classes)}, got {task!r}")
    return classes[task](config)


def build_processor(config, processor_kwargs: Mapping):
    from ..models.mae_st import MAESTVideoProcessor

    kwargs = dict(num_frames=config.num_frames, size={"shortest_edge": config.image_size},
                  crop_size={"height": config.image_size, "width": config.image_size})
    kwargs.update(processor_kwargs)
    return MAESTVideoProcessor(**kwargs)


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of an official-code fixture; returns ``(name, ours, official, atol, rtol)`` rows."""
    io, atol, rtol = fixture_io(folder, fixture)
    ratio = forward_call_arguments(fixture).get("mask_ratio")
    pixel_values = io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]
    model.eval()
    with torch.no_grad():
        if isinstance(model, MAESTForPreTraining):
            out = model(pixel_values, noise=io["noise"], mask_ratio=ratio)
            encoded = model.mae_st(pixel_values, noise=io["noise"], mask_ratio=ratio)
            ours = {
                "loss": out.loss.reshape(1), "pred": out.logits, "mask": out.mask, "ids_restore": out.ids_restore,
                "ids_keep": encoded.ids_keep,
                "latent": out.last_hidden_state[:, 1:], "encoder_output_with_cls": out.last_hidden_state,
                "target": model.reconstruction_target(pixel_values),
                "target_frame_indices": model.target_frame_indices(pixel_values.shape[1]),
            }
        elif isinstance(model, MAESTModel):
            ours = {"encoder_output_with_cls": model(pixel_values, noise=io.get("noise"), mask_ratio=ratio).last_hidden_state}
        else:
            out = model(pixel_values, output_hidden_states=True)
            encoded, _ = model.mae_st.encode(pixel_values)
            ours = {
                "logits": out.logits,
                "last_block_output": out.hidden_states[-1],
                "pooled_normed": model.mae_st.norm(encoded.last_hidden_state[:, 1:].mean(dim=1)),
            }
    return [(name, value.detach(), io[name], atol, rtol) for name, value in ours.items() if name in io]


__all__ = [
    "DECODER_PREFIXES",
    "HEAD_PREFIXES",
    "OFFICIAL_CONTAINERS",
    "PRESETS",
    "build_model",
    "build_processor",
    "task_from_kwargs",
    "verify_fixture",
    "config_from_official_kwargs",
    "convert_state_dict",
    "fuse_separate_qkv",
    "is_slowfast_decoder",
    "key_table",
    "load_official_checkpoint_file",
    "load_official_into",
]
