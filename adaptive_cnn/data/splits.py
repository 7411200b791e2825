"""Deterministic split logic: stratified carving, fingerprints, normalisation statistics.

Pure functions: no I/O, explicit seeds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from adaptive_cnn.data.types import ImageSet, Preprocessing
from adaptive_cnn.errors import ConfigError

STD_FLOOR = 1e-6
_STATS_CHUNK = 4096  # images per chunk: bounds float64 memory to chunk * C * H * W * 8 bytes


def check_fraction(name: str, value: float | int) -> None:
    """Check a split size: a float in (0, 1) or an int count >= 1.

    Raises:
        ConfigError: naming the parameter and the accepted values.
    """
    ok_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1
    ok_float = isinstance(value, (float, np.floating)) and 0.0 < value < 1.0
    if not (ok_int or ok_float):
        raise ConfigError(
            f"{name} must be a fraction in (0, 1) or a whole count >= 1, got {value!r}: "
            "pass e.g. 0.1 or 500"
        )


def carve_count(n: int, fraction_or_count: float | int, name: str = "fraction") -> int:
    """Number of items to carve out of ``n``.

    A fraction is rounded to the nearest count and clipped to [1, n - 1] so that both
    parts are non-empty; a count must lie in [1, n - 1].

    Raises:
        ConfigError: the value is invalid or leaves an empty part.
    """
    check_fraction(name, fraction_or_count)
    if n < 2:
        raise ConfigError(f"cannot split {n} image(s) for {name}: use a larger dataset")
    if isinstance(fraction_or_count, (float, np.floating)):
        return min(max(round(fraction_or_count * n), 1), n - 1)
    if fraction_or_count > n - 1:
        raise ConfigError(
            f"{name}={fraction_or_count} leaves no image out of {n}: pass at most {n - 1}"
        )
    return int(fraction_or_count)


def _per_class_counts(class_sizes: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` over classes in proportion to their sizes (largest remainder method)."""
    # Integer arithmetic keeps quotas exact; a stable sort breaks remainder ties by class.
    scaled = class_sizes.astype(np.int64) * k
    counts, remainders = np.divmod(scaled, int(class_sizes.sum()))
    order = np.argsort(-remainders, kind="stable")
    counts[order[: k - int(counts.sum())]] += 1
    return counts


def carve_indices(
    labels: np.ndarray, fraction_or_count: float | int, seed: int, name: str = "fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split of indices.

    Args:
        labels: int array of shape (N,).
        fraction_or_count: share to carve (float in (0, 1)) or number of items (int).
        seed: seed of ``np.random.default_rng``.
        name: parameter name used in error messages.

    Returns:
        (rest, carved): sorted int64 index arrays, disjoint, covering ``range(N)``. Each
        class contributes floor or ceil of its proportional share to ``carved``.
    """
    labels = np.asarray(labels)
    k = carve_count(int(labels.shape[0]), fraction_or_count, name)
    classes, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    counts = _per_class_counts(sizes, k)
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        mask[rng.permutation(members)[: counts[c]]] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def carve(
    images: np.ndarray,
    labels: np.ndarray,
    fraction_or_count: float | int,
    seed: int,
    name: str = "fraction",
) -> tuple[ImageSet, ImageSet]:
    """Carve a stratified random subset out of a labelled image array.

    Args:
        images: array of shape (N, C, H, W).
        labels: int64 array of shape (N,).
        fraction_or_count: share to carve (float in (0, 1)) or number of images (int >= 1).
        seed: seed of ``np.random.default_rng``; the same seed gives the same split.
        name: parameter name used in error messages (``val_fraction``, ``test_fraction``).

    Returns:
        (rest, carved) as C-contiguous :class:`ImageSet` s, each in the original order.

    Raises:
        ConfigError: invalid fraction or count.
    """
    rest, carved = carve_indices(labels, fraction_or_count, seed, name)
    return ImageSet(images[rest], labels[rest]), ImageSet(images[carved], labels[carved])


def fingerprint(splits: Mapping[str, ImageSet], params: Mapping[str, object]) -> str:
    """sha256 hex digest of split contents and the parameters that drew them.

    Args:
        splits: split name -> images and labels, hashed in key order with shapes and dtypes.
        params: JSON-serialisable split parameters (seed, fractions, ...).
    """
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for key in sorted(splits):
        for array in (splits[key].images, splits[key].labels):
            h.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
            h.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return h.hexdigest()


def preprocessing_stats(images: np.ndarray, pixel_max: float) -> Preprocessing:
    """Per-channel mean and (population) standard deviation in [0, 1] units.

    Computed in float64 over chunks of images, so memory stays bounded; for integer pixels
    the chunk sums are exact. A standard deviation below 1e-6 is raised to 1e-6.

    Args:
        images: array of shape (N, C, H, W) in native pixel scale (0..pixel_max).
        pixel_max: largest native pixel value (255 for 8-bit images, 16 for digits).
    """
    n, c = images.shape[:2]
    total = np.zeros(c, dtype=np.float64)
    total_sq = np.zeros(c, dtype=np.float64)
    for start in range(0, n, _STATS_CHUNK):
        x = images[start : start + _STATS_CHUNK].astype(np.float64)
        total += x.sum(axis=(0, 2, 3))
        total_sq += np.einsum("nchw,nchw->c", x, x)
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.maximum(np.sqrt(var) / pixel_max, STD_FLOOR)
    return Preprocessing(
        float(pixel_max),
        tuple(float(m) for m in mean / pixel_max),
        tuple(float(s) for s in std),
    )


__all__ = [
    "STD_FLOOR",
    "carve",
    "carve_count",
    "carve_indices",
    "check_fraction",
    "fingerprint",
    "preprocessing_stats",
]
