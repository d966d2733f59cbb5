"""Conversion of official checkpoints into hf_maskedav models: key tables, strict accounting, safe loading.

One module per family (``audiomae``...) holds that family's key table and ``config_from_official_kwargs``; the
``conversion/convert_<family>.py`` scripts at the top of the repository and the parity tests both use them.
"""

from .utils import KeyTable, UnmappedKeysError, load_official_checkpoint, unwrap_state_dict

__all__ = ["KeyTable", "UnmappedKeysError", "load_official_checkpoint", "unwrap_state_dict"]
