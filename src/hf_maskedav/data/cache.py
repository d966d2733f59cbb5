"""Decoded samples kept in memory, so that a small dataset is decoded once per process instead of once per epoch.

Decoding is not free next to a small model: on FSDD (2,000 half-second WAV clips, 8 kHz resampled to 16 kHz) and
2 CPU cores, decoding a batch of 32 took longer than the tiny Audio-MAE's forward and backward pass together (46 ms vs
36 ms). The clips a few-thousand-clip dataset holds fit in tens of megabytes once decoded, so every epoch after the
first can skip the decoder.

The cache is bounded (``max_megabytes``): once full it keeps what it holds and decodes the rest as before, so a large
dataset costs at most the budget and never fails for memory. It lives in the process that decodes: with
``--dataloader_num_workers 0`` (the scripts' default) that is the training process and the cache lasts the run; data-
loader workers are started again every epoch, so with workers each epoch fills its own copy (the decoding is spread
over the workers instead). Failures are not cached: a bad file is tried (and reported) again each epoch.
"""

from __future__ import annotations

from typing import Callable, Hashable

import torch


class DecodedCache:
    """A bounded in-memory store of decoded tensors keyed by the row they came from (also what ``AudioCollator`` keeps
    the fbank features of unchanging clips in).

    Args:
        max_megabytes: budget in MiB for the stored tensors; ``0`` turns the cache off (every call decodes).

    The stored tensors are handed out as they are: callers must not modify them in place (cropping by slicing and
    padding into a new tensor are fine).
    """

    def __init__(self, max_megabytes: float = 1024.0):
        if max_megabytes < 0:
            raise ValueError(f"max_megabytes must be >= 0 (0 turns the cache off), got {max_megabytes}")
        self.max_bytes = int(max_megabytes * 2**20)
        self._items: dict[Hashable, torch.Tensor] = {}
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable | None, decode: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor stored for ``key``, else ``decode()`` (stored when it fits in what is left of the budget). A
        ``None`` key (a sample with no stable position, e.g. streamed) or a cache that is off just decodes."""
        stored = self.lookup(key)
        if stored is not None:
            return stored
        value = decode()
        self.put(key, value)
        return value

    def lookup(self, key: Hashable | None) -> torch.Tensor | None:
        """The tensor stored for ``key`` or None (counted as a hit or a miss; a ``None`` key or a cache that is off
        counts as neither)."""
        if key is None or not self.max_bytes:
            return None
        stored = self._items.get(key)
        if stored is None:
            self.misses += 1
        else:
            self.hits += 1
        return stored

    def put(self, key: Hashable | None, value: torch.Tensor) -> None:
        """Store ``value`` for ``key`` when it fits in what is left of the budget (a view is stored as it is: pass a
        tensor that owns its memory, or the whole base tensor stays alive)."""
        if key is None or not self.max_bytes or key in self._items:
            return
        size = value.element_size() * value.numel()
        if self.used_bytes + size <= self.max_bytes:
            self._items[key] = value
            self.used_bytes += size

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (
            f"DecodedCache({len(self)} items, {self.used_bytes / 2**20:.1f} of {self.max_bytes / 2**20:.0f} MiB, "
            f"{self.hits} hits, {self.misses} misses)"
        )


__all__ = ["DecodedCache"]
