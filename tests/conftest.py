import sys
from pathlib import Path

# Make the parity adapters importable as `parity` from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

# Tiny test models are dominated by per-op overhead: one intra-op thread is faster (and much faster when the machine
# is shared), and it keeps timings independent of the core count.
torch.set_num_threads(1)
