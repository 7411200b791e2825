"""Reader of the CIFAR-10 "python version" folder (``cifar-10-batches-py``).

The folder holds pickled dicts ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta``. Pickle can run arbitrary code, so files are loaded with an unpickler that
resolves only plain containers and numpy array reconstruction; any other global is refused
before it is called.
"""

from __future__ import annotations

import _codecs
import builtins
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

from adaptive_cnn.data.types import ImageSet
from adaptive_cnn.errors import DatasetFormatError, DatasetNotFoundError

FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
IMAGE_SHAPE = (3, 32, 32)
HOW_TO_GET = (
    "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
    f"unpack it and pass --data-dir pointing at {FOLDER_NAME} or its parent"
)

_BUILTIN_NAMES = ("list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str")
_BUILTINS = {name: getattr(builtins, name) for name in (*_BUILTIN_NAMES, "int", "float", "bool")}
# Everything a CIFAR pickle may name, written by Python 2 or 3 and numpy 1 or 2.
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(mod, name): obj for mod in ("builtins", "__builtin__") for name, obj in _BUILTINS.items()},
    ("_codecs", "encode"): _codecs.encode,  # protocol-2 pickles of bytes made by Python 3
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in ``_ALLOWED``."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetFormatError(
                f"{self._path} is not a CIFAR-10 batch: its pickle refers to {module}.{name}, "
                "which is refused because unpickling it could run code; use the original "
                "files from cifar-10-python.tar.gz"
            ) from None


def load_pickle(path: str | Path) -> Any:
    """Unpickle a file allowing only builtin containers and numpy arrays.

    Args:
        path: pickle file (Python 2 pickles are read with ``encoding='bytes'``).

    Raises:
        DatasetFormatError: the file is not a pickle or names a forbidden global.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except DatasetFormatError:
        raise
    except Exception as exc:  # any decoding failure of untrusted bytes is a format error
        raise DatasetFormatError(
            f"cannot unpickle {path} ({type(exc).__name__}: {exc}): "
            "replace it with the original file from cifar-10-python.tar.gz"
        ) from exc


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _get(mapping: Any, key: str, path: Path) -> Any:
    """Look a key up by bytes (Python 2 pickles) or str (Python 3 pickles)."""
    if isinstance(mapping, dict):
        for candidate in (key.encode(), key):
            if candidate in mapping:
                return mapping[candidate]
    raise DatasetFormatError(
        f"{path} has no '{key}' entry: replace it with the original CIFAR-10 file"
    )


def resolve_folder(data_dir: str | Path) -> Path:
    """Return the ``cifar-10-batches-py`` folder given it or its parent.

    Raises:
        DatasetNotFoundError: neither ``data_dir`` nor ``data_dir/cifar-10-batches-py``
            holds ``batches.meta``.
    """
    data_dir = Path(data_dir)
    for folder in (data_dir, data_dir / FOLDER_NAME):
        if (folder / META_FILE).is_file():
            return folder
    raise DatasetNotFoundError(
        f"dataset 'cifar10' not found in {data_dir} (no {META_FILE} there or in "
        f"{FOLDER_NAME}/): {HOW_TO_GET}"
    )


def read_meta(folder: Path) -> tuple[tuple[str, ...], int | None]:
    """Read ``batches.meta``: (class names, images per batch or None if absent)."""
    path = folder / META_FILE
    meta = load_pickle(path)
    names = _get(meta, "label_names", path)
    if not isinstance(names, (list, tuple)) or not names:
        raise DatasetFormatError(f"{path} has no class names: replace it with the original")
    per_batch = meta.get(b"num_cases_per_batch", meta.get("num_cases_per_batch"))
    return tuple(_as_str(n) for n in names), per_batch if isinstance(per_batch, int) else None


def read_batch(path: Path, num_classes: int) -> ImageSet:
    """Read one batch file into images (N, 3, 32, 32) uint8 and labels (N,) int64.

    Raises:
        DatasetNotFoundError: the file is missing.
        DatasetFormatError: wrong shapes or dtypes, or labels out of range.
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"CIFAR-10 file {path} is missing: {HOW_TO_GET}")
    batch = load_pickle(path)
    data = np.asarray(_get(batch, "data", path))
    labels = np.asarray(_get(batch, "labels", path))
    size = int(np.prod(IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != size:
        raise DatasetFormatError(
            f"{path}: data is {data.dtype} {data.shape}, expected uint8 (N, {size}): "
            "replace it with the original CIFAR-10 file"
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(
            f"{path}: {labels.shape} labels for {data.shape[0]} images: replace the file"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(f"{path}: labels outside [0, {num_classes}): replace the file")
    images = data.reshape((-1, *IMAGE_SHAPE))
    return ImageSet(np.array(images, dtype=np.uint8), labels.astype(np.int64))


def read_cifar10(data_dir: str | Path) -> tuple[ImageSet, ImageSet, tuple[str, ...], Path]:
    """Read CIFAR-10 from its python-version folder.

    Args:
        data_dir: the ``cifar-10-batches-py`` folder or its parent.

    Returns:
        (train of 5 batches, test, class names from ``batches.meta``, folder read).
    """
    folder = resolve_folder(data_dir)
    names, _ = read_meta(folder)
    parts = [read_batch(folder / name, len(names)) for name in TRAIN_FILES]
    train = ImageSet(
        np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    )
    return train, read_batch(folder / TEST_FILE, len(names)), names, folder
