"""Timing, memory, FLOP and table helpers shared by the benchmarks.

Every comparison here runs the contenders in the same process, *interleaved* (A, B, B, A, A, B, ...), and reports the
median of the repeats and the ratio of medians: on a shared or throttled machine absolute times drift, ratios of
interleaved medians much less.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

# Dense peak TFLOP/s per device (no sparsity), for MFU. Keys are matched against torch.cuda.get_device_name().
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0},  # SXM; PCIe is ~756 bf16
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6},
    "L4": {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "A10": {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2},
    "V100": {"fp16": 125.0, "fp32": 15.7},
    "T4": {"fp16": 65.0, "fp32": 8.1},
}


# ----------------------------------------------------------------------------------------------------------- arguments
def add_common_args(parser: argparse.ArgumentParser, repeats: int = 7, warmup: int = 2) -> argparse.ArgumentParser:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch intra-op threads (default: torch's choice; use 1 on a shared machine for stable ratios)",
    )
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repeats per contender (median reported)")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed runs per contender first")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def setup(args) -> torch.device:
    """Apply ``--threads``/``--seed`` and return the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


# -------------------------------------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Per-call seconds of one contender: wall clock, and this process's CPU time (user + system, all threads).

    On a shared CPU the wall clock includes the time other processes held the cores; the CPU time does not, so
    its ratios are the steadier ones there (with equal thread counts on both sides)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def interleaved(
    contenders: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 1
) -> dict[str, Timings]:
    """Time each contender ``repeats`` times, the contenders taking turns (the order alternates every round)."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    synchronize(device)
    times = {name: Timings() for name in names}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            synchronize(device)
            times[name].cpu.append(time.process_time() - cpu)
            times[name].wall.append(time.perf_counter() - wall)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -------------------------------------------------------------------------------------------------------------- memory
def _cpu_profiler_peak(fn: Callable[[], object]) -> int | None:
    """Peak bytes allocated on the CPU while ``fn`` runs, from the profiler's allocation events (net of what was
    allocated before). ``None`` when this torch build does not expose them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = [
            (event.start_ns(), event.nbytes())
            for event in prof.profiler.kineto_results.events()
            if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
        ]
    except AttributeError:
        return None
    current = peak = 0
    for _, nbytes in sorted(events):
        current += nbytes
        peak = max(peak, current)
    return peak


def peak_memory(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak bytes allocated *during* ``fn`` on ``device`` beyond what was allocated before it (activations,
    gradients, temporaries). Weights and optimizer states that already exist are not counted."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type == "cpu":
        with _quiet_profiler():
            return _cpu_profiler_peak(fn)
    return None


@contextlib.contextmanager
def _quiet_profiler():
    """Kineto writes start/stop lines (and, without a GPU, a device-count error) straight to file descriptor 2;
    silence it while the memory profile runs so that the tables stay readable."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# --------------------------------------------------------------------------------------------------------------- FLOPs
def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (multiply-add = 2) of one call of ``fn``, counted by ``torch.utils.flop_counter`` (matmuls,
    convolutions and attention; elementwise work is not counted, as in the usual MFU definition)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def device_peak_tflops(device: torch.device, precision: str) -> float | None:
    """Dense peak TFLOP/s of a known GPU for ``precision`` (``bf16``, ``fp16``, ``tf32``, ``fp32``); None if unknown."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks.get(precision)
    return None


# -------------------------------------------------------------------------------------------------------------- tables
@dataclass
class Table:
    headers: list[str]
    rows: list[list[object]] = field(default_factory=list)

    def add(self, *values) -> None:
        self.rows.append(list(values))

    def markdown(self) -> str:
        cells = [[_format(v) for v in row] for row in self.rows]
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "|".join("---" for _ in self.headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.2f}"
        return f"{value:.2e}"
    return str(value)


def mib(nbytes: int | None) -> float | None:
    return None if nbytes is None else nbytes / 2**20


def machine_description(device: torch.device) -> str:
    """One line naming the hardware and the software versions."""
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"CPU {cpu} ({os.cpu_count()} cores visible, torch threads {torch.get_num_threads()})"]
    if device.type == "cuda":
        parts.append(f"GPU {torch.cuda.get_device_name(device)}")
    parts.append(f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}")
    with contextlib.suppress(OSError, AttributeError):
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    return "; ".join(parts)


def print_report(title: str, device: torch.device, table: Table, notes: list[str] | None = None) -> str:
    """Print (and return) a Markdown section: title, machine line, table, notes."""
    text = f"### {title}\n\n{machine_description(device)}\n\n{table.markdown()}\n"
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    print(text, flush=True)
    return text


def compile_available(device: torch.device) -> tuple[bool, str]:
    """Whether ``torch.compile``'s default backend (inductor) can run here, and why not."""
    if device.type == "cpu":
        import shutil

        if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return False, "no C++ compiler for inductor's CPU code"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False, "triton is not installed"
    return True, ""
