"""Reader and writer of IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the values in C order, big-endian. Files may be gzipped; gzip is
detected by its magic bytes (``1f 8b``), not by the file name.
"""

from __future__ import annotations

import gzip as gzip_module
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from adaptive_cnn.errors import DatasetFormatError

_GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> big-endian numpy dtype.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES: dict[str, int] = {dt.newbyteorder("=").str: code for code, dt in _DTYPES.items()}

# Errors a corrupt gzip stream or a short read can raise.
_READ_ERRORS = (OSError, EOFError, zlib.error)


def is_gzip(path: str | Path) -> bool:
    """Return True if the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """Open an IDX file for reading, decompressing it if it starts with the gzip magic."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not gzipped:
            yield raw
            return
        with gzip_module.GzipFile(fileobj=raw, mode="rb") as f:
            yield f  # type: ignore[misc]


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise DatasetFormatError(
            f"IDX file {path} is truncated in its {what} ({len(data)} of {n} bytes): "
            "replace it with an intact copy"
        )
    return data


def _parse_header(f: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = _read_exact(f, 4, path, "header")
    if magic[0] != 0 or magic[1] != 0:
        raise DatasetFormatError(
            f"{path} is not an IDX file (magic {magic.hex()} does not start with 0000): "
            "pass the folder holding the IDX files"
        )
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        raise DatasetFormatError(
            f"IDX file {path} has unknown dtype code 0x{code:02x} "
            "(expected 08, 09, 0b, 0c, 0d or 0e): replace it with an intact copy"
        )
    if ndim == 0:
        raise DatasetFormatError(f"IDX file {path} declares 0 dimensions: replace it")
    dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "dimensions"))
    return _DTYPES[code], tuple(int(d) for d in dims)


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Read only the header of an IDX file.

    Cheap: reads (and, if gzipped, decompresses) only the first ``4 + 4 * ndim`` bytes.

    Args:
        path: IDX file, gzipped or not.

    Returns:
        (dtype in native byte order, shape).

    Raises:
        DatasetFormatError: the header is malformed or truncated.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            dtype, shape = _parse_header(f, path)
    except _READ_ERRORS as exc:
        raise DatasetFormatError(f"cannot read IDX file {path} ({exc}): replace it") from exc
    return dtype.newbyteorder("="), shape


def _read_body(f: BinaryIO, dtype: np.dtype, shape: tuple[int, ...], path: Path) -> np.ndarray:
    out = np.empty(shape, dtype=dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(view):
        n = f.readinto(view[filled:])
        if not n:
            raise DatasetFormatError(
                f"IDX file {path} is truncated: header {shape} needs {len(view)} data bytes "
                f"but only {filled} are present; replace it with an intact copy"
            )
        filled += n
    if f.read(1):
        raise DatasetFormatError(
            f"IDX file {path} has bytes after the {len(view)} its header {shape} declares: "
            "replace it with an intact copy"
        )
    return out


def read_idx(path: str | Path) -> np.ndarray:
    """Read a whole IDX file.

    Args:
        path: IDX file, gzipped or not (detected by magic bytes).

    Returns:
        Writable C-contiguous array of the file's shape, in native byte order
        (uint8 for MNIST-style images and labels).

    Raises:
        DatasetFormatError: bad magic, unknown dtype code, truncated or oversized data,
            or a corrupt gzip stream; the message names the file.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            dtype, shape = _parse_header(f, path)
            data = _read_body(f, dtype, shape, path)
    except _READ_ERRORS as exc:
        raise DatasetFormatError(f"cannot read IDX file {path} ({exc}): replace it") from exc
    native = dtype.newbyteorder("=")
    return data if native == dtype else data.astype(native)


def write_idx(path: str | Path, array: np.ndarray, gzip: bool = False) -> None:
    """Write an array as an IDX file.

    Args:
        path: destination file (the name is not changed; add ``.gz`` yourself if wanted).
        array: array of 1 to 255 dimensions with dtype uint8, int8, int16, int32,
            float32 or float64.
        gzip: compress the file with gzip.

    Raises:
        ValueError: the dtype or number of dimensions cannot be stored in IDX.
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX cannot store {array.ndim} dimensions")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    opener = gzip_module.open if gzip else open
    with opener(path, "wb") as f:
        f.write(header)
        f.write(body)


__all__ = ["is_gzip", "read_idx", "read_idx_header", "write_idx"]
