"""scikit-learn's bundled 8x8 handwritten digits (no download needed)."""

from __future__ import annotations

import numpy as np

from adaptive_cnn.data.types import ImageSet

NUM_IMAGES = 1797
IMAGE_SHAPE = (1, 8, 8)
PIXEL_MAX = 16
CLASS_NAMES = tuple(str(d) for d in range(10))
SOURCE = "scikit-learn (sklearn.datasets.load_digits, bundled)"


def read_digits() -> ImageSet:
    """Load all 1797 digits in their native pixel scale.

    Returns:
        ImageSet of uint8 images (1797, 1, 8, 8) with values 0..16 and int64 labels 0..9.
    """
    from sklearn.datasets import load_digits  # deferred: importing sklearn takes ~1 s

    bunch = load_digits()
    images = np.ascontiguousarray(bunch.images.reshape((-1, *IMAGE_SHAPE)).astype(np.uint8))
    return ImageSet(images, bunch.target.astype(np.int64))
