"""Read Flax (msgpack) checkpoints without JAX: the format ``flax.serialization.to_bytes`` writes and
``flax.training.checkpoints.save_checkpoint`` stores (Scenic's "checkpoint" files).

Format (flax ``serialization.py``): the state dict is one msgpack map of nested maps; array leaves are msgpack
*extension* objects

* code 1 (ndarray): payload = msgpack ``[shape, dtype name, C-order bytes]``;
* code 2 (native complex): payload = msgpack ``[real, imag]``;
* code 3 (numpy scalar): payload as code 1 with shape ``[]``;

and arrays larger than 2**30 bytes are split into ``{"__msgpack_chunked_array__": True, "shape": {"0": ..},
"chunks": {"0": flat array, ...}}``. Lists and tuples are stored as maps with keys ``"0"``, ``"1"``...

Only the ``msgpack`` package is needed (already a dependency of librosa). Unpacking msgpack runs no code, so unlike a
pickle a hostile file can at worst fail to parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

EXT_NDARRAY = 1
EXT_COMPLEX = 2
EXT_NPSCALAR = 3
CHUNKED_KEY = "__msgpack_chunked_array__"

_TORCH_DTYPES = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}


class FlaxCheckpointError(ValueError):
    """The file is not a Flax msgpack checkpoint, or holds something this reader does not support."""


def _array_from_payload(payload: bytes) -> torch.Tensor:
    import msgpack

    shape, dtype_name, buffer = msgpack.unpackb(payload, raw=True)
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else str(dtype_name)
    if name in ("uint16", "uint32", "uint64"):
        array = np.frombuffer(buffer, dtype=np.dtype(name)).reshape(shape)
        return torch.from_numpy(array.astype(np.int64))
    if name not in _TORCH_DTYPES:
        raise FlaxCheckpointError(f"array of dtype {name!r} is not supported")
    dtype = _TORCH_DTYPES[name]
    count = int(np.prod(shape)) if len(shape) else 1
    if count == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    return torch.frombuffer(bytearray(buffer), dtype=dtype).reshape(tuple(shape))


def _ext_hook(code: int, payload: bytes):
    import msgpack

    if code == EXT_NDARRAY:
        return _array_from_payload(payload)
    if code == EXT_NPSCALAR:
        return _array_from_payload(payload).reshape(())
    if code == EXT_COMPLEX:
        real, imag = msgpack.unpackb(payload)
        return complex(real, imag)
    raise FlaxCheckpointError(f"unknown msgpack extension type {code} (not a Flax checkpoint?)")


def _unchunk(tree):
    if isinstance(tree, dict):
        if tree.get(CHUNKED_KEY) is True:
            shape = tuple(int(tree["shape"][str(i)]) for i in range(len(tree["shape"])))
            chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
            return torch.cat([c.reshape(-1) for c in chunks]).reshape(shape)
        return {key: _unchunk(value) for key, value in tree.items()}
    return tree


def read_flax_bytes(data: bytes) -> dict:
    """Decode ``flax.serialization.to_bytes`` output into nested dicts with ``torch.Tensor`` leaves."""
    import msgpack

    try:
        tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except (msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException, ValueError) as error:
        if isinstance(error, FlaxCheckpointError):
            raise
        raise FlaxCheckpointError(f"not a Flax msgpack checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(tree, dict):
        raise FlaxCheckpointError(f"a Flax checkpoint holds a map at the top level, found {type(tree).__name__}")
    return _unchunk(tree)


def read_flax_checkpoint(path: str | Path) -> dict:
    """Read a Flax msgpack checkpoint file (no JAX needed); returns nested dicts of tensors."""
    path = Path(path)
    if path.is_dir():
        raise FlaxCheckpointError(
            f"{path} is a directory: an Orbax/TensorStore checkpoint, not a single msgpack file; this reader handles "
            "the msgpack files that flax.training.checkpoints.save_checkpoint writes (Scenic's 'checkpoint' files)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return read_flax_bytes(path.read_bytes())


def flatten_tree(tree: Mapping, separator: str = "/", prefix: str = "") -> dict[str, torch.Tensor]:
    """``{"a": {"b": x}}`` -> ``{"a/b": x}`` (tensor leaves only; other leaves are dropped)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_tree(value, separator, name))
        elif isinstance(value, torch.Tensor):
            flat[name] = value
    return flat


def model_parameters(tree: Mapping) -> dict:
    """The model parameters inside a (Scenic) train state.

    Scenic's ``TrainState`` stores them under ``params`` (newer) or ``optimizer/target`` (``flax.optim``, older);
    a bare parameter tree is returned as is. A leading ``params`` collection level is removed.
    """
    params = tree
    if "params" in tree and isinstance(tree["params"], Mapping):
        params = tree["params"]
    elif "optimizer" in tree and isinstance(tree["optimizer"], Mapping) and "target" in tree["optimizer"]:
        params = tree["optimizer"]["target"]
    while isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]
    if not isinstance(params, Mapping) or not params:
        raise FlaxCheckpointError(f"no parameter tree found; top-level keys: {sorted(tree)[:10]}")
    return dict(params)


def write_flax_bytes(tree: Mapping) -> bytes:
    """Encode nested dicts of tensors/arrays exactly as ``flax.serialization.msgpack_serialize`` does (no chunking).

    Used by the tests to make small checkpoints, and handy to hand-check a conversion.
    """
    import msgpack

    def default(obj):
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu()
            if obj.dtype == torch.bfloat16:
                payload = (list(obj.shape), "bfloat16", obj.view(torch.int16).numpy().tobytes("C"))
                return msgpack.ExtType(EXT_NDARRAY, msgpack.packb(payload, use_bin_type=True))
            obj = obj.numpy()
        if isinstance(obj, np.ndarray):
            payload = (list(obj.shape), obj.dtype.name, obj.tobytes("C"))
            return msgpack.ExtType(EXT_NDARRAY, msgpack.packb(payload, use_bin_type=True))
        if isinstance(obj, np.generic):
            array = np.asarray(obj)
            payload = (list(array.shape), array.dtype.name, array.tobytes("C"))
            return msgpack.ExtType(EXT_NPSCALAR, msgpack.packb(payload, use_bin_type=True))
        if isinstance(obj, complex):
            return msgpack.ExtType(EXT_COMPLEX, msgpack.packb((obj.real, obj.imag)))
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    return msgpack.packb(dict(tree), default=default, strict_types=True)


__all__ = [
    "FlaxCheckpointError",
    "flatten_tree",
    "model_parameters",
    "read_flax_bytes",
    "read_flax_checkpoint",
    "write_flax_bytes",
]
