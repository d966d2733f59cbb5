"""Pretraining step time of every family, and against transformers side by side.

Examples (from the repository root)::

    # our VideoMAE ViT-S vs transformers' VideoMAEForPreTraining, forward+backward, same weights and masks
    python -m benchmarks.pretrain_step --family videomae --size small --num-frames 16 --image-size 112 \\
        --batch-size 4 --compare transformers --threads 1

    # ... and with torch.compile on both sides
    python -m benchmarks.pretrain_step --family videomae --size small --num-frames 16 --image-size 112 \\
        --batch-size 4 --compare transformers --compile --threads 1

    # a whole training step (fused AdamW), ours compiled vs transformers eager
    python -m benchmarks.pretrain_step --family videomae --size small --image-size 112 --mode train --compile \\
        --compare transformers --peer-eager-only

    # every family at ViT-B on a GPU, bf16 autocast, with TFLOP/s and MFU
    python -m benchmarks.pretrain_step --family all --size base --batch-size 32 --bf16 --compile

What is measured: ``--mode fwd_bwd`` times ``loss = model(**inputs).loss; loss.backward()`` (gradients dropped after
each step); ``--mode train`` adds the optimizer (fused AdamW where the device has it, gradient clipping with
``--max-grad-norm``) and ``zero_grad``. Every contender gets the same inputs and masks each step; contenders take turns
(interleaved) and the median of ``--repeats`` is reported with the ratio to the peer. Peak memory is the largest
amount allocated during one step beyond what was allocated before it (activations, gradients, temporaries), from
the CUDA allocator on GPUs and the profiler's allocation events on CPU. FLOPs (matmuls, convolutions and attention,
forward and backward) are counted once with ``torch.utils.flop_counter``; TFLOP/s = FLOPs / median step time, MFU =
TFLOP/s / the device's dense peak for the precision used (GPUs only).

``--compare transformers`` is available for:

* ``videomae``: ``transformers.VideoMAEForPreTraining`` built from the same config; our model is converted from it
  (identical weights), both see the same tube mask (ours draws it on the device from the noise, transformers gets it
  as ``bool_masked_pos``); the losses of the first step are compared and printed.
* ``videomae_v2``: the same peer and weights, ours with V2's dual masking (running-cell decoder mask 0.5, drawn
  inside each step with a fixed count): the decoder sees the visible tokens plus the kept half, where transformers'
  decoder sees every token. Not the same function (V2 reconstructs fewer tokens), so losses are not compared.
* ``mae_st``: ``transformers.ViTMAEForPreTraining`` on single frames (``--num-frames 1``, tubelet 1) with the
  mappable weights copied and the same noise. The work is identical (same layers, widths, token counts, masking
  and loss), but the models are not the same function: MAE-ST's decoder has its own cls token where ViTMAE decodes
  the projected encoder cls, and MAE-ST's positions are learned separable tables. A like-for-like *cost*
  comparison, not an output comparison. For clips (``T > 1``) transformers has no MAE-ST: no comparison is made.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    Table,
    add_common_args,
    compile_available,
    count_flops,
    device_peak_tflops,
    interleaved,
    median,
    mib,
    peak_memory,
    print_report,
    setup,
)
from benchmarks.families import FAMILIES, InputSize, build, canonical_size

PEERS = {
    "videomae": "transformers.VideoMAEForPreTraining",
    "videomae_v2": "transformers.VideoMAEForPreTraining (no decoder masking)",
    "mae_st": "transformers.ViTMAEForPreTraining (single frames)",
}


@dataclass
class Contender:
    name: str
    model: torch.nn.Module
    inputs: dict
    is_peer: bool = False
    compiled: bool = False


# ------------------------------------------------------------------------------------------------------------- peers
def _videomae_peer(config, inputs: dict, device):
    """transformers' VideoMAE with our config's shape, our model converted from it, and the pinned tube mask."""
    import transformers

    from hf_maskedav.conversion.videomae import load_transformers_videomae
    from hf_maskedav.models.videomae.modeling_videomae import tube_mask_from_noise

    peer_config = transformers.VideoMAEConfig(
        image_size=config.image_size, patch_size=config.patch_size, num_channels=config.num_channels,
        num_frames=config.num_frames, tubelet_size=config.tubelet_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, qkv_bias=config.qkv_bias,
        decoder_hidden_size=config.decoder_hidden_size, decoder_num_hidden_layers=config.decoder_num_hidden_layers,
        decoder_num_attention_heads=config.decoder_num_attention_heads,
        decoder_intermediate_size=config.decoder_intermediate_size, norm_pix_loss=config.norm_pix_loss,
        use_mean_pooling=config.use_mean_pooling,
    )
    if config.mask_type != "tube":
        raise ValueError("the transformers comparison uses tube masking (VideoMAE's default mask_type)")
    torch.manual_seed(0)
    peer = transformers.VideoMAEForPreTraining(peer_config)
    with torch.no_grad():  # non-trivial biases and norms, so that a wrong mapping shows in the loss
        for param in peer.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    ours = load_transformers_videomae(peer)
    ours.config.mask_ratio = config.mask_ratio
    ours.config.decoder_mask_ratio = config.decoder_mask_ratio  # V2: the decoder reconstructs the kept tokens only
    grid_t = config.grid_size[0]
    mask = tube_mask_from_noise(inputs["noise"], grid_t, config.mask_ratio)
    peer_inputs = {"pixel_values": inputs["pixel_values"], "bool_masked_pos": mask}
    same_function = not config.decoder_mask_ratio  # with dual masking the work and the loss differ on purpose
    return ours.to(device), peer.to(device), dict(inputs), peer_inputs, same_function


def _mae_st_peer(config, inputs: dict, device):
    """transformers' ViTMAE at the same widths on single frames; mappable weights copied (see the module doc)."""
    import transformers

    from hf_maskedav import MAESTConfig, MAESTForPreTraining

    if config.num_frames != 1:
        raise ValueError(
            "transformers has no space-time MAE: the MAE-ST comparison (against ViTMAEForPreTraining) runs on single "
            "frames only; pass --num-frames 1"
        )
    peer_config = transformers.ViTMAEConfig(
        image_size=config.image_size, patch_size=config.patch_size, num_channels=config.num_channels,
        hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        qkv_bias=config.qkv_bias, decoder_hidden_size=config.decoder_hidden_size,
        decoder_num_hidden_layers=config.decoder_num_hidden_layers,
        decoder_num_attention_heads=config.decoder_num_attention_heads,
        decoder_intermediate_size=config.decoder_intermediate_size, mask_ratio=config.mask_ratio,
        norm_pix_loss=config.norm_pix_loss,
    )
    torch.manual_seed(0)
    peer = transformers.ViTMAEForPreTraining(peer_config)
    ours = MAESTForPreTraining(MAESTConfig(**{**config.to_diff_dict(), "layer_norm_eps": peer_config.layer_norm_eps}))
    _copy_vit_mae_weights(peer, ours)
    peer_inputs = {"pixel_values": inputs["pixel_values"][:, 0], "noise": inputs["noise"]}
    return ours.to(device), peer.to(device), dict(inputs), peer_inputs, False


def _copy_vit_mae_weights(peer, ours) -> None:
    """ViTMAE weights into the single-frame MAE-ST (everything that has a counterpart)."""
    src = peer.state_dict()
    dst = {}

    def blocks(prefix_src, prefix_dst, count):
        for i in range(count):
            s, d = f"{prefix_src}.{i}.", f"{prefix_dst}.{i}."
            for part in ("weight", "bias"):
                dst[d + "attention.qkv_proj." + part] = torch.cat(
                    [src[s + f"attention.{n}_proj.{part}"] for n in ("q", "k", "v")]
                )
                dst[d + "attention.o_proj." + part] = src[s + "attention.o_proj." + part]
                dst[d + "norm1." + part] = src[s + "layernorm_before." + part]
                dst[d + "norm2." + part] = src[s + "layernorm_after." + part]
                dst[d + "mlp.fc1." + part] = src[s + "mlp.fc1." + part]
                dst[d + "mlp.fc2." + part] = src[s + "mlp.fc2." + part]

    config = ours.config
    blocks("vit.layers", "mae_st.layers", config.num_hidden_layers)
    blocks("decoder.decoder_layers", "decoder.layers", config.decoder_num_hidden_layers)
    dst["mae_st.embeddings.cls_token"] = src["vit.embeddings.cls_token"]
    dst["mae_st.embeddings.patch_embed.proj.weight"] = src["vit.embeddings.patch_embeddings.projection.weight"][:, :, None]
    dst["mae_st.embeddings.patch_embed.proj.bias"] = src["vit.embeddings.patch_embeddings.projection.bias"]
    for side, table in (("mae_st.embeddings", "vit.embeddings.position_embeddings"), ("decoder", "decoder.decoder_pos_embed")):
        dst[f"{side}.position_embeddings.spatial"] = src[table][:, 1:]
        dst[f"{side}.position_embeddings.cls"] = src[table][:, :1]
    for part in ("weight", "bias"):
        dst["mae_st.norm." + part] = src["vit.layernorm." + part]
        dst["decoder.decoder_embed." + part] = src["decoder.decoder_embed." + part]
        dst["decoder.norm." + part] = src["decoder.decoder_norm." + part]
        dst["decoder.pred." + part] = src["decoder.decoder_pred." + part]
    dst["decoder.mask_token"] = src["decoder.mask_token"]
    missing, unexpected = ours.load_state_dict(dst, strict=False)
    left = sorted(set(missing) - {"mae_st.embeddings.position_embeddings.temporal", "decoder.position_embeddings.temporal", "decoder.cls_token"})
    if left or unexpected:
        raise RuntimeError(f"ViTMAE -> MAE-ST weight copy incomplete: missing {left}, unexpected {unexpected}")
    with torch.no_grad():
        ours.mae_st.embeddings.position_embeddings.temporal.zero_()
        ours.decoder.position_embeddings.temporal.zero_()


PEER_BUILDERS = {"videomae": _videomae_peer, "videomae_v2": _videomae_peer, "mae_st": _mae_st_peer}


# -------------------------------------------------------------------------------------------------------------- steps
def make_step(contender: Contender, args, device) -> Callable[[], float | None]:
    model = contender.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = None
    if args.mode == "train":
        fused = device.type in ("cuda", "cpu")  # fused AdamW exists for CUDA and (torch >= 2.4) CPU
        optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, fused=fused)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    )
    forward = torch.compile(model, fullgraph=args.fullgraph and not contender.is_peer) if contender.compiled else model

    def step():
        with autocast():
            loss = forward(**contender.inputs).loss
        loss.backward()
        if optimizer is not None:
            if args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            for p in params:
                p.grad = None
        return loss

    return step


def _ratio(reference: list[float] | None, values: list[float]) -> str | None:
    return f"{median(reference) / median(values):.2f}x" if reference else None


def _input_desc(config, family: str) -> str:
    if family in ("audiomae",):
        return f"{config.max_length}x{config.num_mel_bins} fbank"
    if family == "mavil":
        return f"{config.max_length}x{config.num_mel_bins} fbank + {config.num_frames}x{config.image_size}^2"
    frames = getattr(config, "num_frames", 1)
    size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
    return f"{frames}x{size}^2" if frames > 1 else f"{size}^2"


def run(args) -> str:
    device = setup(args)
    families = list(FAMILIES) if args.family == ["all"] else args.family
    sizes = [canonical_size(s) for s in args.size]
    precision = "bf16" if args.bf16 else ("tf32" if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else "fp32")
    peak_tflops = args.peak_tflops or device_peak_tflops(device, precision)
    can_compile, why_not = compile_available(device)
    if args.compile and not can_compile:
        print(f"torch.compile unavailable ({why_not}); running eager only", file=sys.stderr)

    cpu_clock = device.type == "cpu"
    table = Table(["family", "size", "input", "batch", "contender", "median ms", "min ms", "samples/s", "vs peer"]
                  + (["CPU ms", "vs peer (CPU)"] if cpu_clock else []) + ["peak MiB", "TFLOP/s", "MFU"])
    notes = [f"mode {args.mode}, precision {precision}, {args.repeats} interleaved repeats (median), "
             f"{args.warmup} warm-up steps each"]
    for family in families:
        for size in sizes:
            geometry = InputSize(args.batch_size, args.num_frames, args.image_size, args.audio_frames, args.mel_bins,
                                 args.mask_ratio)
            model, config, inputs = build(family, size, geometry, device, seed=args.seed)
            contenders: list[Contender] = []
            compare = args.compare == "transformers" and family in PEER_BUILDERS
            if args.compare == "transformers" and not compare:
                notes.append(f"{family}: transformers has no pretraining model of this family; no peer")
            if compare:
                ours, peer, ours_inputs, peer_inputs, same_function = PEER_BUILDERS[family](config, inputs, device)
                model = ours
                contenders.append(Contender("transformers eager", peer, peer_inputs, is_peer=True))
                if args.compile and can_compile and not args.peer_eager_only:
                    contenders.append(Contender("transformers compiled", copy.deepcopy(peer), peer_inputs, True, True))
                if same_function:
                    with torch.no_grad():
                        a = ours.train()(**ours_inputs).loss
                        b = peer.train()(**peer_inputs).loss
                    notes.append(f"{family} {size}: first-step loss ours {a.item():.6f} vs transformers "
                                 f"{b.item():.6f} (|diff| {abs(a.item() - b.item()):.2e})")
                inputs = ours_inputs
            contenders.insert(0, Contender("ours eager", model, inputs))
            if args.compile and can_compile:
                contenders.insert(1, Contender("ours compiled", copy.deepcopy(model), inputs, compiled=True))

            steps = {c.name: make_step(c, args, device) for c in contenders}
            flops = count_flops(steps["ours eager"]) if args.flops else None
            times = interleaved(steps, device, args.repeats, args.warmup)
            memory = {name: (peak_memory(steps[name], device) if args.memory else None) for name in steps}
            peer = times.get("transformers eager") if compare else None
            for c in contenders:
                t = median(times[c.name].wall)
                tflops = flops / t / 1e12 if flops else None
                mfu = tflops / peak_tflops if (tflops and peak_tflops) else None
                row = [family, size, _input_desc(config, family), args.batch_size, c.name, t * 1e3,
                       min(times[c.name].wall) * 1e3, args.batch_size / t, _ratio(peer and peer.wall, times[c.name].wall)]
                if cpu_clock:
                    row += [median(times[c.name].cpu) * 1e3, _ratio(peer and peer.cpu, times[c.name].cpu)]
                table.add(*row, mib(memory[c.name]), tflops, f"{100 * mfu:.1f}%" if mfu else None)
            if flops:
                notes.append(f"{family} {size}: {flops / 1e9:.1f} GFLOP per step (forward+backward)")
            del contenders, steps
    if compare_any := (args.compare == "transformers"):
        notes.append("vs peer = transformers eager median / this contender's median (> 1 means faster than transformers); "
                     "on CPU also for the process CPU time, which leaves out time other processes held the cores")
    if "mae_st" in families and compare_any:
        notes.append("mae_st vs ViTMAE: same layers, widths, tokens and masking on single frames; the decoder cls row "
                     "differs (learned token vs projected encoder cls), so losses are not compared")
    return print_report(f"pretrain_step ({args.mode})", device, table, notes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", nargs="+", default=["videomae"], help=f"{sorted(FAMILIES)} or all")
    parser.add_argument("--size", nargs="+", default=["small"], help="test, tiny, small (S), base (B), large (L)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--audio-frames", type=int, default=None, help="fbank frames (Audio-MAE/MAViL), default 1024")
    parser.add_argument("--mel-bins", type=int, default=None)
    parser.add_argument("--mask-ratio", type=float, default=None)
    parser.add_argument("--mode", choices=["fwd_bwd", "train"], default="fwd_bwd")
    parser.add_argument("--max-grad-norm", type=float, default=None, help="--mode train: clip gradients (both sides)")
    parser.add_argument("--compare", choices=["none", "transformers"], default="none")
    parser.add_argument("--peer-eager-only", action="store_true", help="do not compile the transformers model")
    parser.add_argument("--compile", action="store_true", help="also run torch.compile'd models")
    parser.add_argument("--fullgraph", action="store_true", help="compile ours with fullgraph=True")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--no-flops", dest="flops", action="store_false")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    args.family = [f for item in args.family for f in item.split(",")]
    args.size = [s for item in args.size for s in item.split(",")]
    return args


def main(argv=None) -> str:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
