"""Full-token encoder throughput for classification (every token encoded: where attention costs most), ours vs
transformers, side by side.

Examples (from the repository root)::

    python -m benchmarks.inference --model videomae --size small --num-frames 16 --image-size 112 --batch-size 4 --threads 1
    python -m benchmarks.inference --model audiomae --size base --batch-size 4 --threads 1
    python -m benchmarks.inference --model all --size base --batch-size 32 --bf16 --compile      # on a GPU

Pairs:

* ``videomae``: ``MaskedAVVideoMAEForVideoClassification`` converted from ``transformers.VideoMAEForVideoClassification``
  (identical weights; the logits of the first batch are compared and printed).
* ``audiomae``: ``AudioMAEForAudioClassification`` vs ``transformers.ASTForAudioClassification`` with the same width,
  depth, heads, patch size and patch stride over a 1024 x 128 fbank. Not the same function: AST adds a distillation
  token (514 tokens against our 513) and learned positions, and the weights are independent. A like-for-like *cost*
  comparison. ``--patch-stride 10`` gives AST's released overlapping layout (1214 vs 1213 tokens).

Both sides run under ``torch.inference_mode()``; ``--compile`` adds compiled variants of both.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Table, add_common_args, compile_available, interleaved, median, print_report, setup
from benchmarks.families import VIT, canonical_size


def _videomae_pair(args, size: str, device):
    import transformers

    from hf_maskedav.conversion.videomae import load_transformers_videomae

    width, depth, heads = VIT[size]
    frames = args.num_frames or (4 if size == "test" else 16)
    image = args.image_size or (32 if size == "test" else 224)
    config = transformers.VideoMAEConfig(
        image_size=image, patch_size=16, num_frames=frames, tubelet_size=2, hidden_size=width,
        num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=4 * width, num_labels=400,
    )
    torch.manual_seed(args.seed)
    peer = transformers.VideoMAEForVideoClassification(config)
    with torch.no_grad():
        for param in peer.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    ours = load_transformers_videomae(peer)
    generator = torch.Generator().manual_seed(args.seed + 1)
    pixels = torch.randn(args.batch_size, frames, 3, image, image, generator=generator).to(device)
    inputs = {"pixel_values": pixels}
    return ours.to(device).eval(), peer.to(device).eval(), inputs, dict(inputs), f"{frames}x{image}^2", True


def _audiomae_pair(args, size: str, device):
    import transformers

    from hf_maskedav import AudioMAEConfig, AudioMAEForAudioClassification

    width, depth, heads = VIT[size]
    frames, mels = (64, 32) if size == "test" else (args.audio_frames or 1024, args.mel_bins or 128)
    patch = 8 if size == "test" else 16
    stride = args.patch_stride or patch
    peer_config = transformers.ASTConfig(
        hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=4 * width,
        patch_size=patch, frequency_stride=stride, time_stride=stride, max_length=frames, num_mel_bins=mels,
        num_labels=527,
    )
    ours_config = AudioMAEConfig(
        max_length=frames, num_mel_bins=mels, patch_size=patch, patch_stride=stride, hidden_size=width,
        num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=4 * width, num_labels=527,
        decoder_hidden_size=16, decoder_num_hidden_layers=0, decoder_num_attention_heads=1, decoder_intermediate_size=16,
    )
    torch.manual_seed(args.seed)
    peer = transformers.ASTForAudioClassification(peer_config)
    ours = AudioMAEForAudioClassification(ours_config)
    generator = torch.Generator().manual_seed(args.seed + 1)
    fbank = torch.randn(args.batch_size, frames, mels, generator=generator).to(device)
    inputs = {"input_values": fbank}
    return ours.to(device).eval(), peer.to(device).eval(), inputs, dict(inputs), f"{frames}x{mels} fbank", False


PAIRS = {
    "videomae": (_videomae_pair, "transformers.VideoMAEForVideoClassification"),
    "audiomae": (_audiomae_pair, "transformers.ASTForAudioClassification"),
}


def run(args) -> str:
    device = setup(args)
    models = list(PAIRS) if args.model == ["all"] else args.model
    can_compile, why_not = compile_available(device)
    if args.compile and not can_compile:
        print(f"torch.compile unavailable ({why_not}); running eager only", file=sys.stderr)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    cpu_clock = device.type == "cpu"
    table = Table(["model", "size", "input", "batch", "contender", "median ms", "min ms", "clips/s", "vs peer"]
                  + (["CPU ms", "vs peer (CPU)"] if cpu_clock else []))
    notes = [f"precision {'bf16 autocast' if args.bf16 else 'fp32'}, {args.repeats} interleaved repeats (median), "
             "torch.inference_mode on both sides"]
    for name in models:
        builder, peer_name = PAIRS[name]
        for size in (canonical_size(s) for s in args.size):
            ours, peer, ours_inputs, peer_inputs, desc, same_function = builder(args, size, device)
            contenders = {"ours eager": (ours, ours_inputs), "transformers eager": (peer, peer_inputs)}
            if args.compile and can_compile:
                contenders["ours compiled"] = (torch.compile(copy.deepcopy(ours)), ours_inputs)
                contenders["transformers compiled"] = (torch.compile(copy.deepcopy(peer)), peer_inputs)

            def call(model, inputs):
                def run_once():
                    with torch.inference_mode(), autocast():
                        return model(**inputs).logits

                return run_once

            calls = {key: call(*value) for key, value in contenders.items()}
            if same_function:
                diff = (calls["ours eager"]().float() - calls["transformers eager"]().float()).abs().max().item()
                notes.append(f"{name} {size}: max |logits ours - transformers| = {diff:.2e} (same weights)")
            times = interleaved(calls, device, args.repeats, args.warmup)
            peer_times = times["transformers eager"]
            for key in contenders:
                t = median(times[key].wall)
                row = [name, size, desc, args.batch_size, key, t * 1e3, min(times[key].wall) * 1e3,
                       args.batch_size / t, f"{median(peer_times.wall) / t:.2f}x"]
                if cpu_clock:
                    row += [median(times[key].cpu) * 1e3, f"{median(peer_times.cpu) / median(times[key].cpu):.2f}x"]
                table.add(*row)
            notes.append(f"{name}: peer {peer_name}")
    if "audiomae" in models:
        notes.append("audiomae vs AST: same widths/depth/patches; AST has one more (distillation) token and its own "
                     "weights, so only the cost is compared")
    return print_report("inference (full tokens)", device, table, notes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["all"], help=f"{sorted(PAIRS)} or all")
    parser.add_argument("--size", nargs="+", default=["small"], help="test, tiny, small (S), base (B), large (L)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--audio-frames", type=int, default=None)
    parser.add_argument("--mel-bins", type=int, default=None)
    parser.add_argument("--patch-stride", type=int, default=None, help="audio: patch stride (16 = no overlap; AST uses 10)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    add_common_args(parser)
    args = parser.parse_args(argv)
    args.model = [m for item in args.model for m in item.split(",")]
    args.size = [s for item in args.size for s in item.split(",")]
    return args


def main(argv=None) -> str:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
