"""Confidence metrics of one stage's class probabilities (pure numpy).

Each metric maps probabilities of shape (N, K) to confidences of shape (N,) where larger
means more confident; a cascade stops at the first stage whose confidence reaches its
threshold. The score margin (top-1 minus top-2 probability) is the default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selector.errors import SelectorError

DEFAULT_METRIC = "margin"


def score_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability, in [0, 1]; (N, K) -> (N,)."""
    probs = _check(probs)
    if probs.shape[1] == 1:
        return probs[:, 0].copy()
    top2 = np.partition(probs, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def max_probability(probs: np.ndarray) -> np.ndarray:
    """Largest class probability, in [1/K, 1]; (N, K) -> (N,)."""
    return _check(probs).max(axis=1)


def negative_entropy(probs: np.ndarray) -> np.ndarray:
    """Minus the Shannon entropy in nats, in [-ln K, 0]; (N, K) -> (N,)."""
    probs = _check(probs)
    safe = np.clip(probs, np.finfo(probs.dtype).tiny, None)
    return np.sum(probs * np.log(safe), axis=1)


METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "margin": score_margin,
    "max-prob": max_probability,
    "neg-entropy": negative_entropy,
}


def confidence(probs: np.ndarray, metric: str = DEFAULT_METRIC) -> np.ndarray:
    """Confidence of each row of ``probs`` by the named metric (see :data:`METRICS`)."""
    try:
        fn = METRICS[metric]
    except KeyError:
        raise SelectorError(
            f"unknown confidence metric {metric!r}; known: {', '.join(METRICS)}"
        ) from None
    return fn(probs)


def _check(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] == 0:
        raise SelectorError(f"probabilities must have shape (N, K) with K >= 1, got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    return probs
