"""Tensors as the Open Inference Protocol (KServe v2) carries them in raw form.

A tensor travels as (datatype, shape, raw bytes): little-endian, row-major, no padding,
which is what ``raw_input_contents`` / ``raw_output_contents`` hold and what tritonclient
sends and decodes. Decoding validates everything a remote peer controls (datatype name,
shape, byte size) and never unpickles: bad input raises :class:`TensorError`, which the
server answers with INVALID_ARGUMENT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Protocol datatype name -> little-endian numpy dtype. BYTES (length-prefixed strings)
# is not used by acnn's image and probability tensors, so it is refused, not half-done.
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


class TensorError(ValueError):
    """A tensor's datatype, shape or byte size is invalid."""


def datatype_of(array: np.ndarray) -> str:
    """Protocol datatype name of a numpy array's dtype (byte order ignored)."""
    wanted = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    for name, dtype in DATATYPES.items():
        if dtype == wanted:
            return name
    raise TensorError(f"dtype {array.dtype} has no Open Inference Protocol datatype")


def encode_raw(array: np.ndarray) -> tuple[str, list[int], bytes]:
    """Return (datatype, shape, raw little-endian row-major bytes) of ``array``."""
    array = np.asarray(array)
    datatype = datatype_of(array)
    raw = np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()
    return datatype, [int(d) for d in array.shape], raw


def decode_raw(
    datatype: str, shape: Sequence[int], raw: bytes, *, max_bytes: int | None = None
) -> np.ndarray:
    """Rebuild an array from its protocol form, validating every field.

    Args:
        datatype: protocol datatype name, e.g. ``"FP32"``.
        shape: dimensions; each must be a non-negative integer.
        raw: exactly prod(shape) * itemsize bytes.
        max_bytes: refuse tensors declaring more bytes than this.

    Returns:
        A read-only array of the given dtype and shape (native byte order).
    """
    if datatype not in DATATYPES:
        raise TensorError(f"unsupported datatype {datatype!r}; supported: {', '.join(DATATYPES)}")
    dims = _check_shape(shape)
    dtype = DATATYPES[datatype]
    expected = math.prod(dims) * dtype.itemsize
    if max_bytes is not None and expected > max_bytes:
        raise TensorError(f"tensor of {expected} bytes exceeds the limit of {max_bytes} bytes")
    if len(raw) != expected:
        raise TensorError(
            f"shape {list(dims)} of {datatype} needs {expected} bytes, got {len(raw)}"
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0 for d in dims):
        raise TensorError(f"shape must be non-negative integers, got {list(dims)}")
    return tuple(int(d) for d in dims)
