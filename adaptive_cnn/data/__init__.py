"""Datasets of acnn: loaders for Fashion-MNIST, MNIST, CIFAR-10, image folders and digits.

``load_dataset(name, ...)`` returns :class:`DatasetSplits` (train / val / test in native
pixel scale, with normalisation fitted on train); ``list_datasets()`` reports which
datasets are installed without reading pixels.
"""

from adaptive_cnn.data.idx import read_idx, write_idx
from adaptive_cnn.data.registry import (
    DEFAULT_DATASET,
    DatasetStatus,
    dataset_names,
    list_datasets,
    load_dataset,
)
from adaptive_cnn.data.splits import carve, fingerprint, preprocessing_stats
from adaptive_cnn.data.types import DatasetSplits, ImageSet, Preprocessing

__all__ = [
    "DEFAULT_DATASET",
    "DatasetSplits",
    "DatasetStatus",
    "ImageSet",
    "Preprocessing",
    "carve",
    "dataset_names",
    "fingerprint",
    "list_datasets",
    "load_dataset",
    "preprocessing_stats",
    "read_idx",
    "write_idx",
]
