"""Datasets stored as four MNIST-style IDX files (MNIST and Fashion-MNIST).

A folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally gzipped with a
``.gz`` suffix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaptive_cnn.data.idx import read_idx, read_idx_header
from adaptive_cnn.data.types import ImageSet
from adaptive_cnn.errors import DatasetFormatError

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FILES_HINT = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"
)
NUM_CLASSES = 10
FASHION_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASS_NAMES = tuple(str(d) for d in range(10))


def find_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Locate the four IDX files, preferring the uncompressed one if both exist.

    Returns:
        (role -> path of the files found, base names of the files missing).
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, base in FILE_NAMES.items():
        candidates = [folder / base, folder / f"{base}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(f"{base}[.gz]")
        else:
            found[role] = path
    return found, missing


def _check_headers(images_path: Path, labels_path: Path) -> tuple[int, tuple[int, int, int]]:
    """Validate image and label headers: (count, (1, H, W))."""
    img_dtype, img_shape = read_idx_header(images_path)
    lab_dtype, lab_shape = read_idx_header(labels_path)
    if img_dtype != np.uint8 or len(img_shape) != 3:
        raise DatasetFormatError(
            f"{images_path} holds {img_dtype} {img_shape}, expected uint8 images (N, H, W): "
            "replace it with the original file"
        )
    if lab_dtype != np.uint8 or len(lab_shape) != 1:
        raise DatasetFormatError(
            f"{labels_path} holds {lab_dtype} {lab_shape}, expected uint8 labels (N,): "
            "replace it with the original file"
        )
    if lab_shape[0] != img_shape[0]:
        raise DatasetFormatError(
            f"{labels_path} has {lab_shape[0]} labels but {images_path} has {img_shape[0]} "
            "images: replace them with a matching pair"
        )
    return img_shape[0], (1, img_shape[1], img_shape[2])


def read_headers(files: dict[str, Path]) -> tuple[int, int, tuple[int, int, int]]:
    """Cheaply read sizes from the headers: (num_train, num_test, (C, H, W))."""
    num_train, shape = _check_headers(files["train_images"], files["train_labels"])
    num_test, test_shape = _check_headers(files["test_images"], files["test_labels"])
    if test_shape != shape:
        raise DatasetFormatError(
            f"{files['test_images']} images are {test_shape[1:]} but training images are "
            f"{shape[1:]}: replace them with a matching set"
        )
    return num_train, num_test, shape


def read_split(images_path: Path, labels_path: Path) -> ImageSet:
    """Read one images/labels pair into (N, 1, H, W) uint8 images and (N,) int64 labels.

    Raises:
        DatasetFormatError: malformed files, count mismatch, or labels outside [0, 10).
    """
    _check_headers(images_path, labels_path)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DatasetFormatError(
            f"{labels_path} has labels outside [0, {NUM_CLASSES}): replace it with the original"
        )
    return ImageSet(images[:, None], labels.astype(np.int64))


def read_folder(files: dict[str, Path]) -> tuple[ImageSet, ImageSet]:
    """Read (train, test) from the files returned by :func:`find_files`."""
    read_headers(files)
    train = read_split(files["train_images"], files["train_labels"])
    test = read_split(files["test_images"], files["test_labels"])
    return train, test
