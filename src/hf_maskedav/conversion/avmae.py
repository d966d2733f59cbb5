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

Each Scenic block (Flax linen names, numbered per layer type): ``LayerNorm_0``,
``MultiHeadDotProductAttention_0/{query,key,value}`` (kernel ``[D, heads, head_dim]``, bias ``[heads, head_dim]``)
and ``out`` (kernel ``[heads, head_dim, D]``), ``LayerNorm_1``, ``MlpBlock_0/Dense_{0,1}``. These names, and every
other key and shape of the ten released architectures, were checked against the parameter trees the published Scenic
code builds at full size (``conversion/manifests/avmae``, ``tests/test_preset_manifests.py``). Dense kernels are ``[in, out]`` (transposed here), q/k/v are fused into our
``qkv_proj``, Conv kernels ``[kh, kw, in, out]`` / ``[kt, kh, kw, in, out]`` are permuted to PyTorch's layout.

Every leaf of the parameter tree must be consumed and every weight of our model filled (strict accounting, as
:class:`~hf_maskedav.conversion.utils.KeyTable`). What the weights do not say (input length, frame count, the
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
from .utils import UnmappedKeysError

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
        depths = {_count_blocks(params, f"Transformer_{SCENIC_KEYS[m]}") for m in modalities}
        if len(depths) != 1:
            raise ValueError(f"the modality encoders have different depths {sorted(depths)}; not an AV-MAE layout")
        fusion = _count_blocks(params, "Transformer_concat")
        hidden, heads, mlp = _block_shape(params, f"Transformer_{SCENIC_KEYS[modalities[0]]}/encoderblock_0")
        dec_hidden, dec_heads, dec_mlp = _block_shape(params, "Decoder/encoderblock_0")
        fields.update(
            num_hidden_layers=depths.pop() + fusion,
            num_fusion_layers=fusion,
            decoder_hidden_size=dec_hidden,
            decoder_num_attention_heads=dec_heads,
            decoder_intermediate_size=dec_mlp,
            decoder_num_hidden_layers=_count_blocks(params, "Decoder"),
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
# Mapping


class _Reader:
    """Takes tensors out of the flat parameter tree and remembers which were used."""

    def __init__(self, params: Mapping[str, torch.Tensor]):
        self.params = params
        self.used: set[str] = set()
        self.absent: list[str] = []

    def take(self, key: str) -> torch.Tensor | None:
        if key not in self.params:
            self.absent.append(key)
            return None
        self.used.add(key)
        return self.params[key].float()


def _linear(reader, src: str, dst: str, out: dict):
    kernel, bias = reader.take(f"{src}/kernel"), reader.take(f"{src}/bias")
    if kernel is not None:
        out[f"{dst}.weight"] = kernel.t().contiguous()
    if bias is not None:
        out[f"{dst}.bias"] = bias


def _norm(reader, src: str, dst: str, out: dict):
    scale, bias = reader.take(f"{src}/scale"), reader.take(f"{src}/bias")
    if scale is not None:
        out[f"{dst}.weight"] = scale
    if bias is not None:
        out[f"{dst}.bias"] = bias


def _block(reader, src: str, dst: str, out: dict):
    """One Scenic ``EncoderBlock`` -> one of our ``TransformerLayer``."""
    _norm(reader, f"{src}/{NORM1}", f"{dst}.norm1", out)
    attention = f"{src}/{ATTENTION}"
    kernels = [reader.take(f"{attention}/{name}/kernel") for name in ("query", "key", "value")]
    biases = [reader.take(f"{attention}/{name}/bias") for name in ("query", "key", "value")]
    if all(k is not None for k in kernels):
        out[f"{dst}.attention.qkv_proj.weight"] = torch.cat([k.reshape(k.shape[0], -1).t() for k in kernels])
    if all(b is not None for b in biases):
        out[f"{dst}.attention.qkv_proj.bias"] = torch.cat([b.reshape(-1) for b in biases])
    kernel = reader.take(f"{attention}/out/kernel")  # [H, hd, D]
    if kernel is not None:
        out[f"{dst}.attention.o_proj.weight"] = kernel.reshape(-1, kernel.shape[-1]).t().contiguous()
    bias = reader.take(f"{attention}/out/bias")
    if bias is not None:
        out[f"{dst}.attention.o_proj.bias"] = bias
    _norm(reader, f"{src}/{NORM2}", f"{dst}.norm2", out)
    _linear(reader, f"{src}/{MLP}/Dense_0", f"{dst}.mlp.fc1", out)
    _linear(reader, f"{src}/{MLP}/Dense_1", f"{dst}.mlp.fc2", out)


def _embeddings(reader, audio_src: str, video_src: str, dst: str, modalities, out: dict):
    if "audio" in modalities:
        kernel = reader.take(f"{audio_src}/kernel")  # [kh (time), kw (mel), 1, D]
        if kernel is not None:
            out[f"{dst}.audio_patch_embed.proj.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
        bias = reader.take(f"{audio_src}/bias")
        if bias is not None:
            out[f"{dst}.audio_patch_embed.proj.bias"] = bias
    if "video" in modalities:
        kernel = reader.take(f"{video_src}/kernel")  # [kt, kh, kw, C, D]
        if kernel is not None:
            out[f"{dst}.video_patch_embed.proj.weight"] = kernel.permute(4, 3, 0, 1, 2).contiguous()
        bias = reader.take(f"{video_src}/bias")
        if bias is not None:
            out[f"{dst}.video_patch_embed.proj.bias"] = bias


def _map_pretraining(reader, config: AVMAEConfig, out: dict):
    _embeddings(reader, "embedding_spectrogram", "embedding_rgb", "avmae.embeddings", config.modalities, out)
    depth = config.num_hidden_layers - config.num_fusion_layers
    for name in config.modalities:
        scenic = SCENIC_KEYS[name]
        for i in range(depth):
            _block(reader, f"Transformer_{scenic}/encoderblock_{i}", f"avmae.{name}_layers.{i}", out)
        _norm(reader, f"Transformer_{scenic}/encoder_norm", f"avmae.{name}_norm", out)
        _linear(reader, f"decoder_projection_{scenic}", f"decoder.{name}_projection", out)
        token = reader.take(f"mask_token_{scenic}")
        if token is not None:
            out[f"decoder.{name}_mask_token"] = token
        _linear(reader, f"output_projection_{scenic}", f"decoder.{name}_pred", out)
    for i in range(config.num_fusion_layers):
        _block(reader, f"Transformer_concat/encoderblock_{i}", f"avmae.fusion_layers.{i}", out)
    if config.num_fusion_layers:
        _norm(reader, "Transformer_concat/encoder_norm", "avmae.fusion_norm", out)
    for i in range(config.decoder_num_hidden_layers):
        _block(reader, f"Decoder/encoderblock_{i}", f"decoder.layers.{i}", out)
    _norm(reader, "Decoder/encoder_norm", "decoder.norm", out)


def _map_classification(reader, config: AVMAEConfig, out: dict):
    _embeddings(reader, "embedding_spectrogram", "embedding", "embeddings", config.modalities, out)
    # official modality_fusion = ('rgb', 'spectrogram'): the first one owns the unsuffixed blocks
    first = "video" if "video" in config.modalities else "audio"
    for name in config.modalities:
        suffix = "" if name == first else "_spec"
        for i in range(config.num_hidden_layers):
            _block(reader, f"Transformer/encoderblock_{i}{suffix}", f"{name}_layers.{i}", out)
    _norm(reader, "Transformer/encoder_norm", "norm", out)
    if len(config.modalities) > 1:
        bottleneck = reader.take("bottleneck")
        if bottleneck is not None:
            out["bottleneck"] = bottleneck
    elif "bottleneck" in reader.params:  # MBT creates it for one modality too; that forward never reads it
        reader.used.add("bottleneck")
    _linear(reader, CLASSIFIER, "classifier", out)


def convert_params(params: Mapping[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Map a flat Scenic parameter tree onto ``model`` with strict accounting (raises :class:`UnmappedKeysError`)."""
    from ..models.avmae import AVMAEForPreTraining

    reader, converted = _Reader(params), {}
    if isinstance(model, AVMAEForPreTraining):
        _map_pretraining(reader, model.config, converted)
    else:
        _map_classification(reader, model.config, converted)
    expected = model.state_dict()
    problems = []
    unused = sorted(set(params) - reader.used)
    if unused:
        problems.append(f"checkpoint parameters nobody maps: {unused}")
    if reader.absent:
        problems.append(f"parameters the model needs but the checkpoint lacks: {sorted(reader.absent)}")
    unexpected = sorted(k for k in converted if k not in expected)
    if unexpected:
        problems.append(f"mapped keys the model does not have: {unexpected}")
    missing = sorted(k for k in expected if k not in converted)
    if missing:
        problems.append(f"model keys the checkpoint does not fill: {missing}")
    mismatched = sorted(
        f"{k}: checkpoint {tuple(converted[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in converted
        if k in expected and converted[k].shape != expected[k].shape
    )
    if mismatched:
        problems.append(f"shape mismatches: {mismatched}")
    if problems:
        raise UnmappedKeysError("checkpoint does not match the model architecture:\n  " + "\n  ".join(problems))
    return converted


def build_model_from_params(params: Mapping[str, torch.Tensor], **overrides):
    """A model of the checkpoint's architecture (randomly initialised) and its converted weights loaded."""
    from ..models.avmae import AVMAEForAudioVisualClassification, AVMAEForPreTraining

    config = config_from_params(params, **overrides)
    model_class = AVMAEForPreTraining if task_from_params(params) == "pretraining" else AVMAEForAudioVisualClassification
    model = model_class(config)
    model.load_state_dict(convert_params(params, model), strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# Released checkpoints and the pieces conversion/convert_avmae.py plugs into the shared command line.

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


def task_from_kwargs(kwargs: Mapping) -> str:
    return "classification" if "bottleneck_fusion_layer" in kwargs or "num_labels" in kwargs else "pretraining"


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


def verify_fixture(model, folder, fixture: Mapping):
    raise ValueError(
        "no outputs of the official AV-MAE (JAX/Flax) code exist to verify against; the conversion is unverified"
    )


def convert(spec, argv=None) -> Path:
    """The shared command line (:func:`hf_maskedav.conversion.cli.convert`) for Flax checkpoints.

    Same arguments and output folder (safetensors weights, processor, model card, ``conversion.json``, optional push);
    the checkpoint is read with the JAX-free msgpack reader and the architecture comes from its parameter shapes.
    ``--official_kwargs`` takes a JSON object of the config fields the weights cannot tell (``max_length``,
    ``num_frames``, ``bottleneck_fusion_layer``...).
    """
    import json
    import shutil

    from .cli import (
        _labels_from_csv, build_parser, export_demo_space, hub_operations, push_to_hub, render_model_card,
        resolve_checkpoint,
    )

    args = build_parser(spec).parse_args(argv)
    output = Path(args.output_dir)
    if output.exists() and any(output.iterdir()) and not args.overwrite:
        raise SystemExit(f"error: {output} is not empty; choose another --output_dir or pass --overwrite")
    preset = spec.presets[args.preset] if args.preset else None
    overrides = dict(preset.official_kwargs) if preset else {}
    if args.official_kwargs:
        path = Path(args.official_kwargs)
        overrides.update(json.loads(path.read_text() if path.is_file() else args.official_kwargs))
    source = args.checkpoint or (preset.url if preset else None)
    if source is None:
        raise SystemExit("error: no checkpoint: pass --preset NAME or --checkpoint URL_OR_PATH")
    checkpoint_path = resolve_checkpoint(source)
    print(f"reading {checkpoint_path} (Flax msgpack, no JAX)")
    params = load_flax_params(checkpoint_path)
    task = task_from_params(params)
    if args.labels_csv:
        id2label = _labels_from_csv(args.labels_csv)
        overrides.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = build_model(overrides, task, state_dict=params)
    model.load_state_dict(convert_state_dict(params, model), strict=True)
    model.eval()
    print(f"converted {len(params)} Flax parameters into {type(model).__name__} (strict accounting passed)")
    verification = {
        "status": "unverified",
        "reason": "no outputs of the official AV-MAE (JAX/Flax) code were available to compare with",
    }
    if args.verify:
        print(f"verify: {verification['reason']}")

    if output.exists() and args.overwrite:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    processor = spec.build_processor(model.config, dict(preset.processor) if preset else {})
    processor.save_pretrained(output)
    card = render_model_card(spec, preset, task, verification, source, args.push_to_hub or output.name,
                             space_id=args.space_id)
    card.save(output / "README.md")
    export_demo_space(args)
    (output / "conversion.json").write_text(
        json.dumps({"source": source, "preset": args.preset, "task": task, "verification": verification}, indent=2)
    )
    print(f"wrote {output}")
    if args.push_to_hub:
        if args.dry_run:
            for op in hub_operations(output):
                print(f"would upload {op.path_in_repo} -> {args.push_to_hub}@{args.revision or 'main'}")
        else:
            push_to_hub(output, args.push_to_hub, private=args.private, revision=args.revision)
    return output
