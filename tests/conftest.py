import sys
from pathlib import Path

# Make the parity adapters importable as `parity` from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
