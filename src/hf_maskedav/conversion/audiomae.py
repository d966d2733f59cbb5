"""Official Audio-MAE checkpoints (facebookresearch/AudioMAE) -> hf_maskedav Audio-MAE.

* ``config_from_official_kwargs``: the official constructor's keyword arguments (``models_mae.MaskedAutoencoderViT``
  or ``models_vit.VisionTransformer``) -> :class:`AudioMAEConfig`, copying the official quirks (the local decoder
  always has 16 blocks of 16 heads, whatever ``decoder_depth``/``decoder_num_heads`` say).
* ``convert_state_dict``: strict key table; the fixed sin-cos tables stored in official checkpoints are compared
  with the ones our model builds (and not loaded: ours are non-persistent buffers).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..models.audiomae import AudioMAEConfig
from .utils import TIMM_BLOCK_PARTS, KeyTable, fixture_io, forward_call_arguments

# Official local decoder (models_mae.py, decoder_mode=1): a hard-coded loop of 16 Swin blocks with 16 heads.
OFFICIAL_LOCAL_DECODER_DEPTH = 16
OFFICIAL_LOCAL_DECODER_HEADS = 16


def config_from_official_kwargs(kwargs: Mapping, img_size=None, **overrides) -> AudioMAEConfig:
    """Build our config from the official constructor's keyword arguments.

    Args:
        kwargs: e.g. ``{"img_size": [1024, 128], "patch_size": 16, "embed_dim": 768, "decoder_mode": 1, ...}``.
        img_size: ``(frames, mel_bins)`` when ``kwargs`` has none (the fine-tuning model gets its input size from
            the patch embedding ``main_finetune_as.py`` swaps in).
        overrides: further config fields (e.g. ``num_labels``).
    """
    img_size = kwargs.get("img_size", img_size) or (1024, 128)
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    patch = kwargs.get("patch_size", 16)
    stride = 10 if kwargs.get("use_custom_patch", False) else patch
    decoder_mode = kwargs.get("decoder_mode", 0)
    fields = dict(
        max_length=int(img_size[0]),
        num_mel_bins=int(img_size[1]),
        patch_size=patch,
        patch_stride=stride,
        num_channels=kwargs.get("in_chans", 1),
        hidden_size=kwargs.get("embed_dim", 768),
        num_hidden_layers=kwargs.get("depth", 12),
        num_attention_heads=kwargs.get("num_heads", 12),
        intermediate_size=int(kwargs.get("embed_dim", 768) * kwargs.get("mlp_ratio", 4.0)),
        qkv_bias=kwargs.get("qkv_bias", True),
        drop_path_rate=kwargs.get("drop_path_rate", 0.0),
        layer_norm_eps=1e-6,
        norm_pix_loss=kwargs.get("norm_pix_loss", False),
    )
    if "decoder_embed_dim" in kwargs:
        dec_dim = kwargs["decoder_embed_dim"]
        local = decoder_mode == 1
        fields.update(
            decoder_type="local" if local else "global",
            decoder_hidden_size=dec_dim,
            decoder_num_hidden_layers=OFFICIAL_LOCAL_DECODER_DEPTH if local else kwargs.get("decoder_depth", 8),
            decoder_num_attention_heads=OFFICIAL_LOCAL_DECODER_HEADS if local else kwargs.get("decoder_num_heads", 16),
            decoder_intermediate_size=int(dec_dim * kwargs.get("mlp_ratio", 4.0)),
            decoder_shift_size=(0, 0) if kwargs.get("no_shift", False) else (2, 0),
        )
    if "num_classes" in kwargs:
        fields["num_labels"] = kwargs["num_classes"]
        fields["use_mean_pooling"] = kwargs.get("global_pool", True)
    fields.update(overrides)
    return AudioMAEConfig(**fields)


def key_table(config: AudioMAEConfig) -> KeyTable:
    """Official key -> our key, for the pretraining and the fine-tuning layouts."""
    rules = {
        "patch_embed.proj.weight": "audiomae.embeddings.patch_embed.proj.weight",
        "patch_embed.proj.bias": "audiomae.embeddings.patch_embed.proj.bias",
        "cls_token": "audiomae.embeddings.cls_token",
        "norm.weight": "audiomae.norm.weight",
        "norm.bias": "audiomae.norm.bias",
        "fc_norm.weight": "fc_norm.weight",
        "fc_norm.bias": "fc_norm.bias",
        "head.weight": "classifier.weight",
        "head.bias": "classifier.bias",
        "decoder_embed.weight": "decoder.decoder_embed.weight",
        "decoder_embed.bias": "decoder.decoder_embed.bias",
        "mask_token": "decoder.mask_token",
        "decoder_norm.weight": "decoder.norm.weight",
        "decoder_norm.bias": "decoder.norm.bias",
        "decoder_pred.weight": "decoder.pred.weight",
        "decoder_pred.bias": "decoder.pred.bias",
    }
    vit_block = TIMM_BLOCK_PARTS
    for src, dst in vit_block.items():
        for param in ("weight", "bias"):
            rules[f"blocks.{{}}.{src}.{param}"] = f"audiomae.layers.{{}}.{dst}.{param}"
    decoder_block = vit_block
    if config.decoder_type == "local":
        decoder_block = {
            name: name
            for name in ("norm1", "attn.qkv", "attn.proj", "attn.meta_mlp.fc1", "attn.meta_mlp.fc2", "norm2", "mlp.fc1", "mlp.fc2")
        }
        rules["decoder_blocks.{}.attn.tau"] = "decoder.layers.{}.attn.tau"
    for src, dst in decoder_block.items():
        for param in ("weight", "bias"):
            rules[f"decoder_blocks.{{}}.{src}.{param}"] = f"decoder.layers.{{}}.{dst}.{param}"
    # Fixed sin-cos tables: rebuilt by our model (non-persistent buffers) and checked in convert_state_dict.
    return KeyTable(rules, ignore=["pos_embed", "decoder_pos_embed"])


def check_fixed_table(name: str, stored: torch.Tensor, ours: torch.Tensor, atol: float = 1e-5) -> None:
    """Raise if an official fixed position table differs from the one our model builds."""
    if stored.shape != ours.shape:
        raise ValueError(f"{name}: checkpoint table has shape {tuple(stored.shape)}, ours {tuple(ours.shape)}")
    error = (stored.float() - ours.float()).abs().max().item()
    if error > atol:
        raise ValueError(
            f"{name}: the checkpoint's fixed position table differs from ours by {error:.3g} (> {atol}); the "
            "checkpoint was trained with another table (trainable or re-generated position embeddings?)"
        )


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map an official state dict onto ``model`` (any Audio-MAE head) with strict key accounting."""
    config = model.config
    converted = key_table(config).convert(state_dict, model)
    if "pos_embed" in state_dict:
        ours = model.audiomae.embeddings.position_embeddings.build()
        check_fixed_table("pos_embed", state_dict["pos_embed"], ours)
    if "decoder_pos_embed" in state_dict and hasattr(model, "decoder"):
        check_fixed_table("decoder_pos_embed", state_dict["decoder_pos_embed"], model.decoder.position_embeddings.build())
    return converted


def load_official_into(model, state_dict: Mapping[str, torch.Tensor]):
    """Convert and load ``state_dict`` into ``model`` (strict); returns the model."""
    model.load_state_dict(convert_state_dict(state_dict, model), strict=True)
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Released checkpoints and the pieces conversion/convert_audiomae.py plugs into the shared command line.

_VIT_B = dict(img_size=[1024, 128], patch_size=16, in_chans=1, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0)
_AUDIOSET_FBANK = dict(sampling_rate=16000, num_mel_bins=128, max_length=1024, mean=-4.2677393, std=4.5689974)
_PAPER_RESULTS = "Huang et al. 2022, Table 5 / README"


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&confirm=t&id={file_id}"


def _presets():
    from .cli import Preset

    return {
        "audiomae-base-as2m-pretrained": Preset(
            name="audiomae-base-as2m-pretrained",
            url=_drive("1ni_DV4dRf7GxM8k-Eirx71WP9Gg89wwu"),
            task="pretraining",
            official_kwargs=dict(
                _VIT_B, decoder_embed_dim=512, decoder_depth=16, decoder_num_heads=16, norm_pix_loss=True,
                decoder_mode=1, audio_exp=True,
            ),
            processor=_AUDIOSET_FBANK,
            license="cc-by-4.0",
            datasets=["agkphysics/AudioSet"],
            description="Audio-MAE ViT-B/16 self-supervised on AudioSet-2M (33 epochs, 80% masking, local decoder). "
            "Use it as an encoder to fine-tune (AudioMAEForAudioClassification) or for features (AudioMAEModel).",
            results=[
                dict(task_type="audio-classification", dataset_type="agkphysics/AudioSet", dataset_name="AudioSet-2M "
                     "(after fine-tuning)", metric_type="map", metric_name="mAP", metric_value=47.3, source=_PAPER_RESULTS),
                dict(task_type="audio-classification", dataset_type="agkphysics/AudioSet", dataset_name="AudioSet-20K "
                     "(after fine-tuning)", metric_type="map", metric_name="mAP", metric_value=37.1, source=_PAPER_RESULTS),
                dict(task_type="audio-classification", dataset_type="ashraq/esc50", dataset_name="ESC-50 (after "
                     "fine-tuning)", metric_type="accuracy", metric_name="accuracy", metric_value=94.1, source=_PAPER_RESULTS),
            ],
        ),
        "audiomae-base-as2m-finetuned": Preset(
            name="audiomae-base-as2m-finetuned",
            url=_drive("18EsFOyZYvBYHkJ7_n7JFFWbj6crz01gq"),
            task="classification",
            official_kwargs=dict(_VIT_B, num_classes=527, global_pool=True, qkv_bias=True, drop_path_rate=0.1),
            processor=_AUDIOSET_FBANK,
            license="cc-by-4.0",
            datasets=["agkphysics/AudioSet"],
            description="Audio-MAE ViT-B/16 pretrained and fine-tuned on AudioSet-2M (527 classes, multi-label). "
            "Scores are sigmoids; pass --labels_csv class_labels_indices.csv at conversion for class names.",
            results=[
                dict(task_type="audio-classification", dataset_type="agkphysics/AudioSet", dataset_name="AudioSet-2M "
                     "eval", metric_type="map", metric_name="mAP", metric_value=47.3, source=_PAPER_RESULTS),
            ],
        ),
    }


PRESETS = _presets()


def task_from_kwargs(kwargs: Mapping) -> str:
    """``models_vit.VisionTransformer`` (fine-tuning) takes ``num_classes``; ``models_mae`` does not."""
    return "classification" if "num_classes" in kwargs else "pretraining"


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model of the official architecture (``fixture`` gives the fine-tuning input size)."""
    from ..models.audiomae import AudioMAEForAudioClassification, AudioMAEForPreTraining

    img_size = None
    if fixture is not None and "img_size" not in official_kwargs:
        img_size = tuple(fixture["input_shapes"]["input_values"][-2:])
    config = config_from_official_kwargs(official_kwargs, img_size=img_size, **overrides)
    if task == "classification":
        if official_kwargs.get("num_classes", 0) > 1 and "problem_type" not in overrides:
            # AudioSet checkpoints are multi-label (BCE); sigmoid scores in the pipeline.
            config.problem_type = "multi_label_classification"
        return AudioMAEForAudioClassification(config)
    return AudioMAEForPreTraining(config)


def build_processor(config, processor_kwargs: Mapping):
    from ..models.audiomae import AudioMAEFeatureExtractor

    kwargs = dict(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    kwargs.update(processor_kwargs)
    return AudioMAEFeatureExtractor(**kwargs)


def verify_fixture(model, folder, fixture: Mapping):
    """Run ``model`` on the inputs of an official-code fixture; returns ``(name, ours, official, atol, rtol)`` rows."""
    from ..layers import normalize_per_patch

    io, atol, rtol = fixture_io(folder, fixture)
    args = forward_call_arguments(fixture)
    inputs = io["input_values"]
    ours = {}
    model.eval()
    with torch.no_grad():
        if hasattr(model, "decoder"):  # pretraining
            out = model(inputs, noise=io["noise"], mask_ratio=args.get("mask_ratio"))
            encoded = model.audiomae(inputs, noise=io["noise"], mask_ratio=args.get("mask_ratio"))
            target = model.patchify(inputs)
            if model.config.norm_pix_loss:
                target = normalize_per_patch(target)
            ours = {
                "loss": out.loss.reshape(1), "pred": out.logits, "mask": out.mask, "ids_restore": out.ids_restore,
                "ids_keep": encoded.ids_keep, "latent": out.last_hidden_state, "target": target,
            }
        else:  # classification
            ours["logits"] = model(inputs).logits
            if model.fc_norm is not None:
                ours["pooled_normed"] = model.fc_norm(model.audiomae(inputs).last_hidden_state[:, 1:].mean(1))
            if "noise_t" in io:
                ours["logits_masked"] = model(
                    inputs, time_noise=io["noise_t"], freq_noise=io["noise_f"],
                    mask_time_prob=args.get("mask_t_prob"), mask_freq_prob=args.get("mask_f_prob"),
                ).logits
    return [(name, value.detach(), io[name], atol, rtol) for name, value in ours.items() if name in io]
