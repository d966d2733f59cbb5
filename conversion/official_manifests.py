"""Write the key -> shape manifest of every preset's *official* model, built at full size by the official code.

Facts, not code: for each distinct official architecture among a family's presets, the official class is built with
the preset's ``official_kwargs`` with its parameters on the meta device (no memory, no weights), and its ``state_dict()`` key -> shape
table is written as JSON with the checkpoint container the official training scripts save under. The test
``tests/test_preset_manifests.py`` then checks, without the official code, that each preset's config builds our
model whose key table accounts for every official key with the right shape, and vice versa.

Needs the official repository checked out (nothing of it is copied here) and the timm it imports:

    python conversion/official_manifests.py --family videomae --official_repo /path/to/MCG-NJU/VideoMAE \\
        --output_dir src/hf_maskedav/conversion/manifests

Families done: all eight (see docs/conversion.md for each one's set-up): avmae (JAX/Flax, parameter trees traced
with jax.eval_shape), maskfeat and mavil, audiomae, mae_st (the PySlowFast releases with --slowfast_repo), videomae_v2, cavmae (YuanGongND/cav-mae @ 68fe8c2, its ``src`` as --official_repo, timm 0.4.5 the same way) and
videomae (MCG-NJU/VideoMAE @ 14ef8d8, the repository the parity fixtures were made from; timm 1.0.31
installed aside with ``pip install --no-deps --target DIR timm==1.0.31`` and put on ``PYTHONPATH``: its deprecated
``timm.models.layers`` / ``timm.models.registry`` aliases serve the 2022 imports).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import subprocess
import sys
from pathlib import Path

import torch

# family -> {task: (official module, class name)} and the top-level key the released .pth files keep the weights
# under, per task (VideoMAE: utils.save_model writes {"model": ...}; fine-tuning ran under DeepSpeed, whose
# save_checkpoint writes {"module": ...})
FAMILIES = {
    "videomae": {
        "pretraining": ("modeling_pretrain", "PretrainVisionTransformer"),
        "classification": ("modeling_finetune", "VisionTransformer"),
        "container": {"pretraining": "model", "classification": "module"},
    },
    # OpenGVLab/VideoMAEv2: models/modeling_{pretrain,finetune}.py imported as the package ``models`` (pass the
    # checkout as --official_repo); containers as VideoMAE (the official scripts' save_model / DeepSpeed)
    "videomae_v2": {
        "pretraining": ("models.modeling_pretrain", "PretrainVisionTransformer"),
        "classification": ("models.modeling_finetune", "VisionTransformer"),
        "container": {"pretraining": "model", "classification": "module"},
    },
    # YuanGongND/cav-mae: src/models/{cav_mae,pos_embed}.py imported as the package ``models`` (pass the folder holding
    # ``models/`` as --official_repo, e.g. the repository's ``src``); the released files are bare state dicts saved
    # from nn.DataParallel (every key prefixed ``module.``)
    "cavmae": {
        "pretraining": ("models.cav_mae", "CAVMAE"),
        "classification": ("models.cav_mae", "CAVMAEFT"),
        "container": {"pretraining": "bare, keys prefixed module.", "classification": "bare, keys prefixed module."},
        "not_arguments": ("classification_mode",),  # our presets record the fine-tuning mode; not an official argument
        "shims": ("numpy.float",),  # pos_embed.py uses np.float (removed in numpy 1.24); nothing computed changes
    },
    # facebookresearch/mae_st, imported as the package ``mae_st`` (pass the folder *holding* the checkout, named
    # mae_st, as --official_repo; its util/logging.py needs simplejson and iopath). The mae_st releases are
    # MaskedAutoencoderViT pretraining checkpoints (encoder + decoder) that our "encoder" presets convert into the
    # encoder: the official model is built with the decoder PRETRAIN.md trains (main_pretrain.py's arguments).
    # The PySlowFast releases (*-slowfast-pretrained presets) are PySlowFast MaskMViT with the MAE decoder: built as
    # the maskfeat family builds MaskMViT, from the official configs/masked_ssl/k400_VIT_*_16x4_MAE_PT.yaml (pass
    # the SlowFast checkout as --slowfast_repo); released as {"model_state": ...}.
    "mae_st": {
        "encoder": ("mae_st.models_mae", "MaskedAutoencoderViT"),
        "container": {"encoder": "model"},
        "extra_arguments": {"encoder": dict(decoder_embed_dim=512, decoder_depth=4, decoder_num_heads=16,
                                            pred_t_dim=8)},
        "slowfast": {"yaml": {"base": "k400_VIT_B_16x4_MAE_PT.yaml", "large": "k400_VIT_L_16x4_MAE_PT.yaml",
                              "huge": "k400_VIT_H_16x4_MAE_PT.yaml"},
                     "class": ("slowfast.models.masked", "MaskMViT"), "container": "model_state"},
    },
    # roger-tseng/av-superb upstream_models/mavil (the MAViL authors' encoder code; pass upstream_models as
    # --official_repo, the folder is imported as the package ``mavil``; timm 0.4.5 as its requirements pin). Built as
    # expert.py builds it: vitmm_base_patch16's arguments plus expert.py's, then PatchEmbed_new on the (1024, 128)
    # fbank and a new pos_embed. expert.py loads the released file with strict=False; this is the model it loads into.
    "mavil": {
        "encoder": ("mavil.models_vitmm", "VisionTransformerMM"),
        "container": {"encoder": "model"},
        "not_arguments": {"encoder": ("audio_size", "video_size")},  # our bookkeeping (the swap below uses audio_size)
        "extra_arguments": {"encoder": dict(num_classes=527, drop_path_rate=0.1, mask_2d=True)},
        "post_build": {"encoder": "mavil_expert_swap"},
        "shims": ("numpy.float",),
        "norm_layer_eps": 1e-6,
    },
    # facebookresearch/SlowFast (pass the checkout as --official_repo; fvcore, yacs, iopath, simplejson, termcolor,
    # tabulate, portalocker installed aside). MaskMViT is built from the official yaml each preset names
    # (configs/masked_ssl/*_MaskFeat_PT.yaml) with NUM_GPUS 0; detectron2, pytorchvideo and cv2 are import-only stubs
    # (used by other models, detection heads and data loading, not by MaskMViT). Released files: {"model_state": ...}.
    "maskfeat": {
        "image-pretraining": ("slowfast.models.masked", "MaskMViT"),
        "video-pretraining": ("slowfast.models.masked", "MaskMViT"),
        "container": {"image-pretraining": "model_state", "video-pretraining": "model_state"},
        "builder": "slowfast_maskmvit",
        "stubs": ("detectron2", "pytorchvideo", "cv2"),
    },
    # facebookresearch/AudioMAE with timm 0.3.2 and the repository's timm_patch applied as timm_patch.sh does
    # (swin_transformer.py into timm/models, helpers.py into timm/models/layers). Fine-tuned models are built as
    # main_finetune_as.py does: the timm ViT (default 224x224x3 input), then patch_embed replaced by PatchEmbed_new
    # on the (1024, 128) single-channel fbank and pos_embed re-created for its patches.
    "audiomae": {
        "pretraining": ("models_mae", "MaskedAutoencoderViT"),
        "classification": ("models_vit", "VisionTransformer"),
        "container": {"pretraining": "model", "classification": "model"},
        "not_arguments": {"classification": ("img_size", "in_chans")},  # set by the swap below, as the script does
        "post_build": {"classification": "audiomae_finetune_swap"},
        "shims": ("numpy.float", "torch._six"),  # util/pos_embed.py np.float; util/misc.py `from torch._six import inf`
        "norm_layer_eps": 1e-6,  # norm_layer=partial(nn.LayerNorm, eps=1e-6), as the official vit_*/mae_vit_* factories pass
    },
    # google-research/scenic projects/av_mae (JAX/Flax; pass the checkout, the folder holding the package scenic, as
    # --official_repo; jax, flax, ml_collections and immutabledict installed aside). Each preset's model is built from
    # the official config file of its dataset and stage (configs/{audioset,vggsound}/{pretrain,finetune}.py) with
    # the modalities of the release (pretraining: dataset modalities and masked-feature targets; fine-tuning:
    # model.modality_fusion, as the configs' "NB" comments say), and its parameter tree is traced with
    # jax.eval_shape(model.init, ...) (shapes only, nothing allocated). tensorflow and clu are import-only stubs
    # (gfile and parameter summaries, not used by model.init). Keys are the flattened parameter tree ("a/b/c") as the
    # Flax checkpoint stores it under the train state's params.
    "avmae": {
        "pretraining": ("scenic.projects.av_mae.vivit_multimodal", "ViViTMultiMaskedAutoencoder"),
        "classification": ("scenic.projects.av_mae.mbt", "MBT"),
        "container": {"pretraining": "Flax msgpack train state, params", "classification": "Flax msgpack train state, params"},
        "builder": "scenic_avmae",
        "stubs": ("tensorflow", "clu"),
    },
}

# AV-MAE preset -> (dataset config folder, the released modalities in Scenic's names), from the preset's path
AVMAE_MODALITIES = {
    "selfsup-audiovisual": ("spectrogram", "rgb"), "selfsup-audio": ("spectrogram",),
    "finetuned-audiovisual": ("rgb", "spectrogram"), "finetuned-audio": ("spectrogram",), "finetuned-video": ("rgb",),
}
# One-token fixes of the published source, applied in memory when it is loaded (nothing is written to the checkout):
# vivit_multimodal.tokenize_input lists the video modality as 'RGB' while every config, the dataset's input dict and
# the README's SavedModel outputs call it 'rgb', so the published code raises "Modality rgb is not supported!" for
# audiovisual pretraining; both configs/*/finetune.py have a comment line without its '#'
# (a SyntaxError as published).
AVMAE_SOURCE_FIXES = {
    "scenic/projects/av_mae/vivit_multimodal.py": ("temporal_encode = {'RGB', ", "temporal_encode = {'RGB', 'rgb', "),
    **{f"scenic/projects/av_mae/configs/{dataset}/finetune.py": (
        "  NB: Set this path correctly to the pretrained checkpoint",
        "  # NB: Set this path correctly to the pretrained checkpoint") for dataset in ("audioset", "vggsound")},
}


def _avmae_release(preset_name: str) -> tuple[str, str, tuple[str, ...]]:
    dataset = "audioset" if "-as2m-" in preset_name else "vggsound"
    stage = "finetune" if "-finetuned-" in preset_name else "pretrain"
    key = ("finetuned-" if stage == "finetune" else "selfsup-") + preset_name.rsplit("-", 1)[1]
    return dataset, stage, AVMAE_MODALITIES[key]


def _load_fixed(repo: Path, relative: str, module):
    """Exec ``relative`` of the checkout into ``module`` with its AVMAE_SOURCE_FIXES replacement (exactly once)."""
    path = repo / relative
    source = path.read_text()
    old, new = AVMAE_SOURCE_FIXES[relative]
    if source.count(old) != 1:
        raise SystemExit(f"{relative}: expected the published text {old!r} once; the checkout differs")
    exec(compile(source.replace(old, new), str(path), "exec"), module.__dict__)
    return module


def _avmae_config(repo: Path, preset_name: str):
    """The official config of a preset's release (its dataset and stage, with the release's modalities)."""
    import types

    install_stubs("avmae")
    from scenic.projects.av_mae import vivit_multimodal

    if not getattr(vivit_multimodal, "_source_fixed", False):  # re-exec the module's source once, fixed
        _load_fixed(repo, "scenic/projects/av_mae/vivit_multimodal.py", vivit_multimodal)
        vivit_multimodal._source_fixed = True
    dataset, stage, modalities = _avmae_release(preset_name)
    relative = f"scenic/projects/av_mae/configs/{dataset}/{stage}.py"
    config_module = types.ModuleType(f"avmae_config_{dataset}_{stage}")
    if relative in AVMAE_SOURCE_FIXES:
        _load_fixed(repo, relative, config_module)
    else:
        exec(compile((repo / relative).read_text(), relative, "exec"), config_module.__dict__)
    config = config_module.get_config()
    if stage == "pretrain":  # "NB: Change the following appropriately to train on a single modality."
        config.dataset_configs.modalities = modalities
        config.masked_feature_loss.target = set(modalities)
    else:  # "NB: Adjust this to finetune on different modalities"
        config.model.modality_fusion = modalities
    return config, relative, stage, modalities


def avmae_manifest(repo: Path, preset_name: str) -> dict:
    """The official AV-MAE parameter tree of a preset, traced with jax.eval_shape (no parameter is allocated)."""
    import math

    import flax
    import jax
    import jax.numpy as jnp
    from flax import traverse_util

    config, relative, stage, modalities = _avmae_config(repo, preset_name)
    from scenic.projects.av_mae import registry

    data = config.dataset_configs
    model = registry.get_model_cls(config.model_name)(config, {"num_classes": data.num_classes})
    shapes = {  # the dataset's input_shape (batch 1): frames [T, H, W, 3], the 2-D spectrogram [T*100, 128, 1]
        "rgb": (1, data.num_frames, data.crop_size, data.crop_size, 3),
        "spectrogram": (1, data.num_spec_frames * data.spec_shape[0], data.spec_shape[1], 1),
    }
    inputs = {m: jax.ShapeDtypeStruct(shapes[m], jnp.float32) for m in modalities}
    rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    variables = jax.eval_shape(lambda r, x: model.flax_model.init(r, x, train=True, debug=False), rngs, inputs)
    if set(variables) != {"params"}:
        raise SystemExit(f"{preset_name}: collections besides params: {sorted(variables)}")
    flat = traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]), sep="/")
    state = {key: list(value.shape) for key, value in sorted(flat.items())}
    return {
        "official_class": f"{type(model.flax_model).__module__}.{type(model.flax_model).__name__}",
        "official_config": relative.split("av_mae/", 1)[1],
        "official_config_changes": ({"dataset_configs.modalities": list(modalities),
                                     "masked_feature_loss.target": sorted(modalities)} if stage == "pretrain"
                                    else {"model.modality_fusion": list(modalities)}),
        "official_source_fixes": {k: v for k, v in AVMAE_SOURCE_FIXES.items()
                                  if k == relative or k.endswith("vivit_multimodal.py") and stage == "pretrain"},
        "inputs": {m: list(shapes[m]) for m in modalities},
        # what the weights cannot tell, as the config sets it (the test compares the preset's values with these)
        "official_config_values": (
            {"token_mask_probability_dict": {m: config.masked_feature_loss.token_mask_probability_dict[m]
                                             for m in modalities}} if stage == "pretrain"
            else {"fusion_layer": config.model.fusion_layer, "n_bottlenecks": config.model.n_bottlenecks,
                  "num_classes": data.num_classes}),
        "num_parameters": sum(math.prod(shape) for shape in state.values()),
        "state_dict": state,
    }


def avmae_forward_check(repo: Path, preset_name: str, tiny: bool) -> None:
    """Official MBT (JAX, seeded random weights + 0.02 noise on every leaf) vs ours after conversion, one seeded input,
    eval mode. ``tiny``: the release's config at width 64, depth 3, fusion from layer 1, 2 bottlenecks, a 64x32
    spectrogram and 4 frames of 32x32 (seconds); otherwise at full size (audio-only ViT-L: about 95 s on 2 cores)."""
    import time

    import flax
    import jax
    import numpy as np
    from flax import traverse_util
    from scenic.projects.av_mae import registry

    from hf_maskedav.conversion import avmae

    config, _, stage, modalities = _avmae_config(repo, preset_name)
    if stage != "finetune":
        raise SystemExit("--forward_check compares classifiers (no masking to pin)")
    model_config, data = config.model, config.dataset_configs
    num_classes = data.num_classes
    frames, side, length, mels = data.num_frames, data.crop_size, data.num_spec_frames * data.spec_shape[0], data.spec_shape[1]
    if tiny:
        model_config.hidden_size, model_config.num_heads, model_config.mlp_dim, model_config.num_layers = 64, 4, 128, 3
        model_config.fusion_layer, model_config.n_bottlenecks, num_classes = 1, 2, 5
        frames, side, length, mels = 4, 32, 64, 32
    model = registry.get_model_cls(config.model_name)(config, {"num_classes": num_classes})
    generator = np.random.RandomState(0)
    inputs = {"rgb": generator.randn(1, frames, side, side, 3).astype(np.float32),
              "spectrogram": generator.randn(1, length, mels, 1).astype(np.float32)}
    inputs = {m: inputs[m] for m in modalities}
    start = time.time()
    params = jax.jit(lambda r, x: model.flax_model.init(r, x, train=False))({"params": jax.random.PRNGKey(0)},
                                                                           dict(inputs))["params"]
    params = jax.tree_util.tree_map(lambda p: p + 0.02 * jax.random.normal(jax.random.PRNGKey(3), p.shape), params)
    reference = np.asarray(model.flax_model.apply({"params": params}, dict(inputs), train=False))  # MBT edits its dict
    flat = traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/")
    ours = avmae.build_model_from_params({k: torch.from_numpy(np.array(v)) for k, v in flat.items()},
                                         max_length=length, num_mel_bins=mels, num_frames=frames, image_size=side,
                                         bottleneck_fusion_layer=model_config.fusion_layer)
    feed = {}
    if "spectrogram" in inputs:  # official [N, T, F, 1]; ours [N, T, F]
        feed["input_values"] = torch.from_numpy(inputs["spectrogram"][..., 0])
    if "rgb" in inputs:  # official [N, T, H, W, 3]; ours [N, T, 3, H, W]
        feed["pixel_values"] = torch.from_numpy(inputs["rgb"]).permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        got = ours(**feed).logits.numpy()
    print(f"{preset_name}{' (tiny)' if tiny else ''}: logits {got.shape}, max abs difference "
          f"{np.abs(got - reference).max():.2e} (|logits| max {np.abs(reference).max():.2f}), "
          f"{time.time() - start:.0f} s")


def avmae_main(repo: Path, out: Path, commit: str | None) -> None:
    from hf_maskedav.conversion.avmae import PRESETS

    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, preset in sorted(PRESETS.items()):
        built = avmae_manifest(repo, name)
        kwargs = dict(preset.official_kwargs)
        arch = architecture_id({"task": preset.task, **kwargs, "official_config": built["official_config"],
                                **built["official_config_changes"]})
        index[name] = arch
        class_name = FAMILIES["avmae"][preset.task][1]
        manifest = {"official_class": built["official_class"], "official_repo_commit": commit or None,
                    "official_kwargs": kwargs, "task": preset.task,
                    "container": FAMILIES["avmae"]["container"][preset.task],
                    **{k: v for k, v in built.items() if k not in ("official_class", "state_dict", "num_parameters")},
                    "num_parameters": built["num_parameters"], "state_dict": built["state_dict"]}
        path = out / f"{arch}.json"
        if not path.exists():
            path.write_text(dumps(manifest))
        print(f"{name}: {class_name} {manifest['num_parameters'] / 1e6:.1f}M, {len(manifest['state_dict'])} keys "
              f"-> {path.name}")
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


def dumps(manifest: dict) -> str:
    """JSON with one state-dict entry per line (readable diffs)."""
    head = {k: v for k, v in manifest.items() if k != "state_dict"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["state_dict"].items()]
    return json.dumps(head, indent=1)[:-2] + ',\n "state_dict": {\n' + ",\n".join(lines) + "\n }\n}\n"


def architecture_id(kwargs: dict) -> str:
    return hashlib.sha1(json.dumps(kwargs, sort_keys=True).encode()).hexdigest()[:12]


def official_kwargs(family: str, kwargs, task: str | None = None) -> dict:
    """The preset's arguments the official constructor takes (without our bookkeeping entries)."""
    skip = FAMILIES[family].get("not_arguments", ())
    if isinstance(skip, dict):
        skip = skip.get(task, ())
    return {k: v for k, v in dict(kwargs).items() if k not in skip}


def audiomae_finetune_swap(model, preset_kwargs: dict) -> None:
    """main_finetune_as.py (audio_exp, no custom patch): PatchEmbed_new on the fbank and a new pos_embed."""
    import torch.nn as nn
    from util.patch_embed import PatchEmbed_new

    dim = model.pos_embed.shape[-1]
    model.patch_embed = PatchEmbed_new(img_size=tuple(preset_kwargs["img_size"]), patch_size=(16, 16),
                                       in_chans=preset_kwargs.get("in_chans", 1), embed_dim=dim, stride=16)
    model.pos_embed = nn.Parameter(torch.zeros(1, model.patch_embed.num_patches + 1, dim), requires_grad=False)


def mavil_expert_swap(model, preset_kwargs: dict) -> None:
    """av-superb upstream_models/mavil/expert.py: PatchEmbed_new on the fbank and a new pos_embed."""
    import torch.nn as nn
    from mavil.util.patch_embed import PatchEmbed_new

    dim = model.pos_embed.shape[-1]
    model.patch_embed = PatchEmbed_new(img_size=tuple(preset_kwargs["audio_size"]), patch_size=(16, 16), in_chans=1,
                                       embed_dim=dim, stride=16)
    model.pos_embed = nn.Parameter(torch.zeros(1, model.patch_embed.num_patches + 1, dim), requires_grad=False)


SLOWFAST_YAML = {  # preset name part -> the official pretraining config
    "vit-base-in1k": "in1k_VIT_B_MaskFeat_PT.yaml", "vit-large-in1k": "in1k_VIT_L_MaskFeat_PT.yaml",
    "mvitv2-small-16x4-k400": "k400_MVITv2_S_16x4_MaskFeat_PT.yaml",
    "mvitv2-large-16x4-k400": "k400_MVITv2_L_16x4_MaskFeat_PT.yaml",
}


def slowfast_cfg(repo: Path, preset_name: str):
    from slowfast.config.defaults import assert_and_infer_cfg, get_cfg

    (yaml_name,) = [y for part, y in SLOWFAST_YAML.items() if part in preset_name]
    cfg = get_cfg()
    cfg.merge_from_file(str(repo / "configs" / "masked_ssl" / yaml_name))
    cfg.NUM_GPUS = 0
    return assert_and_infer_cfg(cfg), yaml_name


def yaml_differences(cfg, preset_kwargs: dict) -> list[str]:
    """Where the preset's config sections differ from the official yaml (each a 'SECTION.KEY: preset vs yaml')."""
    differences = []
    for section, values in preset_kwargs.items():
        for key, value in values.items():
            official = cfg[section][key]
            same = json.dumps(value, sort_keys=True) == json.dumps(
                official if not isinstance(official, tuple) else list(official), sort_keys=True, default=list)
            if not same and not (isinstance(value, (int, float)) and isinstance(official, (int, float))
                                 and float(value) == float(official)):
                differences.append(f"{section}.{key}: preset {value!r} vs yaml {official!r}")
    return differences


def install_stubs(family: str) -> None:
    """Import-only stand-ins for packages the official code imports but never calls in the models built here."""
    prefixes = FAMILIES[family].get("stubs", ())
    if not prefixes or any(getattr(f, "_stub_prefixes", None) == prefixes for f in sys.meta_path):
        return
    import importlib.abc
    import importlib.machinery
    import types

    class Anything:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            return Anything()

        def __getattr__(self, name):
            return Anything()

        def __mro_entries__(self, bases):
            return (object,)

    class StubModule(types.ModuleType):
        __path__ = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything()

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        _stub_prefixes = prefixes

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in prefixes:
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return StubModule(spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())


def apply_shims(family: str) -> None:
    install_stubs(family)
    shims = FAMILIES[family].get("shims", ())
    if "numpy.float" in shims:
        import numpy

        numpy.float = float
    if "torch._six" in shims and "torch._six" not in sys.modules:  # removed in torch 2; only `inf` is imported
        import types

        sys.modules["torch._six"] = types.SimpleNamespace(inf=float("inf"))


def build_official(family: str, task: str, kwargs: dict, preset_kwargs: dict | None = None, empty: bool = True):
    apply_shims(family)
    module_name, class_name = FAMILIES[family][task]
    cls = getattr(importlib.import_module(module_name), class_name)
    from contextlib import nullcontext

    from accelerate import init_empty_weights

    # parameters on meta (no memory); the code's own CPU arithmetic still runs
    eps = FAMILIES[family].get("norm_layer_eps")
    if eps is not None:
        from functools import partial

        kwargs = {**kwargs, "norm_layer": partial(torch.nn.LayerNorm, eps=eps)}
    with init_empty_weights(include_buffers=False) if empty else nullcontext():
        model = cls(kwargs["cfg"]) if FAMILIES[family].get("builder") == "slowfast_maskmvit" else cls(**kwargs)
        post = FAMILIES[family].get("post_build", {}).get(task)
        if post is not None:
            globals()[post](model, preset_kwargs or kwargs)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--official_repo", required=True, help="a checkout of the official repository")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--official_commit", default=None, help="the checkout's commit (read with git when omitted)")
    parser.add_argument("--slowfast_repo", default=None,
                        help="mae_st: the SlowFast checkout (with configs/) for the *-slowfast-pretrained presets")
    parser.add_argument("--slowfast_commit", default=None, help="that checkout's commit (read with git when omitted)")
    parser.add_argument("--forward_check", default=None, metavar="PRESET",
                        help="also build PRESET's official model at full size with seeded random weights, convert it, "
                        "run both on one seeded input and print the largest difference of the outputs")
    args = parser.parse_args(argv)

    repo = Path(args.official_repo).resolve()
    sys.path.insert(0, str(repo))
    commit = args.official_commit or subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if args.family == "avmae":
        avmae_main(repo, Path(args.output_dir) / args.family, commit)
        if args.forward_check == "tiny":  # one release per modality set, the official code at a tiny size
            for name in ("avmae-vit-large-as2m-selfsup-audiovisual-finetuned-audio",
                         "avmae-vit-large-as2m-selfsup-audiovisual-finetuned-video",
                         "avmae-vit-large-as2m-selfsup-audiovisual-finetuned-audiovisual"):
                avmae_forward_check(repo, name, tiny=True)
        elif args.forward_check:
            avmae_forward_check(repo, args.forward_check, tiny=False)
        return
    presets = importlib.import_module(f"hf_maskedav.conversion.{args.family}").PRESETS
    out = Path(args.output_dir) / args.family
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, preset in sorted(presets.items()):
        if any(word in name for word in FAMILIES[args.family].get("skip", ())):
            continue
        kwargs = dict(preset.official_kwargs)
        slowfast = FAMILIES[args.family].get("slowfast")
        if slowfast is not None and "slowfast" in name:
            index[name] = mae_st_slowfast_manifest(args, name, preset, out)
            continue
        arch = architecture_id({"task": preset.task, **kwargs})
        index[name] = arch
        path = out / f"{arch}.json"
        if path.exists():
            continue
        extra = FAMILIES[args.family].get("extra_arguments", {}).get(preset.task, {})
        differences = None
        if FAMILIES[args.family].get("builder") == "slowfast_maskmvit":
            apply_shims(args.family)
            cfg, yaml_name = slowfast_cfg(repo, name)
            differences = yaml_differences(cfg, kwargs)
            model = build_official(args.family, preset.task, {"cfg": cfg})
        else:
            model = build_official(args.family, preset.task,
                                   {**official_kwargs(args.family, kwargs, preset.task), **extra}, preset_kwargs=kwargs)
        module_name, class_name = FAMILIES[args.family][preset.task]
        manifest = {
            "official_class": f"{module_name}.{class_name}",
            "official_repo_commit": commit or None,
            "official_kwargs": kwargs,
            **({"official_extra_arguments": extra} if extra else {}),
            **({"official_config": f"configs/masked_ssl/{yaml_name}", "preset_vs_official_config": differences}
               if differences is not None else {}),
            "task": preset.task,
            "container": FAMILIES[args.family]["container"][preset.task],
            "num_parameters": sum(p.numel() for p in model.state_dict().values()),
            "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
        path.write_text(dumps(manifest))
        print(f"{name}: {class_name} {manifest['num_parameters'] / 1e6:.1f}M, {len(manifest['state_dict'])} keys -> {path.name}")
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    if args.forward_check:
        forward_check(args.family, presets[args.forward_check], repo)


# mae_st constructor argument -> where the SlowFast yaml (after assert_and_infer_cfg) sets it
MAE_ST_VS_SLOWFAST = {
    "img_size": ("DATA", "TRAIN_CROP_SIZE", None), "num_frames": ("DATA", "NUM_FRAMES", None),
    "t_patch_size": ("MVIT", "PATCH_KERNEL", 0), "patch_size": ("MVIT", "PATCH_KERNEL", 1),
    "embed_dim": ("MVIT", "EMBED_DIM", None), "depth": ("MVIT", "DEPTH", None), "num_heads": ("MVIT", "NUM_HEADS", None),
    "mlp_ratio": ("MVIT", "MLP_RATIO", None), "sep_pos_embed": ("MVIT", "SEP_POS_EMBED", None),
    "cls_embed": ("MVIT", "CLS_EMBED_ON", None),
}


def mae_st_slowfast_manifest(args, name: str, preset, out: Path) -> str:
    """A *-slowfast-pretrained MAE-ST preset: PySlowFast MaskMViT (MAE decoder) from its official yaml."""
    if not args.slowfast_repo:
        raise SystemExit(f"{name}: pass --slowfast_repo (the SlowFast checkout) for the PySlowFast releases")
    settings = FAMILIES["mae_st"]["slowfast"]
    repo = Path(args.slowfast_repo).resolve()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    commit = args.slowfast_commit or subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (yaml_name,) = [y for size, y in settings["yaml"].items() if f"mae-st-{size}-" in name]
    kwargs = dict(preset.official_kwargs)
    arch = architecture_id({"task": preset.task, **kwargs, "official_config": yaml_name})
    path = out / f"{arch}.json"
    if path.exists():
        return arch
    apply_shims("maskfeat")  # SlowFast's import-only stubs
    from slowfast.config.defaults import assert_and_infer_cfg, get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(repo / "configs" / "masked_ssl" / yaml_name))
    cfg.NUM_GPUS = 0
    cfg = assert_and_infer_cfg(cfg)
    differences = []
    for argument, (section, key, index) in MAE_ST_VS_SLOWFAST.items():
        official = cfg[section][key] if index is None else cfg[section][key][index]
        if kwargs[argument] != official:
            differences.append(f"{argument}: preset {kwargs[argument]!r} vs yaml {section}.{key} {official!r}")
    model = build_official("maskfeat", "video-pretraining", {"cfg": cfg})
    module_name, class_name = settings["class"]
    manifest = {
        "official_class": f"{module_name}.{class_name}",
        "official_repo": "facebookresearch/SlowFast",
        "official_repo_commit": commit or None,
        "official_kwargs": kwargs,
        "official_config": f"configs/masked_ssl/{yaml_name}",
        "preset_vs_official_config": differences,
        "task": preset.task,
        "container": settings["container"],
        "num_parameters": sum(p.numel() for p in model.state_dict().values()),
        "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    path.write_text(dumps(manifest))
    print(f"{name}: {class_name} {manifest['num_parameters'] / 1e6:.1f}M, {len(manifest['state_dict'])} keys -> {path.name}")
    return arch


def _perturbed(model, fixed: str | None = None):
    """Add 0.02 * N(0, 1) (seeded) to every floating tensor of ``model`` except the fixed buffers matching ``fixed``
    (the official init leaves biases at 0, LayerNorms at 1 and some tokens at 0: nothing may be trivially zero)."""
    import re

    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not (fixed and re.match(fixed, key)):
                tensor.add_(0.02 * torch.randn_like(tensor))
    return model.eval()


class _PinnedRand:
    """Within the block, ``torch.rand(*shape)`` returns ``noise`` (the official masking draws its noise with it)."""

    def __init__(self, noise: torch.Tensor):
        self.noise, self.calls = noise, 0

    def __enter__(self):
        self.original = torch.rand

        def pinned(*size, **kwargs):
            shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
            if shape != tuple(self.noise.shape):
                raise RuntimeError(f"torch.rand{shape} drawn, the pinned noise is {tuple(self.noise.shape)}")
            self.calls += 1
            return self.noise.clone()

        torch.rand = pinned
        return self

    def __exit__(self, *exc):
        torch.rand = self.original


def _mavil_expert_module():
    """av-superb's mavil/expert.py, imported as the package's module; torchaudio and torchvision (its waveform and
    frame preprocessing only, not used by its forward) become import-only stand-ins when they are not installed."""
    import types

    for name, attributes in (("torchaudio", ()), ("torchvision", ()), ("torchvision.transforms", ("Compose", "Resize")),
                             ("torchvision.transforms._transforms_video", ("ToTensorVideo", "NormalizeVideo"))):
        try:
            importlib.import_module(name)
        except ImportError:
            module = sys.modules[name] = types.ModuleType(name)
            module.__path__ = []
            for attribute in attributes:
                setattr(module, attribute, type(attribute, (), {"__init__": lambda self, *a, **k: None}))
    return importlib.import_module("mavil.expert")


def encoder_forward_check(family: str, preset, repo: Path | None = None) -> None:
    """Full-size official model vs ours after conversion for the families without a released classifier, seeded
    random weights (the official init, then 0.02 * N(0, 1) on every tensor but fixed filters), eval mode, float32.

    - mae_st: the official ``MaskedAutoencoderViT`` with PRETRAIN.md's decoder, one seeded 16x224x224 clip. Encoder
      features: ``forward_encoder`` at mask ratio 0 with its ``torch.rand`` noise pinned to increasing values (kept
      order = input order) vs ``MAESTModel`` (no masking), tokens after the final norm. Pretraining: ``forward`` at
      mask ratio 0.9 with seeded noise pinned on both sides vs ``MAESTForPreTraining(noise=...)``: prediction, mask,
      loss.
    - maskfeat: ``MaskMViT`` built from the preset's official yaml; the pretraining forward ``model([x, None, mask])``
      with the loader's mask pinned (drawn once by our ``MaskFeatMaskGenerator``, which the parity fixtures show
      equal to the loader's) vs ``MaskFeatForPreTraining(bool_masked_pos=mask)``: HOG predictions and HOG targets of
      the masked tokens.
    - mavil: ``VisionTransformerMM`` as expert.py builds it; expert.py's own ``UpstreamExpert.forward`` on one seeded
      1024x128 fbank and 8-frame 224x224 clip vs the same six feature lists built from ``MAViLModel``'s hidden states.
    """
    import random
    import time

    conversion = importlib.import_module(f"hf_maskedav.conversion.{family}")
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    rows = []  # (output, ours, official)
    if family == "mae_st":
        from functools import partial

        # main_pretrain.py builds the model with models_mae.mae_vit_*_patch*, which pass LayerNorm eps 1e-6
        extra = {**FAMILIES[family]["extra_arguments"]["encoder"], "norm_layer": partial(torch.nn.LayerNorm, eps=1e-6)}
        official = _perturbed(build_official(family, "encoder", {**official_kwargs(family, preset.official_kwargs),
                                                                 **extra}, empty=False))
        state = official.state_dict()
        encoder = conversion.load_official_into(conversion.build_model(preset.official_kwargs, "encoder"), state).eval()
        pretraining = conversion.load_official_into(
            conversion.build_model({**preset.official_kwargs, **FAMILIES[family]["extra_arguments"]["encoder"]},
                                   "pretraining"), state).eval()
        clip = torch.randn(1, 3, preset.official_kwargs["num_frames"], preset.official_kwargs["img_size"],
                           preset.official_kwargs["img_size"], generator=generator)  # official [N, C, T, H, W]
        t_grid, grid = official.patch_embed.t_grid_size, official.patch_embed.grid_size
        length = t_grid * grid * grid
        noise = torch.rand(1, length, generator=generator)
        start = time.time()
        with torch.no_grad():
            with _PinnedRand(torch.arange(length, dtype=torch.float32)[None] / length) as pinned:
                features, _, _ = official.forward_encoder(clip, 0.0)
            assert pinned.calls == 1
            rows.append(("encoder features", encoder(clip.transpose(1, 2)).last_hidden_state[:, 1:], features))
            with _PinnedRand(noise) as pinned:
                loss, pred, mask = official(clip, mask_ratio=0.9)
            assert pinned.calls == 1
            out = pretraining(clip.transpose(1, 2), noise=noise, mask_ratio=0.9)
            rows += [("pretraining prediction", out.logits, pred), ("pretraining mask", out.mask.float(), mask),
                     ("pretraining loss", out.loss.reshape(1), loss.reshape(1))]
    elif family == "maskfeat":
        from hf_maskedav.models.maskfeat.modeling_maskfeat import MaskFeatMaskGenerator

        apply_shims(family)
        cfg, _ = slowfast_cfg(repo, preset.name)
        official = _perturbed(build_official(family, preset.task, {"cfg": cfg}, empty=False), fixed=r"hogs\.")
        ours = conversion.load_official_into(conversion.build_model(preset.official_kwargs, preset.task),
                                             official.state_dict()).eval()
        config = ours.config
        mask = MaskFeatMaskGenerator(config).batch(1, random.Random(0))
        side = config.image_size
        if config.is_video:  # official [N, C, T, H, W]; ours [N, T, C, H, W]
            pixels = torch.randn(1, 3, config.num_frames, side, side, generator=generator)
            ours_pixels = pixels.transpose(1, 2)
        else:
            pixels = ours_pixels = torch.randn(1, 3, side, side, generator=generator)
        start = time.time()
        with torch.no_grad():
            predictions, labels = official([pixels, None, mask.float()])
            out = ours(ours_pixels, bool_masked_pos=mask)
        rows += [(f"HOG predictions of the {int(out.mask.sum())} masked tokens", out.logits[out.mask], predictions[0]),
                 ("HOG targets of the masked tokens", out.hog_targets[out.mask], labels[0][0])]
    elif family == "mavil":
        import types

        extra = FAMILIES[family]["extra_arguments"]["encoder"]
        official = _perturbed(build_official(family, "encoder", {**official_kwargs(family, preset.official_kwargs,
                                                                                   "encoder"), **extra},
                                             preset_kwargs=dict(preset.official_kwargs), empty=False))
        state = official.state_dict()
        ours = conversion.load_official_into(conversion.build_model(preset.official_kwargs, "encoder", state_dict=state),
                                             state).eval()
        expert = _mavil_expert_module()
        fbank = torch.randn(1, *preset.official_kwargs["audio_size"], generator=generator)  # preprocess_audio: [1, T, F]
        clip = torch.randn(3, *preset.official_kwargs["video_size"], generator=generator)  # preprocess_video: [C, T, H, W]
        start = time.time()
        with torch.no_grad():
            reference = expert.UpstreamExpert.forward(types.SimpleNamespace(model=official, ft=False), [(fbank, clip)])
            out = ours(input_values=fbank[None], pixel_values=clip.transpose(0, 1)[None], output_hidden_states=True)
        audio_length = out.fused_audio_hidden_state.shape[1]
        pool = lambda h: h[:, 1:].mean(dim=1, keepdim=True)  # noqa: E731  (cls excluded, as expert.py pools)
        got = {
            "audio_seq_feats": [h[:, 1:] for h in out.audio_hidden_states],
            "audio_feats": [pool(h) for h in out.audio_hidden_states],
            "video_seq_feats": [h[:, 1:] for h in out.video_hidden_states],
            "video_feats": [pool(h) for h in out.video_hidden_states],
            "fusion_seq_feats": list(out.fusion_hidden_states),
            "fusion_feats": [torch.cat([pool(h[:, :audio_length]), pool(h[:, audio_length:])], dim=-1)
                             for h in out.fusion_hidden_states],
        }
        for name, values in got.items():
            rows.append((f"{name} ({len(values)} layers)", torch.stack(values), torch.stack(reference[name])))
    else:
        raise SystemExit(f"no encoder forward check for {family}")
    seconds = time.time() - start
    for name, value, reference in rows:
        if value.shape != reference.shape:
            raise SystemExit(f"{preset.name}: {name}: ours {tuple(value.shape)} vs official {tuple(reference.shape)}")
        print(f"{preset.name}: {name} {tuple(reference.shape)}: max abs difference "
              f"{(value - reference).abs().max().item():.2e} (|official| max {reference.abs().max().item():.3g})")
    print(f"{preset.name}: {seconds:.0f} s for both forwards (building and converting not counted)")


def forward_check(family: str, preset, repo: Path | None = None) -> None:
    """Full-size official classifier vs ours after conversion, seeded random weights, one seeded input (VideoMAE: a
    16-frame 224x224 clip; CAV-MAE: a 1024x128 fbank and a 224x224 frame, in the preset's classification mode;
    Audio-MAE: a 1024x128 fbank). MAE-ST, MaskFeat and MAViL: :func:`encoder_forward_check`."""
    import time

    if family in ("mae_st", "maskfeat", "mavil"):
        return encoder_forward_check(family, preset, repo)

    conversion = importlib.import_module(f"hf_maskedav.conversion.{family}")
    if preset.task != "classification":
        raise SystemExit("--forward_check compares classifiers (no masking to pin)")
    module_name, class_name = FAMILIES[family][preset.task]
    torch.manual_seed(0)
    official = build_official(family, preset.task, official_kwargs(family, preset.official_kwargs, preset.task),
                              preset_kwargs=dict(preset.official_kwargs), empty=False).eval()
    with torch.no_grad():  # the official init leaves biases at 0 and the head tiny: perturb every tensor
        for tensor in official.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.02 * torch.randn_like(tensor))
    ours = conversion.build_model(preset.official_kwargs, preset.task)
    if family == "audiomae":  # the released files store the fixed sin-cos table; the conversion checks it
        with torch.no_grad():
            table = ours.audiomae.embeddings.position_embeddings.build()
            official.pos_embed.copy_(table.reshape(official.pos_embed.shape))
    ours.load_state_dict(conversion.convert_state_dict(official.state_dict(), ours), strict=True)
    ours.eval()
    generator = torch.Generator().manual_seed(1)
    start = time.time()
    with torch.no_grad():
        if family in ("videomae", "videomae_v2"):
            clip = torch.randn(1, 3, 16, 224, 224, generator=generator)  # official layout [B, C, T, H, W]
            reference = official(clip)
            got = ours(clip.transpose(1, 2)).logits  # ours: [B, T, C, H, W]
        elif family == "cavmae":  # fbank [B, 1024, 128] and one frame [B, 3, 224, 224], in the preset's mode
            audio = torch.randn(1, 1024, 128, generator=generator)
            frame = torch.randn(1, 3, 224, 224, generator=generator)
            mode = preset.official_kwargs.get("classification_mode", "multimodal")
            reference = official(audio, frame, mode)
            got = ours(audio, frame, mode=mode).logits
        elif family == "audiomae":  # one 1024x128 fbank, [B, 1, T, F] as the official fine-tuning feeds it
            fbank = torch.randn(1, 1, 1024, 128, generator=generator)
            reference = official(fbank)
            got = ours(fbank).logits
        else:
            raise SystemExit(f"no forward check for {family}")
    diff = (got - reference).abs().max().item()
    print(f"{preset.name}: logits {tuple(got.shape)}, max abs difference {diff:.2e} "
          f"(|logits| max {reference.abs().max().item():.2f}), {time.time() - start:.0f} s for both forwards")


if __name__ == "__main__":
    main()
