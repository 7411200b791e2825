"""Safety margin for an accuracy target chosen on validation and checked on test.

Thresholds tuned to reach an accuracy on validation land a little above or below it on
test. Where a cascade must stay within a distance of a reference network on unseen data,
the validation target is raised by the standard error of the two systems' accuracy
difference measured on the same images (a paired estimate, so what both get right or
both get wrong adds no noise).
"""

from __future__ import annotations

import math

import numpy as np

from selector.cascade import exit_stages
from selector.cascade_data import CascadeData
from selector.errors import SelectorError


def cascade_correct(data: CascadeData, thresholds: np.ndarray) -> np.ndarray:
    """(N,) bool: the cascade's answer for each image is right under ``thresholds``."""
    return data.correct[exit_stages(data, thresholds), np.arange(data.n_images)]


def paired_standard_error(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Standard error (as a fraction) of accuracy(a) - accuracy(b) on the same images."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise SelectorError(
            f"paired correctness needs two equal 1-D arrays of >= 2 images, got {a.shape} "
            f"and {b.shape}"
        )
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(diff.std(ddof=1) / math.sqrt(diff.size))
