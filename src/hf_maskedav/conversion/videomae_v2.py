"""VideoMAE V2 checkpoints (OpenGVLab/VideoMAEv2) -> hf_maskedav VideoMAE (the same classes; dual masking is
``config.decoder_mask_ratio``).

V2's models are V1's with a few constructor options (``all_frames`` on the pretraining model, ``cos_attn``,
``head_drop_rate``, ``with_cp``), so the key table and the checks are those of :mod:`.videomae`. What is V2's own:

* containers: pretraining ``{"model": ...}``, DeepSpeed fine-tuning ``{"module": ...}`` (the distilled ViT-S/B too);
  on torch > 1.13.1 the official pretraining script wraps the model in ``torch.compile``, so its checkpoints carry
  ``_orig_mod.`` on every key -- stripped here, as the official fine-tuning loader does;
* pretraining conversions get ``decoder_mask_ratio=0.5`` (running cell, all four released ``vit_*_hybrid_pt.sh``);
* the remote-code Hub repos ``OpenGVLab/VideoMAEv2-{Base,Large,Huge,giant}``: ``config.json`` holds the official
  ``VisionTransformer`` kwargs under ``model_config`` (``num_frames`` for ``all_frames``), the weights are that
  model's under a ``model.`` prefix, and the repos are encoder-only (``num_classes=0``: the output is
  ``fc_norm(mean of tokens)``). They convert into :class:`MaskedAVVideoMAEForVideoClassification` with
  ``num_labels=0`` (no head: ``logits`` are those pooled features), or with the head when the repo has one.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..models.videomae import MaskedAVVideoMAEForPreTraining, MaskedAVVideoMAEForVideoClassification
from . import videomae as v1
from .utils import fixture_io

OFFICIAL_CONTAINERS = ("model", "module")
COMPILE_PREFIX = "_orig_mod."
# all four released pretraining scripts: --decoder_mask_type run_cell --decoder_mask_ratio 0.5
RELEASED_DECODER_MASK_RATIO = 0.5


def strip_compile_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``_orig_mod.`` that ``torch.compile`` puts on every key (official V2 pretraining on new torch)."""
    if state_dict and all(k.startswith(COMPILE_PREFIX) for k in state_dict):
        return {k[len(COMPILE_PREFIX) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """An official V2 state dict (compiled or not) onto any of our VideoMAE classes, strictly."""
    return v1.convert_state_dict(strip_compile_prefix(state_dict), model)


def task_from_kwargs(kwargs: Mapping) -> str:
    return v1.task_from_kwargs(kwargs)


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model of the official V2 architecture; pretraining with the released dual masking."""
    if task == "pretraining":
        overrides.setdefault("decoder_mask_ratio", RELEASED_DECODER_MASK_RATIO)
    return v1.build_model(official_kwargs, task, **overrides)


build_processor = v1.build_processor


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on a V2 fixture's inputs (both masks for pretraining, ``model(x, bool_masked_pos,
    decode_masked_pos)``, the engine's loss, and decoder masking off as the official argparse default);
    ``(name, ours, official, atol, rtol)`` rows."""
    if not isinstance(model, MaskedAVVideoMAEForPreTraining):
        return v1.verify_fixture(model, folder, fixture)
    from ..layers import gather_tokens, ids_from_bool_mask, masked_mse, running_cell_mask

    io, atol, rtol = fixture_io(folder, fixture)
    pixel_values = io["pixel_values"].permute(0, 2, 1, 3, 4)  # official [N, C, T, H, W] -> ours [N, T, C, H, W]
    mask, decode_mask = io["bool_masked_pos"], io["decode_masked_pos"]
    grid = model.videomae.embeddings.patch_embed.grid_size(*io["pixel_values"].shape[-3:])
    ids_decoded = ids_from_bool_mask(decode_mask).ids_keep  # reconstructed tokens, ascending
    model.eval()
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=mask, decode_masked_pos=decode_mask)
        labels_no_norm = gather_tokens(model.reconstruction_target(pixel_values, normalize=False), ids_decoded)
        counted = torch.gather(mask, 1, ids_decoded)
        # decoder masking off (the official argparse default): V1 decoding
        v1_out = model(pixel_values, bool_masked_pos=mask, decoder_mask_ratio=0.0)
        ids_masked = ids_from_bool_mask(~mask).ids_keep
        ours = {
            "logits": out.logits,
            "loss": out.loss.reshape(1),
            "encoder_output": out.last_hidden_state,
            "labels": gather_tokens(model.reconstruction_target(pixel_values, normalize=True), ids_decoded),
            "labels_no_norm": labels_no_norm,
            "cal_loss_mask": counted,
            "loss_no_norm_target": masked_mse(out.logits, labels_no_norm, counted).reshape(1),
            "logits_no_decoder_mask": v1_out.logits,
            "labels_no_decoder_mask": gather_tokens(model.reconstruction_target(pixel_values), ids_masked),
            "loss_no_decoder_mask": v1_out.loss.reshape(1),
            "encoder_pos_embed": model.videomae.embeddings.position_embeddings.table,
            "decoder_pos_embed": model.decoder.position_embeddings.table,
            "running_cell_all_mask_maps": running_cell_mask(
                torch.arange(4), grid, model.config.decoder_mask_ratio
            ).reshape(4, grid[0], -1),
        }
    return [(name, value.detach(), io[name], atol, rtol) for name, value in ours.items() if name in io]


# ------------------------------------------------------------------------------------ remote-code Hub repos' layout

REMOTE_CODE_PREFIX = "model."


def _remote_code_kwargs(config: Mapping) -> dict:
    if "model_config" not in config:
        raise ValueError(
            "not a VideoMAE V2 remote-code repo: its config.json has no 'model_config' (the official VisionTransformer "
            f"kwargs); keys: {sorted(config)[:10]}"
        )
    kwargs = dict(config["model_config"])
    kwargs.setdefault("all_frames", kwargs.pop("num_frames", 16))
    kwargs.pop("norm_layer", None)  # a name ("nn.LayerNorm"); eps 1e-6 as every official model function
    return kwargs


def load_remote_code_videomaev2(source, **config_overrides) -> MaskedAVVideoMAEForVideoClassification:
    """Our model from a VideoMAE V2 remote-code repo (``OpenGVLab/VideoMAEv2-Base`` ..., or a local copy).

    The official ``VisionTransformer`` kwargs come from ``config.json``'s ``model_config``; the weights lose their
    ``model.`` prefix and go through the official key table (strict). ``num_classes=0`` (the released repos) gives a
    model without head whose ``logits`` are ``fc_norm(mean of tokens)``, the remote-code model's features.
    """
    config, state_dict = v1.read_model_folder(source)
    kwargs = _remote_code_kwargs(config)
    if not all(k.startswith(REMOTE_CODE_PREFIX) for k in state_dict):
        stray = sorted(k for k in state_dict if not k.startswith(REMOTE_CODE_PREFIX))[:5]
        raise ValueError(f"expected every weight under '{REMOTE_CODE_PREFIX}' (the remote-code layout), got {stray}")
    state_dict = strip_compile_prefix({k[len(REMOTE_CODE_PREFIX) :]: v for k, v in state_dict.items()})
    model = MaskedAVVideoMAEForVideoClassification(v1.config_from_official_kwargs(kwargs, **config_overrides))
    model.load_state_dict(v1.convert_state_dict(state_dict, model), strict=True)
    return model.eval()


def from_remote_code(source):
    """``conversion/convert_videomae_v2.py --transformers_checkpoint``: our model and task from a remote-code repo."""
    model = load_remote_code_videomaev2(source)
    return model, "classification" if model.config.num_labels else "encoder"


def verify_against_remote_code(model, source, seed: int = 0):
    """Run the repo's own remote code (``trust_remote_code=True``) and ``model`` on one seeded clip; returns rows.

    The remote-code model takes ``[N, C, T, H, W]`` and returns the pooled features (or the logits with a head).
    """
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(str(source), trust_remote_code=True).eval()
    config = model.config
    height, width = config.image_hw
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.randn(1, config.num_frames, config.num_channels, height, width, generator=generator)
    with torch.no_grad():
        expected = reference(pixel_values.permute(0, 2, 1, 3, 4))
        expected = expected if isinstance(expected, torch.Tensor) else expected[0]
        ours = model(pixel_values).logits
    return [("logits", ours, expected, 1e-5, 1e-4)]


# ------------------------------------------------------------------------------------------------------------ presets

_ZOO = "OpenGVLab/VideoMAEv2 docs/MODEL_ZOO.md"
# No public URL: the ViT-g files are handed out through the access form; the CLI then stops with this text.
_REQUEST = (
    "(request only) ViT-g weights come from the access form in OpenGVLab/VideoMAEv2 docs/MODEL_ZOO.md; download the "
    "file and pass --checkpoint PATH"
)
_DISTILL = "https://huggingface.co/OpenGVLab/VideoMAE2/resolve/main/distill/{}"
_GIANT = dict(img_size=224, patch_size=14, mlp_ratio=48 / 11, qkv_bias=True, tubelet_size=2,
              use_learnable_pos_emb=False, init_values=0.0)
# dataset key: (name, classes, frame sampling rate, temporal sampling at test time, dataset type)
_DATASETS = {
    "k710": ("Kinetics-710", 710, 4, "center", "kinetics710"),
    "k400": ("Kinetics-400", 400, 4, "center", "kinetics400"),
    "k600": ("Kinetics-600", 600, 4, "center", "kinetics600"),
    "ssv2": ("Something-Something V2", 174, 2, "uniform", "something-something-v2"),
    "ucf101": ("UCF101", 101, 4, "center", "ucf101"),
    "hmdb51": ("HMDB51", 51, 4, "center", "hmdb51"),
}


def _giant_pretrain_kwargs() -> dict:
    return dict(_GIANT, encoder_embed_dim=1408, encoder_depth=40, encoder_num_heads=16, decoder_num_classes=1176,
                decoder_embed_dim=512, decoder_depth=4, decoder_num_heads=8, all_frames=16)


def _finetune_kwargs(dim: int, depth: int, heads: int, classes: int, giant: bool = False) -> dict:
    base = dict(_GIANT) if giant else dict(img_size=224, patch_size=16, mlp_ratio=4.0, qkv_bias=True, tubelet_size=2,
                                            use_learnable_pos_emb=False, init_values=0.0)
    return dict(base, embed_dim=dim, depth=depth, num_heads=heads, num_classes=classes, all_frames=16,
                use_mean_pooling=True, init_scale=0.001)


def _result(dataset: str, top1: float) -> dict:
    name, _, _, _, dataset_type = _DATASETS[dataset]
    return dict(task_type="video-classification", dataset_type=dataset_type, dataset_name=f"{name} (16 frames)",
                metric_type="accuracy", metric_name="top-1", metric_value=top1, source=_ZOO)


def _presets():
    from .cli import Preset

    presets = {
        "videomaev2-giant-hybrid-pt-1200e-pretrained": Preset(
            name="videomaev2-giant-hybrid-pt-1200e-pretrained", url=_REQUEST, task="pretraining",
            official_kwargs=_giant_pretrain_kwargs(), processor=dict(frame_sampling_rate=4), license="cc-by-nc-4.0",
            description="VideoMAE V2 ViT-g/14 (1408 wide, 40 layers) self-supervised for 1200 epochs on "
            "UnlabeledHybrid with dual masking (tube 90 % for the encoder, running cell 50 % for the decoder); "
            "`vit_g_hybrid_pt_1200e.pth`, distributed on request.",
        ),
    }
    # (dataset, preset stem, published top-1): ViT-g fine-tuned (MODEL_ZOO.md), all distributed on request
    giant = [
        ("k710", "k710", 83.8), ("k400", "k710-k400", 88.4), ("k600", "k710-k600", 88.8), ("ssv2", "ssv2", 77.0),
        ("ucf101", "k710-ucf101", 99.6), ("hmdb51", "k710-hmdb51", 88.1),
    ]
    for dataset, stem, top1 in giant:
        name, classes, rate, sampling, _ = _DATASETS[dataset]
        preset = f"videomaev2-giant-{stem}-finetuned"
        presets[preset] = Preset(
            name=preset, url=_REQUEST, task="classification",
            official_kwargs=_finetune_kwargs(1408, 40, 16, classes, giant=True),
            processor=dict(frame_sampling_rate=rate, temporal_sampling=sampling), license="cc-by-nc-4.0",
            description=f"VideoMAE V2 ViT-g/14 pretrained on UnlabeledHybrid and fine-tuned on {name} ({classes} "
            f"classes; path {stem.replace('-', ' -> ').upper()}). Distributed on request; class names are not in the "
            "checkpoint: pass --labels_csv.",
            results=[_result(dataset, top1)],
        )
    for size, dim, depth, heads, top1 in (("small", 384, 12, 6, 77.6), ("base", 768, 12, 12, 81.5)):
        file = f"vit_{size[0]}_k710_dl_from_giant.pth"
        preset = f"videomaev2-{size}-k710-distilled"
        presets[preset] = Preset(
            name=preset, url=_DISTILL.format(file), task="classification",
            official_kwargs=_finetune_kwargs(dim, depth, heads, 710),
            processor=dict(frame_sampling_rate=4, temporal_sampling="center"), license="cc-by-nc-4.0",
            description=f"VideoMAE V2 ViT-{size[0].upper()}/16 distilled on Kinetics-710 from the fine-tuned ViT-g "
            f"(`{file}`, 710 classes); MODEL_ZOO.md lists top-1 {top1} for it. Class names are not in the "
            "checkpoint: pass --labels_csv.",
        )
    return presets


PRESETS = _presets()


__all__ = [
    "OFFICIAL_CONTAINERS",
    "PRESETS",
    "build_model",
    "build_processor",
    "convert_state_dict",
    "from_remote_code",
    "load_remote_code_videomaev2",
    "strip_compile_prefix",
    "task_from_kwargs",
    "verify_against_remote_code",
    "verify_fixture",
]
