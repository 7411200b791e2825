"""Reader of a folder of images with one sub-folder per class.

Layout: ``ROOT/<class>/<image>.png|.jpg|.jpeg`` (class names are the sorted sub-folder
names), or ``ROOT/train/<class>/...`` plus ``ROOT/test/<class>/...`` for official splits.
Images are decoded with Pillow; if every image is grayscale the set has one channel,
otherwise all are converted to RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from adaptive_cnn.data.types import ImageSet
from adaptive_cnn.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

EXTENSIONS = (".png", ".jpg", ".jpeg")
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
HOW_TO_GET = (
    "pass --data-dir DIR holding one sub-folder of PNG/JPEG images per class "
    "(optionally under train/ and test/)"
)


@dataclass(frozen=True)
class FolderListing:
    """Image files of a folder, before decoding.

    Attributes:
        class_names: sorted class sub-folder names.
        train: (path, label) pairs of the training images (all images without splits).
        test: (path, label) pairs of the official test images, or None.
    """

    class_names: tuple[str, ...]
    train: tuple[tuple[Path, int], ...]
    test: tuple[tuple[Path, int], ...] | None


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
    )


def _list_split(root: Path, class_names: tuple[str, ...]) -> tuple[tuple[Path, int], ...]:
    """(path, label) of every image under ``root/<class>/``."""
    index = {name: i for i, name in enumerate(class_names)}
    items: list[tuple[Path, int]] = []
    for folder in _class_dirs(root):
        if folder.name not in index:
            raise DatasetFormatError(
                f"{folder} is a class folder absent from the training classes "
                f"{list(class_names)}: rename or remove it"
            )
        items.extend((p, index[folder.name]) for p in _images_in(folder))
    if not items:
        raise DatasetFormatError(f"no PNG/JPEG images under {root}/<class>/: {HOW_TO_GET}")
    return tuple(items)


def list_folder(root: str | Path) -> FolderListing:
    """List the classes and image files of an image folder without decoding anything.

    Raises:
        DatasetNotFoundError: ``root`` is not a folder.
        DatasetFormatError: no class sub-folders or no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"dataset 'imagefolder' not found: {root} is not a folder; {HOW_TO_GET}"
        )
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if has_splits else root
    class_names = tuple(p.name for p in _class_dirs(train_root))
    if not class_names:
        raise DatasetFormatError(f"{train_root} has no class sub-folders: {HOW_TO_GET}")
    train = _list_split(train_root, class_names)
    test = _list_split(root / "test", class_names) if has_splits else None
    return FolderListing(class_names, train, test)


def probe(path: Path) -> tuple[str, tuple[int, int]]:
    """Read an image's header only: (Pillow mode, (height, width)).

    Raises:
        DatasetFormatError: Pillow cannot identify the file.
    """
    try:
        with Image.open(path) as img:
            return img.mode, (img.height, img.width)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetFormatError(f"cannot read image {path} ({exc}): fix or remove it") from exc


def _decode(path: Path, mode: str, size: tuple[int, int], resize: bool) -> np.ndarray:
    """Decode one image to a (C, H, W) uint8 array."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if resize and (img.height, img.width) != size:
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetFormatError(f"cannot decode image {path} ({exc}): fix or remove it") from exc
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _check_sizes(paths: list[Path], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    for path, size in zip(paths, sizes, strict=True):
        if size != sizes[0]:
            raise ConfigError(
                f"image {path} is {size[0]}x{size[1]} (HxW) but {paths[0]} is "
                f"{sizes[0][0]}x{sizes[0][1]}: pass --image-size H W to resize all images"
            )
    return sizes[0]


def decode_images(paths: list[Path], image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode image files into one array.

    Args:
        paths: image files.
        image_size: (H, W) in pixels to resize every image to (bilinear); None keeps the
            native size, which must then be the same for all images.

    Returns:
        uint8 array of shape (N, C, H, W): C = 1 if every image is grayscale, else 3 (RGB).

    Raises:
        DatasetFormatError: an image cannot be read (the message names it).
        ConfigError: sizes differ and ``image_size`` is None.
    """
    headers = [probe(p) for p in paths]
    mode = "L" if all(m in GRAYSCALE_MODES for m, _ in headers) else "RGB"
    size = image_size or _check_sizes(paths, [s for _, s in headers])
    channels = 1 if mode == "L" else 3
    out = np.empty((len(paths), channels, *size), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = _decode(path, mode, size, resize=image_size is not None)
    return out


def read_image_folder(
    root: str | Path, image_size: tuple[int, int] | None = None
) -> tuple[ImageSet, ImageSet | None, tuple[str, ...]]:
    """Read a class-per-sub-folder image dataset.

    Args:
        root: dataset folder.
        image_size: (H, W) in pixels to resize to, or None to keep the shared native size.

    Returns:
        (train, official test or None, class names). Train and test share channels and size.
    """
    listing = list_folder(root)
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise ConfigError(f"image_size must be (H, W) with H, W >= 1, got {image_size!r}")
    everything = list(listing.train) + list(listing.test or ())
    paths = [p for p, _ in everything]
    images = decode_images(paths, image_size)
    labels = np.array([label for _, label in everything], dtype=np.int64)
    n = len(listing.train)
    train = ImageSet(images[:n], labels[:n])
    test = ImageSet(images[n:], labels[n:]) if listing.test is not None else None
    return train, test, listing.class_names
