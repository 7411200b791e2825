"""Value types shared by every dataset loader.

Images are kept in the dataset's *native pixel scale* (uint8 0..255 for image files and
IDX/CIFAR data, 0..16 for scikit-learn's digits) so that what a device sends is what a
network was trained on; :class:`Preprocessing` turns them into network input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A set of labelled images.

    Attributes:
        images: uint8 array of shape (N, C, H, W) in the dataset's native pixel scale.
        labels: int64 array of shape (N,), values in [0, num_classes).
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Preprocessing:
    """Maps native pixels to network input: ``((x / pixel_max) - mean[c]) / std[c]``.

    Attributes:
        pixel_max: the largest native pixel value (255 for 8-bit images, 16 for digits).
        mean: per-channel mean of the training split, in [0, 1] units.
        std: per-channel standard deviation of the training split, in [0, 1] units.
    """

    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Return float32 network input of the same (N, C, H, W) shape."""
        x = images.astype(np.float32) / np.float32(self.pixel_max)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return {"pixel_max": self.pixel_max, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(float(data["pixel_max"]), tuple(data["mean"]), tuple(data["std"]))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A dataset split into train / validation / test.

    Validation is carved from the training data with ``split_seed``; search and
    threshold selection use it. The test split is only for final reports.

    Attributes:
        name: registry name of the dataset (``fashion-mnist``, ``digits``, ...).
        train, val, test: the three disjoint splits.
        class_names: one readable name per class index.
        preprocessing: normalisation fitted on the training split.
        fingerprint: sha256 hex digest of the split contents (images, labels) and split
            parameters: two splits with the same fingerprint hold the same data.
        split_seed: seed that drew the validation (and, where needed, test) split.
        source: where the files were read from (a folder path, or a package name).
    """

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    fingerprint: str
    split_seed: int
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
