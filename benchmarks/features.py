"""Log-mel fbank throughput: our Audio-MAE feature extractor (batched, on CPU and on a device) vs transformers'
``ASTFeatureExtractor`` (torchaudio's Kaldi fbank, one clip at a time), same clips, interleaved.

Examples (from the repository root)::

    python -m benchmarks.features --batch-size 32 --seconds 10 --threads 1
    python -m benchmarks.features --batch-size 32 --device cuda          # adds the device rows (float64 and float32)

Both extractors use the same settings (16 kHz, 128 mel bins, 25 ms Hann window, 10 ms hop, 1024 frames,
``(fbank - mean) / (2 * std)`` with the AudioSet statistics). ``max |diff|`` is taken against the AST output. The
clips are 10 s of noise and tones with an empty band above 4 kHz (as up-sampled 8 kHz audio has), which is where a
float32 FFT's rounding noise shows.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Table, add_common_args, interleaved, median, print_report, setup


def make_clips(count: int, seconds: float, sampling_rate: int = 16000, seed: int = 0) -> list[np.ndarray]:
    """Noise plus a few tones, band-limited to 4 kHz (an up-sampled 8 kHz recording), peak around 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sampling_rate)
    t = np.arange(n) / sampling_rate
    spectrum_mask = np.fft.rfftfreq(n, 1 / sampling_rate) <= 4000
    clips = []
    for _ in range(count):
        noise = rng.standard_normal(n) * 0.05
        tones = sum(0.1 * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi)) for f in rng.uniform(100, 3500, 3))
        signal = np.fft.irfft(np.fft.rfft(noise + tones) * spectrum_mask, n=n)
        clips.append((signal / np.abs(signal).max() * 0.5).astype(np.float32))
    return clips


def run(args) -> str:
    device = setup(args)
    from transformers import ASTFeatureExtractor

    from hf_maskedav import AudioMAEFeatureExtractor

    clips = make_clips(args.batch_size, args.seconds, seed=args.seed)
    ast = ASTFeatureExtractor()
    ours64 = AudioMAEFeatureExtractor()
    ours32 = AudioMAEFeatureExtractor(fbank_dtype="float32")

    def run_ast():
        return torch.stack([ast(clip, sampling_rate=16000, return_tensors="pt").input_values[0] for clip in clips])

    def ours(extractor, on=None):
        def call():
            return extractor(clips, sampling_rate=16000, return_tensors="pt", device=on).input_values

        return call

    contenders = {
        "ASTFeatureExtractor, per clip (CPU)": run_ast,
        "ours batched, float64 FFT (CPU)": ours(ours64),
        "ours batched, float32 (CPU)": ours(ours32),
    }
    if device.type != "cpu":
        contenders[f"ours batched, float64 FFT ({device.type})"] = ours(ours64, device)
        contenders[f"ours batched, float32 ({device.type})"] = ours(ours32, device)

    reference = run_ast()
    diffs = {name: (fn().float().cpu() - reference).abs().max().item() for name, fn in contenders.items()}
    times = interleaved(contenders, device, args.repeats, args.warmup)
    base = times["ASTFeatureExtractor, per clip (CPU)"]
    table = Table(["extractor", "clips", "median ms / batch", "ms / clip", "clips/s", "vs AST", "max |diff| vs AST"])
    for name in contenders:
        t = median(times[name].wall)
        table.add(name, args.batch_size, t * 1e3, t * 1e3 / args.batch_size, args.batch_size / t,
                  f"{median(base.wall) / t:.2f}x", diffs[name])
    notes = [
        f"{args.batch_size} clips of {args.seconds:g} s at 16 kHz, {args.repeats} interleaved repeats (median); "
        "device rows include the transfer of the waveforms and exclude nothing",
        "float64 FFT (default) keeps low-energy mel bins within the official fixture's tolerance; float32 is "
        "selectable with AudioMAEFeatureExtractor(fbank_dtype='float32')",
    ]
    return print_report("features (log-mel fbank, 10-s clips)", device, table, notes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32, help="clips per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    add_common_args(parser, repeats=5, warmup=1)
    return parser.parse_args(argv)


def main(argv=None) -> str:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
