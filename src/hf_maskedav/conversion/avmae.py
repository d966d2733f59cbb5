"""AV-MAE Scenic/Flax checkpoints (google-research/scenic ``projects/av_mae``) -> hf_maskedav AV-MAE. UNVERIFIED.

The released files are Flax msgpack train states, read without JAX by :mod:`.flax_checkpoint`. Parameter trees:

* pretraining (``ViViTMultiMaskedAutoencoder``): ``embedding_{rgb,spectrogram}``, ``Transformer_{rgb,spectrogram}``
  (``encoderblock_{i}``, ``encoder_norm``), ``Transformer_concat`` (mid-fusion layers, AudioSet), ``Decoder``,
  ``decoder_projection_{key}``, ``mask_token_{key}``, ``output_projection_{key}``;
* fine-tuning (``mbt.MBT``): ``embedding`` (rgb), ``embedding_spectrogram``, ``Transformer/encoderblock_{i}`` (the
  first modality of ``modality_fusion``: rgb, or spectrogram for audio-only models),
  ``Transformer/encoderblock_{i}_spec`` (spectrogram next to rgb), ``Transformer/encoder_norm``, ``bottleneck``
  (created even for one modality, whose forward never uses it: dropped on purpose then),
  ``ProjectionHeadAndClassifier_0/output_projection``.

The paper's other variants (Scenic options, :class:`~hf_maskedav.AVMAEConfig`) have their own names and convert too:
``Transformer`` (one encoder stack: ``concat_and_encode`` or ``same_encoder``, which the weights cannot tell apart:
say which in ``--official_kwargs``), ``Decoder_{key}`` (``separate_decoders``), ``{Encoder,Decoder}_modality_token_{key}``
(``use_modality_tokens``).

Each Scenic block (Flax linen names, numbered per layer type): ``LayerNorm_0``,
``MultiHeadDotProductAttention_0/{query,key,value}`` (kernel ``[D, heads, head_dim]``, bias ``[heads, head_dim]``)
and ``out`` (kernel ``[heads, head_dim, D]``), ``LayerNorm_1``, ``MlpBlock_0/Dense_{0,1}``. These names, and every
other key and shape of the ten released architectures, were checked against the parameter trees the published Scenic
code builds at full size (``src/hf_maskedav/conversion/manifests/avmae``, ``tests/test_preset_manifests.py``).

Conversion as data, as the other families: :func:`torch_layout` puts every Flax tensor in PyTorch's layout under its
Scenic name (Dense kernels ``[in, out]`` transposed, q/k/v fused into one ``qkv`` entry for our ``qkv_proj``, Conv
kernels ``[kh, kw, in, out]`` / ``[kt, kh, kw, in, out]`` permuted), then a
:class:`~hf_maskedav.conversion.utils.KeyTable` built for the model's configuration maps the names with its strict
accounting (every leaf of the parameter tree consumed or deliberately ignored, every weight of our model filled). What the weights do not say (input length, frame count, the
bottleneck fusion layer, mask ratios) comes from the preset or ``--official_kwargs``.

No output of the official code was compared, so the conversion of the values is unverified; the architecture
(key names and shapes) is verified as said above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models.avmae import AVMAEConfig
from .flax_checkpoint import flatten_tree, model_parameters, read_flax_checkpoint
from .utils import KeyTable

SCENIC_KEYS = {"audio": "spectrogram", "video": "rgb"}
# Flax linen names the unnamed submodules of a block per layer type: LayerNorm_0, MultiHeadDotProductAttention_0,
# LayerNorm_1, MlpBlock_0 (scenic projects/vivit and projects/mbt EncoderBlock)
NORM1, ATTENTION, NORM2, MLP = "LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0"
CLASSIFIER = "ProjectionHeadAndClassifier_0/output_projection"  # mbt.MBT's head (representation_size None)


# ---------------------------------------------------------------------------------------------------------------------
# Reading and configuration


def load_flax_params(path: str | Path) -> dict[str, torch.Tensor]:
    """The flattened (``a/b/c``) parameter tree of a Scenic checkpoint file."""
    return flatten_tree(model_parameters(read_flax_checkpoint(path)))


def task_from_params(params: Mapping[str, torch.Tensor]) -> str:
    tops = {key.split("/")[0] for key in params}
    if "Decoder" in tops or any(t.startswith("decoder_projection_") for t in tops):
        return "pretraining"
    if "Transformer" in tops and CLASSIFIER.split("/")[0] in tops:
        return "classification"
    raise ValueError(
        f"not an AV-MAE pretraining or MBT fine-tuning parameter tree (top-level names: {sorted(tops)[:12]})"
    )


def _count_blocks(params, prefix: str, suffix: str = "") -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}/encoderblock_(\d+){re.escape(suffix)}/")
    indices = {int(m.group(1)) for key in params if (m := pattern.match(key))}
    if indices and indices != set(range(len(indices))):
        raise ValueError(f"{prefix} block indices are not contiguous from 0: {sorted(indices)}")
    return len(indices)


def _block_shape(params, block: str) -> tuple[int, int, int]:
    """``(hidden, heads, mlp)`` of one Scenic block."""
    query = params[f"{block}/{ATTENTION}/query/kernel"]  # [D, H, hd]
    mlp = params[f"{block}/{MLP}/Dense_0/kernel"]  # [D, M]
    return int(query.shape[0]), int(query.shape[1]), int(mlp.shape[1])


def config_from_params(params: Mapping[str, torch.Tensor], **overrides) -> AVMAEConfig:
    """Our config from the shapes in a Scenic parameter tree, plus what the weights cannot tell (``overrides``)."""
    task = task_from_params(params)
    fields = {}
    if task == "pretraining":
        modalities = [m for m, key in SCENIC_KEYS.items() if f"embedding_{key}/kernel" in params]
        video_kernel = params.get("embedding_rgb/kernel")
        audio_kernel = params.get("embedding_spectrogram/kernel")
        if _count_blocks(params, "Transformer"):  # one stack for both modalities: the trees of the two are identical
            strategy = overrides.get("encoder_strategy")
            if strategy not in ("concat_and_encode", "same_encoder"):
                raise ValueError(
                    "this checkpoint has one encoder stack ('Transformer') for both modalities: pass encoder_strategy "
                    "'concat_and_encode' or 'same_encoder' in --official_kwargs (the weights cannot tell them apart)"
                )
            encoder = "Transformer"
            fields.update(encoder_strategy=strategy, num_hidden_layers=_count_blocks(params, "Transformer"))
        else:
            depths = {_count_blocks(params, f"Transformer_{SCENIC_KEYS[m]}") for m in modalities}
            if len(depths) != 1:
                raise ValueError(f"the modality encoders have different depths {sorted(depths)}; not an AV-MAE layout")
            fusion = _count_blocks(params, "Transformer_concat")
            encoder = f"Transformer_{SCENIC_KEYS[modalities[0]]}"
            fields.update(num_hidden_layers=depths.pop() + fusion, num_fusion_layers=fusion)
        decoder = "Decoder"
        if f"Decoder_{SCENIC_KEYS[modalities[0]]}/encoderblock_0/{MLP}/Dense_0/kernel" in params:
            decoder = f"Decoder_{SCENIC_KEYS[modalities[0]]}"
            fields["decoder_strategy"] = "separate_decoders"
        if any(key.startswith("Encoder_modality_token_") for key in params):
            fields["use_modality_tokens"] = True
        hidden, heads, mlp = _block_shape(params, f"{encoder}/encoderblock_0")
        dec_hidden, dec_heads, dec_mlp = _block_shape(params, f"{decoder}/encoderblock_0")
        fields.update(
            decoder_hidden_size=dec_hidden,
            decoder_num_attention_heads=dec_heads,
            decoder_intermediate_size=dec_mlp,
            decoder_num_hidden_layers=_count_blocks(params, decoder),
        )
    else:
        video_kernel = params.get("embedding/kernel")
        audio_kernel = params.get("embedding_spectrogram/kernel")
        modalities = [m for m, kernel in (("audio", audio_kernel), ("video", video_kernel)) if kernel is not None]
        hidden, heads, mlp = _block_shape(params, "Transformer/encoderblock_0")
        fields.update(
            num_hidden_layers=_count_blocks(params, "Transformer"),
            num_labels=int(params[f"{CLASSIFIER}/kernel"].shape[1]),
        )
        if "bottleneck" in params and len(modalities) > 1:
            fields["num_bottleneck_tokens"] = int(params["bottleneck"].shape[1])
    fields.update(modalities=modalities, hidden_size=hidden, num_attention_heads=heads, intermediate_size=mlp)
    if audio_kernel is not None:
        kh, kw = int(audio_kernel.shape[0]), int(audio_kernel.shape[1])
        if kh != kw:
            raise ValueError(f"spectrogram patches of {kh}x{kw} are not supported (square patches only)")
        fields["audio_patch_size"] = kh
    if video_kernel is not None:
        kt, kh, kw, channels = (int(s) for s in video_kernel.shape[:4])
        if kh != kw:
            raise ValueError(f"video patches of {kh}x{kw} are not supported (square patches only)")
        fields.update(tubelet_size=kt, video_patch_size=kh, num_channels=channels)
    fields.update(overrides)
    return AVMAEConfig(**fields)


# ---------------------------------------------------------------------------------------------------------------------
# Mapping: Flax tensors to PyTorch layout (names kept), then a KeyTable from Scenic names to ours


QKV = f"{ATTENTION}/qkv"  # the fused q/k/v kernel and bias of one block (not a Scenic name: made by torch_layout)


def torch_layout(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each Flax leaf in PyTorch's layout under its Scenic name (float32), so that a :class:`KeyTable` can map the names
    one to one: Dense kernels ``[in, out]`` transposed; attention ``out`` kernels ``[heads, head_dim, D]`` flattened
    and transposed; ``query``/``key``/``value`` kernels ``[D, heads, head_dim]`` and biases fused into one
    ``.../qkv/kernel`` and ``.../qkv/bias`` (our ``qkv_proj``; left apart when one of the three is missing, and then
    reported as unmapped); patch-embedding Conv kernels ``[kh, kw, in, out]`` / ``[kt, kh, kw, in, out]`` permuted to
    ``[out, in, ...]``. Everything else (LayerNorm ``scale``/``bias``, biases, mask and bottleneck tokens) as is."""
    out = {key: value.float() for key, value in params.items()}
    for key in [k for k in out if k.endswith(f"/{ATTENTION}/query/kernel")]:
        block = key[: -len("/query/kernel")]
        parts = [f"{block}/{name}/{leaf}" for leaf in ("kernel", "bias") for name in ("query", "key", "value")]
        if not all(part in out for part in parts):
            continue
        kernels, biases = [out.pop(part) for part in parts[:3]], [out.pop(part) for part in parts[3:]]
        out[f"{block}/qkv/kernel"] = torch.cat([k.reshape(k.shape[0], -1).t() for k in kernels])
        out[f"{block}/qkv/bias"] = torch.cat([b.reshape(-1) for b in biases])
    for key, value in out.items():
        if not key.endswith("/kernel") or key.endswith("/qkv/kernel"):
            continue
        if key.endswith(f"{ATTENTION}/out/kernel") and value.dim() == 3:  # [H, hd, D]
            out[key] = value.reshape(-1, value.shape[-1]).t().contiguous()
        elif value.dim() == 2:
            out[key] = value.t().contiguous()
        elif value.dim() == 4:  # [kh (time), kw (mel), 1, D]
            out[key] = value.permute(3, 2, 0, 1).contiguous()
        elif value.dim() == 5:  # [kt, kh, kw, C, D]
            out[key] = value.permute(4, 3, 0, 1, 2).contiguous()
    return out


def _block_rules(src: str, dst: str) -> dict[str, str]:
    """One Scenic ``EncoderBlock`` (``src`` with ``{}`` for its index) -> one of our ``TransformerLayer``."""
    rules = {
        f"{src}/{NORM1}/scale": f"{dst}.norm1.weight",
        f"{src}/{NORM1}/bias": f"{dst}.norm1.bias",
        f"{src}/{QKV}/kernel": f"{dst}.attention.qkv_proj.weight",
        f"{src}/{QKV}/bias": f"{dst}.attention.qkv_proj.bias",
        f"{src}/{ATTENTION}/out/kernel": f"{dst}.attention.o_proj.weight",
        f"{src}/{ATTENTION}/out/bias": f"{dst}.attention.o_proj.bias",
        f"{src}/{NORM2}/scale": f"{dst}.norm2.weight",
        f"{src}/{NORM2}/bias": f"{dst}.norm2.bias",
    }
    for index, ours in ((0, "fc1"), (1, "fc2")):
        rules.update({f"{src}/{MLP}/Dense_{index}/{leaf}": f"{dst}.mlp.{ours}.{param}" for leaf, param in _DENSE})
    return rules


_DENSE = (("kernel", "weight"), ("bias", "bias"))
_NORM = (("scale", "weight"), ("bias", "bias"))


def _stack_rules(src: str, dst: str, norm_dst: str) -> dict[str, str]:
    """A Scenic ``Encoder`` (``encoderblock_{i}`` + ``encoder_norm``) -> our layer list and its LayerNorm."""
    rules = _block_rules(f"{src}/encoderblock_{{}}", f"{dst}.{{}}")
    rules.update({f"{src}/encoder_norm/{leaf}": f"{norm_dst}.{param}" for leaf, param in _NORM})
    return rules


def _linear_rules(src: str, dst: str) -> dict[str, str]:
    return {f"{src}/{leaf}": f"{dst}.{param}" for leaf, param in _DENSE}


def pretraining_key_table(config: AVMAEConfig) -> KeyTable:
    """Scenic ``ViViTMultiMaskedAutoencoder`` names -> :class:`AVMAEForPreTraining`, for ``config``'s strategies."""
    rules = {}
    for name in config.modalities:
        scenic = SCENIC_KEYS[name]
        rules.update(_linear_rules(f"embedding_{scenic}", f"avmae.embeddings.{name}_patch_embed.proj"))
        rules.update(_linear_rules(f"decoder_projection_{scenic}", f"decoder.{name}_projection"))
        rules[f"mask_token_{scenic}"] = f"decoder.{name}_mask_token"
        rules.update(_linear_rules(f"output_projection_{scenic}", f"decoder.{name}_pred"))
        if config.use_modality_tokens:
            rules[f"Encoder_modality_token_{scenic}"] = f"avmae.embeddings.{name}_modality_token"
            rules[f"Decoder_modality_token_{scenic}"] = f"decoder.{name}_modality_token"
        if config.encoder_strategy in ("separate_encoders", "separate_encoders_and_concat"):
            rules.update(_stack_rules(f"Transformer_{scenic}", f"avmae.{name}_layers", f"avmae.{name}_norm"))
        if config.decoder_strategy == "separate_decoders":
            rules.update(_stack_rules(f"Decoder_{scenic}", f"decoder.{name}_layers", f"decoder.{name}_norm"))
    if config.encoder_strategy == "separate_encoders_and_concat":
        rules.update(_stack_rules("Transformer_concat", "avmae.fusion_layers", "avmae.fusion_norm"))
    if config.encoder_strategy in ("concat_and_encode", "same_encoder"):
        rules.update(_stack_rules("Transformer", "avmae.layers", "avmae.norm"))
    if config.decoder_strategy != "separate_decoders":
        rules.update(_stack_rules("Decoder", "decoder.layers", "decoder.norm"))
    return KeyTable(rules)


def classification_key_table(config: AVMAEConfig) -> KeyTable:
    """Scenic ``mbt.MBT`` names -> :class:`AVMAEForAudioVisualClassification`. The first modality of the official
    ``modality_fusion = ('rgb', 'spectrogram')`` owns the unsuffixed blocks, the spectrogram next to rgb ``_spec``.
    MBT creates ``bottleneck`` for one modality too, whose forward never reads it: ignored then."""
    rules = {}
    first = "video" if "video" in config.modalities else "audio"
    for name in config.modalities:
        embedding = "embedding" if name == "video" else "embedding_spectrogram"
        rules.update(_linear_rules(embedding, f"embeddings.{name}_patch_embed.proj"))
        suffix = "" if name == first else "_spec"
        rules.update(_block_rules(f"Transformer/encoderblock_{{}}{suffix}", f"{name}_layers.{{}}"))
    rules.update({f"Transformer/encoder_norm/{leaf}": f"norm.{param}" for leaf, param in _NORM})
    rules.update(_linear_rules(CLASSIFIER, "classifier"))
    fused = len(config.modalities) > 1
    if fused:
        rules["bottleneck"] = "bottleneck"
    return KeyTable(rules, ignore=() if fused else ("bottleneck",))


def key_table(model) -> KeyTable:
    from ..models.avmae import AVMAEForPreTraining

    if isinstance(model, AVMAEForPreTraining):
        return pretraining_key_table(model.config)
    return classification_key_table(model.config)


def convert_params(params: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map a flat Scenic parameter tree onto ``model`` with strict accounting (raises :class:`UnmappedKeysError`)."""
    return key_table(model).convert(torch_layout(params), model)


def build_model_from_params(params: Mapping[str, torch.Tensor], **overrides):
    """A model of the checkpoint's architecture (randomly initialised) and its converted weights loaded."""
    from ..models.avmae import AVMAEForAudioVisualClassification, AVMAEForPreTraining

    config = config_from_params(params, **overrides)
    model_class = AVMAEForPreTraining if task_from_params(params) == "pretraining" else AVMAEForAudioVisualClassification
    model = model_class(config)
    model.load_state_dict(convert_params(params, model), strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# Released checkpoints and the pieces conversion/convert_avmae.py plugs into the shared command line
# (cli.convert with load_checkpoint=load_flax_params, task_from_checkpoint=task_from_params, unverifiable=UNVERIFIABLE).

_BUCKET = "https://storage.googleapis.com/scenic-bucket/av_mae"
_LICENSE = "apache-2.0"
_SOURCE = "Georgescu et al. 2023 / google-research/scenic av_mae README"


def _presets():
    from .cli import Preset

    audioset, vggsound = "agkphysics/AudioSet", "Loie/VGGSound"
    # What the weights cannot tell, per dataset (scenic configs/{audioset,vggsound}/{pretrain,finetune}.py).
    pretrain = {
        "audioset": dict(max_length=1000, num_frames=16, audio_mask_ratio=0.7, video_mask_ratio=0.9),
        "vggsound": dict(max_length=800, num_frames=16, audio_mask_ratio=0.5, video_mask_ratio=0.9),
    }
    finetune = {
        "audioset": dict(max_length=1000, num_frames=32, bottleneck_fusion_layer=18),
        "vggsound": dict(max_length=800, num_frames=32, bottleneck_fusion_layer=16),
    }
    rows = [
        ("audioset", "as2m_selfsup_audiovisual", "pretraining", None, "AV-MAE ViT-L self-supervised on AudioSet-2M "
         "(audio+video, mid-fusion encoder, 70% / 90% masking)."),
        ("audioset", "as2m_selfsup_audiovisual_finetuned_audiovisual", "classification", ("mAP", 51.8, "audio+video"),
         "AV-MAE ViT-L fine-tuned on AudioSet (audio+video, bottleneck fusion)."),
        ("audioset", "as2m_selfsup_audiovisual_finetuned_audio", "classification", ("mAP", 46.6, "audio"),
         "AV-MAE ViT-L (audio-visual pretraining) fine-tuned on AudioSet audio."),
        ("audioset", "as2m_selfsup_audiovisual_finetuned_video", "classification", ("mAP", 31.1, "video"),
         "AV-MAE ViT-L (audio-visual pretraining) fine-tuned on AudioSet video."),
        ("audioset", "as2m_selfsup_audio", "pretraining", None, "AV-MAE ViT-L self-supervised on AudioSet-2M audio "
         "only."),
        ("audioset", "as2m_selfsup_audio_finetuned_audio", "classification", ("mAP", 46.4, "audio"),
         "AV-MAE ViT-L (audio-only pretraining) fine-tuned on AudioSet audio."),
        ("vggsound", "vggsound_selfsup_audiovisual", "pretraining", None, "AV-MAE ViT-L self-supervised on VGGSound "
         "(audio+video, separate encoders, 50% / 90% masking)."),
        ("vggsound", "vggsound_selfsup_audiovisual_finetuned_audiovisual", "classification",
         ("accuracy", 65.0, "audio+video"), "AV-MAE ViT-L fine-tuned on VGGSound (audio+video)."),
        ("vggsound", "vggsound_selfsup_audiovisual_finetuned_audio", "classification", ("accuracy", 57.2, "audio"),
         "AV-MAE ViT-L fine-tuned on VGGSound audio."),
        ("vggsound", "vggsound_selfsup_audiovisual_finetuned_video", "classification", ("accuracy", 50.3, "video"),
         "AV-MAE ViT-L fine-tuned on VGGSound video."),
    ]
    presets = {}
    for dataset, path, task, result, description in rows:
        name = "avmae-vit-large-" + path.replace("_", "-")
        kwargs = dict(pretrain[dataset] if task == "pretraining" else finetune[dataset])
        results = []
        if result is not None:
            metric, value, modalities = result
            hub_id = audioset if dataset == "audioset" else vggsound
            results.append(dict(
                task_type="audio-classification", dataset_type=hub_id,
                dataset_name=f"{'AudioSet-2M' if dataset == 'audioset' else 'VGGSound'} ({modalities})",
                metric_type="map" if metric == "mAP" else "accuracy", metric_name=metric, metric_value=value,
                source=_SOURCE,
            ))
        presets[name] = Preset(
            name=name,
            url=f"{_BUCKET}/{dataset}/{path}/checkpoint",
            task=task,
            official_kwargs=kwargs,
            # pretraining configs feed the log-mel unnormalised; fine-tuning configs use mean 1.102, std 2.762
            processor=dict(do_normalize=task == "classification"),
            license=_LICENSE,
            datasets=[audioset if dataset == "audioset" else vggsound],
            description=description + " Converted from the Flax checkpoint WITHOUT verification against the "
            "official code (see the card).",
            results=results,
        )
    return presets


PRESETS = _presets()


def build_model(official_kwargs: Mapping, task: str, fixture: Mapping | None = None, state_dict=None, **overrides):
    """A randomly initialised model: architecture from the shapes of the flat Flax parameter tree ``state_dict``,
    the rest (``max_length``, ``num_frames``, ``bottleneck_fusion_layer``...) from ``official_kwargs``."""
    from ..models.avmae import AVMAEForAudioVisualClassification, AVMAEForPreTraining

    if state_dict is None:
        raise ValueError("AV-MAE models are built from the checkpoint's parameter shapes; pass state_dict=")
    config = config_from_params(state_dict, **dict(official_kwargs), **overrides)
    if task == "classification":
        if config.num_labels == 527 and "problem_type" not in overrides:
            config.problem_type = "multi_label_classification"
        return AVMAEForAudioVisualClassification(config)
    return AVMAEForPreTraining(config)


def convert_state_dict(params: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    return convert_params(params, model)


def build_processor(config, processor_kwargs: Mapping):
    from ..models.avmae import AVMAEFeatureExtractor, AVMAEProcessor, AVMAEVideoProcessor

    kwargs = dict(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    kwargs.update(processor_kwargs)
    side = config.image_size
    stride = 2 if config.num_frames >= 32 else 4  # fine-tuning: 32 frames every 2; pretraining: 16 every 4
    video = AVMAEVideoProcessor(
        num_frames=config.num_frames, frame_sampling_rate=stride,
        size={"shortest_edge": round(side * 256 / 224)}, crop_size={"height": side, "width": side},
    )
    return AVMAEProcessor(AVMAEFeatureExtractor(**kwargs), video)


# The verification record of every AV-MAE conversion (ConversionSpec.unverifiable).
UNVERIFIABLE = "no outputs of the official AV-MAE (JAX/Flax) code were available to compare with"


def verify_fixture(model, folder, fixture: Mapping):
    raise ValueError(
        "no outputs of the official AV-MAE (JAX/Flax) code exist to verify against; the conversion is unverified"
    )
