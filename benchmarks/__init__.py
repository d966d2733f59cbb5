"""Benchmarks of hf_maskedav against its peers, measured side by side in one process (see benchmarks/README.md)."""
