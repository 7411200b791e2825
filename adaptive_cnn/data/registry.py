"""Registry of datasets: ``load_dataset(name, ...)`` and ``list_datasets()``.

Every dataset is read from its standard on-disk format (nothing is downloaded); official
test sets are kept, and validation (plus test, where there is no official one) is carved
with a seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptive_cnn.data import cifar, digits, imagefolder, mnist
from adaptive_cnn.data.splits import carve, check_fraction, fingerprint, preprocessing_stats
from adaptive_cnn.data.types import DatasetSplits, ImageSet
from adaptive_cnn.errors import AcnnError, ConfigError, DatasetNotFoundError

DEFAULT_DATASET = "fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "ACNN_FASHION_MNIST_DIR"
MNIST_DIR = Path("/usr/share/datasets/mnist")
NEEDS_DATA_DIR = "(pass --data-dir DIR)"


@dataclass(frozen=True)
class DatasetStatus:
    """What ``acnn datasets`` shows for one dataset.

    Attributes:
        name: registry name.
        description: one line on what the dataset is.
        location: the folder looked in (or the package that bundles it).
        available: the files were found and their headers are valid.
        num_train: images in the training set (all images when the test split is carved).
        num_test: images in the official test set; None when the test split is carved.
        input_shape: (C, H, W) of one image (for imagefolder: of the first image).
        num_classes: number of classes.
        how_to_get: one line on how to install or point at the data (or what is wrong).
    """

    name: str
    description: str
    location: str
    available: bool
    num_train: int | None
    num_test: int | None
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    how_to_get: str


@dataclass(frozen=True)
class _RawDataset:
    """A dataset as read from disk, before splitting."""

    train: ImageSet
    test: ImageSet | None  # None: no official test split, carve one
    class_names: tuple[str, ...]
    pixel_max: float
    source: str


@dataclass(frozen=True)
class _Spec:
    description: str
    how_to_get: str
    native_size: tuple[int, int] | None  # (H, W); None: any size (image_size allowed)
    locate: Callable[[Path | None], str]  # where the files are looked for, for listings
    read: Callable[[Path | None, tuple[int, int] | None], _RawDataset]
    status: Callable[[Path | None], DatasetStatus]  # raises if unavailable


# ---------------------------------------------------------------- MNIST-format datasets


def _fashion_dir(data_dir: Path | None) -> Path:
    return Path(data_dir or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def _mnist_dir(data_dir: Path | None) -> Path:
    return Path(data_dir or MNIST_DIR)


_FASHION_HOW = (
    "install it with 'apt-get install -y dataset-fashion-mnist' (Debian/Ubuntu, as root) "
    f"or pass --data-dir DIR holding {mnist.FILES_HINT} (or set {FASHION_MNIST_ENV}=DIR)"
)
_MNIST_HOW = (
    "download the four MNIST IDX files from https://yann.lecun.com/exdb/mnist/ and pass "
    f"--data-dir DIR holding {mnist.FILES_HINT}"
)


def _idx_files(name: str, folder: Path, how: str) -> dict[str, Path]:
    files, missing = mnist.find_files(folder)
    if missing:
        what = "" if len(missing) == 4 else f" (missing {', '.join(missing)})"
        raise DatasetNotFoundError(f"dataset '{name}' not found in {folder}{what}: {how}")
    return files


def _read_idx_set(name: str, folder: Path, how: str, classes: tuple[str, ...]) -> _RawDataset:
    train, test = mnist.read_folder(_idx_files(name, folder, how))
    return _RawDataset(train, test, classes, 255.0, str(folder))


def _idx_status(name: str, folder: Path, how: str) -> DatasetStatus:
    num_train, num_test, shape = mnist.read_headers(_idx_files(name, folder, how))
    return DatasetStatus(
        name=name,
        description=_SPECS[name].description,
        location=str(folder),
        available=True,
        num_train=num_train,
        num_test=num_test,
        input_shape=shape,
        num_classes=mnist.NUM_CLASSES,
        how_to_get=how,
    )


def _read_fashion(data_dir: Path | None, image_size: object) -> _RawDataset:
    folder = _fashion_dir(data_dir)
    return _read_idx_set("fashion-mnist", folder, _FASHION_HOW, mnist.FASHION_CLASS_NAMES)


def _read_mnist(data_dir: Path | None, image_size: object) -> _RawDataset:
    return _read_idx_set("mnist", _mnist_dir(data_dir), _MNIST_HOW, mnist.DIGIT_CLASS_NAMES)


# ---------------------------------------------------------------- other formats


def _given_dir(data_dir: Path | None) -> str:
    return NEEDS_DATA_DIR if data_dir is None else str(data_dir)


def _require_dir(
    name: str, data_dir: Path | None, how: str, error: type[AcnnError] = DatasetNotFoundError
) -> Path:
    if data_dir is None:
        raise error(f"dataset '{name}' needs --data-dir: {how}")
    return data_dir


def _read_cifar(data_dir: Path | None, image_size: object) -> _RawDataset:
    folder = _require_dir("cifar10", data_dir, cifar.HOW_TO_GET)
    train, test, names, folder = cifar.read_cifar10(folder)
    return _RawDataset(train, test, names, 255.0, str(folder))


def _cifar_status(data_dir: Path | None) -> DatasetStatus:
    folder = cifar.resolve_folder(_require_dir("cifar10", data_dir, cifar.HOW_TO_GET))
    names, per_batch = cifar.read_meta(folder)
    for file in (*cifar.TRAIN_FILES, cifar.TEST_FILE):
        if not (folder / file).is_file():
            raise DatasetNotFoundError(f"{folder / file} is missing: {cifar.HOW_TO_GET}")
    num_train = 5 * per_batch if per_batch else None
    return DatasetStatus(
        name="cifar10",
        description=_SPECS["cifar10"].description,
        location=str(folder),
        available=True,
        num_train=num_train,
        num_test=per_batch,
        input_shape=cifar.IMAGE_SHAPE,
        num_classes=len(names),
        how_to_get=cifar.HOW_TO_GET,
    )


def _read_folder(data_dir: Path | None, image_size: tuple[int, int] | None) -> _RawDataset:
    folder = _require_dir("imagefolder", data_dir, imagefolder.HOW_TO_GET, ConfigError)
    train, test, names = imagefolder.read_image_folder(folder, image_size)
    return _RawDataset(train, test, names, 255.0, str(data_dir))


def _folder_status(data_dir: Path | None) -> DatasetStatus:
    listing = imagefolder.list_folder(_require_dir("imagefolder", data_dir, imagefolder.HOW_TO_GET))
    mode, (h, w) = imagefolder.probe(listing.train[0][0])
    c = 1 if mode in imagefolder.GRAYSCALE_MODES else 3
    num_test = len(listing.test) if listing.test is not None else None
    return DatasetStatus(
        name="imagefolder",
        description=_SPECS["imagefolder"].description,
        location=str(data_dir),
        available=True,
        num_train=len(listing.train),
        num_test=num_test,
        input_shape=(c, h, w),
        num_classes=len(listing.class_names),
        how_to_get=imagefolder.HOW_TO_GET,
    )


def _read_digits(data_dir: Path | None, image_size: object) -> _RawDataset:
    if data_dir is not None:
        raise ConfigError("dataset 'digits' is bundled with scikit-learn: drop --data-dir")
    return _RawDataset(
        digits.read_digits(), None, digits.CLASS_NAMES, float(digits.PIXEL_MAX), digits.SOURCE
    )


def _digits_status(data_dir: Path | None) -> DatasetStatus:
    return DatasetStatus(
        name="digits",
        description=_SPECS["digits"].description,
        location=digits.SOURCE,
        available=True,
        num_train=digits.NUM_IMAGES,
        num_test=None,
        input_shape=digits.IMAGE_SHAPE,
        num_classes=len(digits.CLASS_NAMES),
        how_to_get=_SPECS["digits"].how_to_get,
    )


_SPECS: dict[str, _Spec] = {
    "fashion-mnist": _Spec(
        "Fashion-MNIST: 28x28 grayscale clothing images, 10 classes",
        _FASHION_HOW,
        (28, 28),
        lambda d: str(_fashion_dir(d)),
        _read_fashion,
        lambda d: _idx_status("fashion-mnist", _fashion_dir(d), _FASHION_HOW),
    ),
    "mnist": _Spec(
        "MNIST: 28x28 grayscale handwritten digits, 10 classes",
        _MNIST_HOW,
        (28, 28),
        lambda d: str(_mnist_dir(d)),
        _read_mnist,
        lambda d: _idx_status("mnist", _mnist_dir(d), _MNIST_HOW),
    ),
    "cifar10": _Spec(
        "CIFAR-10: 32x32 colour images, 10 classes",
        cifar.HOW_TO_GET,
        (32, 32),
        _given_dir,
        _read_cifar,
        _cifar_status,
    ),
    "imagefolder": _Spec(
        "your own PNG/JPEG images, one sub-folder per class",
        imagefolder.HOW_TO_GET,
        None,
        _given_dir,
        _read_folder,
        _folder_status,
    ),
    "digits": _Spec(
        "scikit-learn 8x8 handwritten digits, bundled (fast tests)",
        "bundled with scikit-learn",
        (8, 8),
        lambda d: digits.SOURCE,
        _read_digits,
        _digits_status,
    ),
}

# ---------------------------------------------------------------- public API


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ConfigError(f"unknown dataset '{name}': use one of {', '.join(sorted(_SPECS))}")
    return _SPECS[name]


def _check_image_size(name: str, spec: _Spec, image_size: tuple[int, int] | None) -> None:
    if image_size is None:
        return
    size = tuple(image_size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in size):
        raise ConfigError(f"image_size must be two whole numbers H W >= 1, got {image_size!r}")
    native = spec.native_size
    if native is not None and size != native:
        raise ConfigError(
            f"dataset '{name}' has fixed {native[0]}x{native[1]} images and cannot be "
            "resized: drop --image-size (it applies to imagefolder)"
        )


def _split(
    raw: _RawDataset, seed: int, val_fraction: float | int, test_fraction: float | int
) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, val, test): carve test if there is no official one, then val from train."""
    rest, test = raw.train, raw.test
    if test is None:
        rest, test = carve(rest.images, rest.labels, test_fraction, seed, "test_fraction")
    train, val = carve(rest.images, rest.labels, val_fraction, seed, "val_fraction")
    return train, val, test


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float | int = 0.1,
    test_fraction: float | int = 0.2,
    image_size: tuple[int, int] | None = None,
) -> DatasetSplits:
    """Load a dataset and split it into train / validation / test.

    Args:
        name: registry name: ``fashion-mnist``, ``mnist``, ``cifar10``, ``imagefolder``,
            ``digits``.
        data_dir: folder holding the files; defaults per dataset (Fashion-MNIST:
            ``$ACNN_FASHION_MNIST_DIR`` or ``/usr/share/datasets/fashion-mnist``).
        seed: seed of the stratified validation (and, where carved, test) split.
        val_fraction: share of the training data for validation, a float in (0, 1), or
            a number of images (int >= 1).
        test_fraction: share of all images for the test split, used only by datasets
            without an official one (digits, imagefolder without train/ and test/).
        image_size: (H, W) in pixels to resize imagefolder images to.

    Returns:
        Splits of uint8 (N, C, H, W) images and int64 labels, normalisation fitted on the
        training split, and a fingerprint of contents and split parameters.

    Raises:
        ConfigError: unknown name or invalid parameter.
        DatasetNotFoundError: the files are not there (the message says how to get them).
        DatasetFormatError: the files are corrupt or not in the expected format.
    """
    spec = _spec(name)
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    _check_image_size(name, spec, image_size)
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    raw = spec.read(None if data_dir is None else Path(data_dir), size)
    train, val, test = _split(raw, seed, val_fraction, test_fraction)
    params = {
        "name": name,
        "class_names": list(raw.class_names),
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction if raw.test is None else None,
    }
    return DatasetSplits(
        name=name,
        train=train,
        val=val,
        test=test,
        class_names=raw.class_names,
        preprocessing=preprocessing_stats(train.images, raw.pixel_max),
        fingerprint=fingerprint({"train": train, "val": val, "test": test}, params),
        split_seed=seed,
        source=raw.source,
    )


def dataset_names() -> list[str]:
    """Registered dataset names, in listing order."""
    return list(_SPECS)


def _status_or_unavailable(name: str, data_dir: Path | None) -> DatasetStatus:
    spec = _SPECS[name]
    try:
        return spec.status(data_dir)
    except (AcnnError, OSError) as exc:
        # Missing files: say how to get them; anything else: say what is wrong.
        how = spec.how_to_get if isinstance(exc, DatasetNotFoundError) else str(exc)
        location = spec.locate(data_dir)
        return DatasetStatus(name, spec.description, location, False, None, None, None, None, how)


def list_datasets(data_dirs: Mapping[str, str | Path] | None = None) -> list[DatasetStatus]:
    """Report which datasets are available, reading only headers and metadata.

    Args:
        data_dirs: optional folder per dataset name, overriding the defaults.

    Returns:
        One status per registered dataset, in registry order.

    Raises:
        ConfigError: ``data_dirs`` names an unknown dataset.
    """
    data_dirs = dict(data_dirs or {})
    for name in data_dirs:
        _spec(name)
    return [
        _status_or_unavailable(name, Path(data_dirs[name]) if name in data_dirs else None)
        for name in _SPECS
    ]
