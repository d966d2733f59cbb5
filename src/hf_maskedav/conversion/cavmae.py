"""Official CAV-MAE checkpoints (YuanGongND/cav-mae) -> hf_maskedav CAV-MAE.

The released files are bare state dicts saved from ``torch.nn.DataParallel`` (every key prefixed ``module.``; the
prefix is stripped by :func:`~hf_maskedav.conversion.utils.unwrap_state_dict`) with timm 0.4.5 names:
``patch_embed_{a,v}``, ``modality_{a,v}``, ``pos_embed_{a,v}``, ``blocks_{a,v,u}.{i}.*``, ``norm{,_a,_v}``, the decoder
(``decoder_*``, ``mask_token``) in pretraining files and ``mlp_head.{0,1}`` in fine-tuned ones.

* ``config_from_official_kwargs``: the official constructor's keyword arguments (``CAVMAE`` or ``CAVMAEFT``) ->
  :class:`CAVMAEConfig`, keeping the official quirks (LayerNorm eps 1e-5, ``12 - modality_specific_depth`` shared
  layers, 128 mel bins, the pretraining contrastive branch's ``last_only`` shared-layer loop).
* ``key_table``: strict mapping. Every official block carries the three LayerNorm pairs of the shared block; in the
  modality-specific and decoder blocks the ``_a``/``_v`` pairs are never used by the official forward and are
  deliberately not loaded (``IGNORED_UNUSED_NORMS``).
* Fixed position tables (pretraining, ``tr_pos=False``) are stored in the checkpoint as frozen parameters; they are
  compared with the tables our model builds instead of being loaded. Fine-tuned files (``tr_pos=True``) load them
  as learned parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..models.cavmae import CAVMAEConfig
from .audiomae import check_fixed_table
from .utils import TIMM_BLOCK_PARTS, KeyTable, fixture_io, forward_call_arguments

OFFICIAL_TOTAL_DEPTH = 12  # blocks_u has 12 - modality_specific_depth blocks (hard-coded in cav_mae.py)
OFFICIAL_MEL_BINS = 128  # num_patches = audio_length * 128 / 256: 128 mel bins and p=16 are hard-wired

VIT_PARTS = TIMM_BLOCK_PARTS
SHARED_PARTS = dict(
    VIT_PARTS, norm1_a="audio_norm1", norm1_v="video_norm1", norm2_a="audio_norm2", norm2_v="video_norm2"
)
UNUSED_NORMS = ("norm1_a", "norm1_v", "norm2_a", "norm2_v")
IGNORED_UNUSED_NORMS = [
    f"{stack}.{{}}.{norm}.{param}"
    for stack in ("blocks_a", "blocks_v", "decoder_blocks")
    for norm in UNUSED_NORMS
    for param in ("weight", "bias")
]
FIXED_TABLES = {
    "pos_embed_a": ("cavmae", "audio_embeddings"),
    "pos_embed_v": ("cavmae", "video_embeddings"),
    "decoder_pos_embed_a": ("decoder", "audio_position_embeddings"),
    "decoder_pos_embed_v": ("decoder", "video_position_embeddings"),
}


def task_from_kwargs(kwargs: Mapping) -> str:
    """``CAVMAEFT`` (fine-tuning) takes ``label_dim``; ``CAVMAE`` (pretraining) does not."""
    return "classification" if "label_dim" in kwargs else "pretraining"


def config_from_official_kwargs(kwargs: Mapping, **overrides) -> CAVMAEConfig:
    """Our config from ``CAVMAE(...)`` / ``CAVMAEFT(...)`` keyword arguments (official defaults where absent)."""
    classification = task_from_kwargs(kwargs) == "classification"
    dim = int(kwargs.get("embed_dim", 768))
    ratio = float(kwargs.get("mlp_ratio", 4.0))
    specific = int(kwargs.get("modality_specific_depth", 11))
    fields = dict(
        num_mel_bins=OFFICIAL_MEL_BINS,
        max_length=int(kwargs.get("audio_length", 1024)),
        image_size=int(kwargs.get("img_size", 224)),
        num_channels=int(kwargs.get("in_chans", 3)),
        patch_size=int(kwargs.get("patch_size", 16)),
        hidden_size=dim,
        num_attention_heads=int(kwargs.get("num_heads", 12)),
        intermediate_size=int(dim * ratio),
        num_modality_specific_layers=specific,
        num_shared_layers=OFFICIAL_TOTAL_DEPTH - specific,
        trainable_position_embeddings=bool(kwargs.get("tr_pos", classification)),
        layer_norm_eps=1e-5,
        norm_pix_loss=bool(kwargs.get("norm_pix_loss", False)),
    )
    if classification:
        fields["num_labels"] = int(kwargs["label_dim"])
    else:
        dec_dim = int(kwargs.get("decoder_embed_dim", 512))
        fields.update(
            decoder_hidden_size=dec_dim,
            decoder_num_hidden_layers=int(kwargs.get("decoder_depth", 8)),
            decoder_num_attention_heads=int(kwargs.get("decoder_num_heads", 16)),
            decoder_intermediate_size=int(dec_dim * ratio),
            contrastive_shared_layers="last_only",  # official forward_encoder (see CAVMAEConfig)
        )
    fields.update(overrides)
    return CAVMAEConfig(**fields)


def key_table(config: CAVMAEConfig, task: str) -> KeyTable:
    """Official key -> our key for the pretraining (``CAVMAE``) or fine-tuning (``CAVMAEFT``) layout."""
    rules = {}
    for modality, short in (("audio", "a"), ("video", "v")):
        for param in ("weight", "bias"):
            rules[f"patch_embed_{short}.proj.{param}"] = f"cavmae.{modality}_embeddings.patch_embed.proj.{param}"
        rules[f"modality_{short}"] = f"cavmae.{modality}_embeddings.modality_embedding"
        for src, dst in VIT_PARTS.items():
            for param in ("weight", "bias"):
                rules[f"blocks_{short}.{{}}.{src}.{param}"] = f"cavmae.{modality}_layers.{{}}.{dst}.{param}"
    for src, dst in SHARED_PARTS.items():
        for param in ("weight", "bias"):
            rules[f"blocks_u.{{}}.{src}.{param}"] = f"cavmae.shared_layers.{{}}.{dst}.{param}"
    for src, dst in (("norm", "norm"), ("norm_a", "audio_norm"), ("norm_v", "video_norm")):
        for param in ("weight", "bias"):
            rules[f"{src}.{param}"] = f"cavmae.{dst}.{param}"
    if task == "classification":
        for param in ("weight", "bias"):
            rules[f"mlp_head.0.{param}"] = f"classifier_norm.{param}"
            rules[f"mlp_head.1.{param}"] = f"classifier.{param}"
    else:
        rules.update(
            {
                "mask_token": "decoder.mask_token",
                "decoder_modality_a": "decoder.audio_modality_embedding",
                "decoder_modality_v": "decoder.video_modality_embedding",
            }
        )
        for src, dst in (
            ("decoder_embed", "decoder_embed"), ("decoder_norm", "norm"), ("decoder_pred_a", "audio_pred"),
            ("decoder_pred_v", "video_pred"),
        ):
            for param in ("weight", "bias"):
                rules[f"{src}.{param}"] = f"decoder.{dst}.{param}"
        for src, dst in VIT_PARTS.items():
            for param in ("weight", "bias"):
                rules[f"decoder_blocks.{{}}.{src}.{param}"] = f"decoder.layers.{{}}.{dst}.{param}"
    ignore = list(IGNORED_UNUSED_NORMS)
    for official, (owner, module) in FIXED_TABLES.items():
        if task == "classification" and owner == "decoder":
            continue
        if config.trainable_position_embeddings:
            prefix = "cavmae." if owner == "cavmae" else "decoder."
            target = f"{module}.position_embeddings" if owner == "cavmae" else module
            rules[official] = f"{prefix}{target}.table"
        else:
            ignore.append(official)  # fixed tables: rebuilt by our model, compared in convert_state_dict
    return KeyTable(rules, ignore=ignore)


def _fixed_table(model, official: str) -> torch.Tensor:
    owner, module = FIXED_TABLES[official]
    if owner == "cavmae":
        return getattr(model.cavmae, module).position_embeddings.build()
    return getattr(model.decoder, module).build()


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map an official (``module.``-stripped) state dict onto ``model`` with strict key accounting."""
    task = "pretraining" if hasattr(model, "decoder") else "classification"
    config = model.config
    converted = key_table(config, task).convert(state_dict, model)
    if not config.trainable_position_embeddings:
        for official in FIXED_TABLES:
            if official in state_dict and (task == "pretraining" or official.startswith("pos_")):
                check_fixed_table(official, state_dict[official], _fixed_table(model, official))
    return converted


def load_official_into(model, state_dict: Mapping[str, torch.Tensor]):
    """Convert and load ``state_dict`` into ``model`` (strict); returns the model."""
    model.load_state_dict(convert_state_dict(state_dict, model), strict=True)
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Released checkpoints and the pieces conversion/convert_cavmae.py plugs into the shared command line.

_BASE = dict(img_size=224, audio_length=1024, patch_size=16, in_chans=3, embed_dim=768, modality_specific_depth=11,
             num_heads=12, mlp_ratio=4.0)
_PRETRAIN = dict(_BASE, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, norm_pix_loss=True, tr_pos=False)
_PROCESSOR = dict(sampling_rate=16000, num_mel_bins=128, max_length=1024, mean=-5.081, std=4.4849)
_SOURCE = "Gong et al. 2023 / YuanGongND/cav-mae README"
_LICENSE = "bsd-2-clause"


def _dropbox(path: str) -> str:
    return f"https://www.dropbox.com/s/{path}?dl=1"


def _result(task, dataset_type, dataset_name, metric, value):
    name = "mAP" if metric == "map" else "accuracy"
    return dict(task_type=task, dataset_type=dataset_type, dataset_name=dataset_name, metric_type=metric,
                metric_name=name, metric_value=value, source=_SOURCE)


def _presets():
    from .cli import Preset

    audioset, vggsound = "agkphysics/AudioSet", "Loie/VGGSound"

    def pretrained(name, path, description, norm_pix=True):
        return Preset(
            name=name, url=_dropbox(path), task="pretraining",
            official_kwargs=dict(_PRETRAIN, norm_pix_loss=norm_pix), processor=_PROCESSOR, license=_LICENSE,
            datasets=[audioset], description=description,
        )

    def finetuned(name, path, labels, dataset, description, result, mode="multimodal"):
        return Preset(
            name=name, url=_dropbox(path), task="classification",
            official_kwargs=dict(_BASE, label_dim=labels, tr_pos=True, classification_mode=mode),
            processor=_PROCESSOR, license=_LICENSE, datasets=[dataset], description=description, results=[result],
        )

    av = "audio-classification"
    return {
        preset.name: preset
        for preset in (
            pretrained("cavmae-scale-plus-plus-as2m-pretrained", "l5t5geufdy3qvnv/audio_model.21.pth",
                       "CAV-MAE-Scale++ (recommended by the authors): ViT-B audio-visual encoder self-supervised on "
                       "AudioSet-2M with batch 256, 75% masking, contrastive weight 0.01."),
            pretrained("cavmae-scale-plus-as2m-pretrained", "xu8bfie6hz86oev/audio_model.25.pth",
                       "CAV-MAE-Scale+ (the paper's results): self-supervised on AudioSet-2M with batch 108."),
            pretrained("cavmae-base-as2m-pretrained", "wxrjgr86gdhc5k8/cav-mae-base.pth",
                       "CAV-MAE-Base: self-supervised on AudioSet-2M with batch 48."),
            pretrained("cavmae-base-nonorm-as2m-pretrained", "arrg7cb3e4hhjwu/cav-mae-base-nonorm.pth",
                       "CAV-MAE-Base without per-patch target normalisation (norm_pix_loss off): reconstructs the "
                       "inputs themselves, for inpainting.", norm_pix=False),
            finetuned("cavmae-scale-plus-as2m-finetuned", "hejj49zdgyyfsuh/as-full-51.2.pth", 527, audioset,
                      "CAV-MAE-Scale+ fine-tuned audio-visually on AudioSet-2M (527 classes, multi-label).",
                      _result(av, audioset, "AudioSet-2M eval (audio+video)", "map", 51.2)),
            finetuned("cavmae-scale-plus-as20k-finetuned", "9x6y642so3zve5y/as-20k-42.0.pth", 527, audioset,
                      "CAV-MAE-Scale+ fine-tuned audio-visually on AudioSet-20K (527 classes, multi-label).",
                      _result(av, audioset, "AudioSet-20K eval (audio+video)", "map", 42.0)),
            finetuned("cavmae-scale-plus-vggsound-finetuned", "f4wrbxv2unewss9/vgg_65.5.pth", 309, vggsound,
                      "CAV-MAE-Scale+ fine-tuned audio-visually on VGGSound (309 classes).",
                      _result(av, vggsound, "VGGSound test (audio+video)", "accuracy", 65.5)),
            finetuned("cavmae-scale-plus-asvgg-vggsound-finetuned", "q66s3mu526mj2x6/vgg_66.0.pth", 309, vggsound,
                      "CAV-MAE-Scale+ pretrained on AudioSet+VGGSound, fine-tuned audio-visually on VGGSound.",
                      _result(av, vggsound, "VGGSound test (audio+video)", "accuracy", 65.9)),
            finetuned("cavmae-scale-plus-as2m-audio-finetuned", "itfw7p0ueq7z9og/as_46.6.pth", 527, audioset,
                      "CAV-MAE-Scale+ fine-tuned on AudioSet-2M audio only (audioonly mode).",
                      _result(av, audioset, "AudioSet-2M eval (audio)", "map", 46.6), mode="audioonly"),
            finetuned("cavmae-scale-plus-as20k-audio-finetuned", "pariabyh1iyayda/as_37.7.pth", 527, audioset,
                      "CAV-MAE-Scale+ fine-tuned on AudioSet-20K audio only (audioonly mode).",
                      _result(av, audioset, "AudioSet-20K eval (audio)", "map", 37.7), mode="audioonly"),
            finetuned("cavmae-scale-plus-plus-as20k-visual-finetuned", "9ngkq9ygwqecxz5/as_20.0.pth", 527, audioset,
                      "CAV-MAE-Scale++ fine-tuned on AudioSet-20K frames only (videoonly mode).",
                      _result("video-classification", audioset, "AudioSet-20K eval (video)", "map", 20.0),
                      mode="videoonly"),
            finetuned("cavmae-scale-plus-asvgg-vggsound-audio-finetuned", "l4rj0sgpnt08bp2/vgg_59.8.pth", 309,
                      vggsound, "CAV-MAE-Scale+ (AudioSet+VGGSound pretraining) fine-tuned on VGGSound audio only.",
                      _result(av, vggsound, "VGGSound test (audio)", "accuracy", 59.8), mode="audioonly"),
        )
    }


PRESETS = _presets()


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model of the official architecture (described by ``official_kwargs``; ``fixture`` and
    ``state_dict`` are not needed for CAV-MAE).

    ``classification_mode`` in ``official_kwargs`` (not an official argument: our presets record with it which mode
    the released head was fine-tuned in) is passed to the config.
    """
    from ..models.cavmae import CAVMAEForAudioVisualClassification, CAVMAEForPreTraining

    kwargs = dict(official_kwargs)
    mode = kwargs.pop("classification_mode", None)
    if mode is not None:
        overrides.setdefault("classification_mode", mode)
    config = config_from_official_kwargs(kwargs, **overrides)
    if task == "classification":
        if config.num_labels == 527 and "problem_type" not in overrides:
            config.problem_type = "multi_label_classification"  # AudioSet: BCE, sigmoid scores
        return CAVMAEForAudioVisualClassification(config)
    return CAVMAEForPreTraining(config)


def build_processor(config, processor_kwargs: Mapping):
    from ..models.cavmae import CAVMAEFeatureExtractor, CAVMAEProcessor, CAVMAEVideoProcessor

    kwargs = dict(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    kwargs.update(processor_kwargs)
    side = config.image_size
    video = CAVMAEVideoProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    return CAVMAEProcessor(CAVMAEFeatureExtractor(**kwargs), video)


def forward_mask_ratios(fixture: Mapping) -> tuple[float, float]:
    """The audio and video mask ratios of the official call recorded in ``forward_call`` (positional or keyword)."""
    call = fixture.get("forward_call", "")
    number = r"(-?\d+(?:\.\d+)?)"
    positional = re.search(rf"model\(\s*\w+\s*,\s*\w+\s*,\s*{number}\s*,\s*{number}", call)
    if positional:
        return float(positional.group(1)), float(positional.group(2))
    ratios = []
    for name, default in (("mask_ratio_a", 0.75), ("mask_ratio_v", 0.75)):
        found = re.search(rf"{name}\s*=\s*{number}", call)
        ratios.append(float(found.group(1)) if found else default)
    return ratios[0], ratios[1]


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of an official-code fixture; returns ``(name, ours, official, atol, rtol)`` rows."""
    from ..models.cavmae import CAVMAEForPreTraining

    io, atol, rtol = fixture_io(folder, fixture)
    audio, frames = io["audio"], io["pixel_values"]
    ours = {}
    model.eval()
    with torch.no_grad():
        if isinstance(model, CAVMAEForPreTraining):
            ratio_a, ratio_v = forward_mask_ratios(fixture)
            weights = forward_call_arguments(fixture)
            out = model(audio, frames, audio_noise=io.get("noise_a"), video_noise=io.get("noise_v"),
                        audio_mask_ratio=ratio_a, video_mask_ratio=ratio_v,
                        mae_loss_weight=weights.get("mae_loss_weight"),
                        contrastive_loss_weight=weights.get("contrast_loss_weight"))
            features = model.cavmae(audio, frames)
            ours = {
                "loss": out.loss, "loss_mae": out.mae_loss, "loss_mae_a": out.audio_mae_loss,
                "loss_mae_v": out.video_mae_loss, "loss_c": out.contrastive_loss, "c_acc": out.contrastive_accuracy,
                "mask_a": out.audio_mask, "mask_v": out.video_mask, "ids_restore_a": out.audio_ids_restore,
                "ids_restore_v": out.video_ids_restore, "latent": out.last_hidden_state,
                "latent_c_a": out.audio_last_hidden_state, "latent_c_v": out.video_last_hidden_state,
                "pred_a": out.audio_logits, "pred_v": out.video_logits,
                "feat_a": features.audio_last_hidden_state, "feat_v": features.video_last_hidden_state,
            }
        else:
            for name in io:
                if name.startswith("logits_"):
                    ours[name] = model(audio, frames, mode=name[len("logits_"):]).logits
    rows = []
    for name, value in ours.items():
        if name in io:
            reference = io[name]
            rows.append((name, value.detach().reshape(reference.shape).to(reference.dtype), reference, atol, rtol))
    return rows
