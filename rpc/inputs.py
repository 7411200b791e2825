"""Input files of ``acnn classify``: images, IDX files and ``.npy`` arrays.

Everything becomes float32 (N, C, H, W) in the dataset's *native pixel scale*, the scale
the design was trained on and the cloud expects. 8-bit image files are resized to the
design's (H, W) (bilinear) and, for a dataset whose pixels do not span 0..255 (digits:
0..16), rescaled to its ``pixel_max``. IDX and ``.npy`` data are taken as native already.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from adaptive_cnn.data.idx import read_idx
from adaptive_cnn.errors import DatasetFormatError
from adaptive_cnn.run_folder import InputSpec
from rpc.errors import InputFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Paths with each folder replaced by its image, IDX-free listing (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def load_inputs(paths: list[str | Path], spec: InputSpec) -> tuple[np.ndarray, list[str]]:
    """Read every input into one array.

    Returns:
        (images float32 (N, C, H, W) in native pixel scale, one source name per image).
    """
    arrays, sources = [], []
    for path in expand_paths(paths):
        if not path.is_file():
            raise InputFileError(f"input {path} does not exist")
        array = _read(path, spec)
        arrays.append(array)
        if len(array) == 1 and path.suffix.lower() in IMAGE_SUFFIXES:
            sources.append(str(path))
        else:
            sources.extend(f"{path}[{i}]" for i in range(len(array)))
    if not arrays:
        raise InputFileError("no input images: pass image files, IDX files or .npy arrays")
    return np.concatenate(arrays), sources


def load_labels(path: str | Path, count: int) -> np.ndarray:
    """Integer labels (N,) from an IDX or ``.npy`` file; N must equal ``count``."""
    path = Path(path)
    labels = _load_array(path)
    if labels.ndim != 1 or labels.shape[0] != count or not np.issubdtype(labels.dtype, np.integer):
        got = f"{labels.dtype} of shape {labels.shape}"
        raise InputFileError(f"labels {path}: need {count} integers, got {got}")
    return labels.astype(np.int64)


def _read(path: Path, spec: InputSpec) -> np.ndarray:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(path, spec)
    return _as_images(_load_array(path), path, spec)


def _load_array(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        return read_idx(path)
    except (ValueError, OSError, DatasetFormatError) as exc:
        raise InputFileError(f"cannot read {path} as .npy or IDX: {exc}") from exc


def _as_images(array: np.ndarray, path: Path, spec: InputSpec) -> np.ndarray:
    c, h, w = spec.shape
    if array.ndim == 3 and c == 1:
        array = array[:, None]
    if array.ndim != 4 or tuple(array.shape[1:]) != (c, h, w):
        raise InputFileError(
            f"{path} holds {array.shape}; {spec.dataset} needs N x {c} x {h} x {w}"
            + (f" or N x {h} x {w}" if c == 1 else "")
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputFileError(f"{path} holds {array.dtype} values, not pixels")
    images = array.astype(np.float32)
    if not np.isfinite(images).all():
        raise InputFileError(f"{path} holds NaN or infinite pixels")
    return images


def _read_image(path: Path, spec: InputSpec) -> np.ndarray:
    c, h, w = spec.shape
    if c not in (1, 3):
        raise InputFileError(f"{spec.dataset} images have {c} channels; pass .npy arrays")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            if (img.height, img.width) != (h, w):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputFileError(f"cannot decode image {path}: {exc}") from exc
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    pixel_max = spec.preprocessing.pixel_max
    if pixel_max != 255.0:
        pixels = pixels * np.float32(pixel_max / 255.0)
    return pixels[None]
