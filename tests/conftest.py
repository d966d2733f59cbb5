import sys
from pathlib import Path

# Make the parity adapters importable as `parity` from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

# Tiny test models are dominated by per-op overhead: one intra-op thread is faster (and much faster when the machine
# is shared), and it keeps timings independent of the core count.
torch.set_num_threads(1)


# ``pytest -m benchmark`` runs the benchmarks of benchmarks/ at a tiny size (tests/test_benchmarks.py). They are slow
# (torch.compile, video encoding), so a plain ``pytest`` leaves them out; any ``-m`` expression naming them opts in.
def pytest_configure(config):
    config.addinivalue_line("markers", "benchmark: runs a benchmark of benchmarks/ at a tiny size (opt in: -m benchmark)")


def pytest_collection_modifyitems(config, items):
    if "benchmark" in (config.getoption("markexpr", "") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("benchmark") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("benchmark")])
        items[:] = kept
