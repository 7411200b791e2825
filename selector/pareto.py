"""Pareto front of cascade designs: low energy, high accuracy, optionally few bytes."""

from __future__ import annotations

import numpy as np

from selector.errors import SelectorError


def pareto_front(
    energy_mj: np.ndarray, accuracy: np.ndarray, bytes_per_image: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the non-dominated points, sorted by energy.

    A point is dominated when another is no worse in every objective (energy and bytes
    lower or equal, accuracy higher or equal) and better in one. Of several identical
    non-dominated points only the one with the lowest index is kept.

    Args:
        energy_mj: (P,) energy per image, minimised.
        accuracy: (P,) accuracy, maximised.
        bytes_per_image: (P,) bytes per image, minimised; None for two objectives.

    Returns:
        (F,) int indices into the inputs, by increasing energy, then decreasing accuracy,
        then increasing bytes.
    """
    energy = _objective("energy_mj", energy_mj)
    acc = _objective("accuracy", accuracy, energy.shape[0])
    sent = (
        np.zeros_like(energy)
        if bytes_per_image is None
        else _objective("bytes_per_image", bytes_per_image, energy.shape[0])
    )
    # Every point that dominates (or duplicates) another comes before it in this order.
    order = np.lexsort((np.arange(energy.shape[0]), sent, -acc, energy))
    if bytes_per_image is None:
        return _front_2d(acc[order], order)
    return _front_3d(acc[order], sent[order], order)


def _front_2d(acc: np.ndarray, order: np.ndarray) -> np.ndarray:
    # By increasing energy, a point is on the front when it beats every earlier accuracy.
    best_before = np.maximum.accumulate(np.concatenate(([-np.inf], acc[:-1])))
    return order[acc > best_before]


def _front_3d(acc: np.ndarray, sent: np.ndarray, order: np.ndarray) -> np.ndarray:
    # Transitivity: a point dominated by anyone earlier is dominated by a kept point.
    kept: list[int] = []
    for i in range(order.shape[0]):
        if not np.any((acc[kept] >= acc[i]) & (sent[kept] <= sent[i])):
            kept.append(i)
    return order[np.array(kept, dtype=np.int64)]


def _objective(name: str, values: np.ndarray, size: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SelectorError(f"{name} must be an array of numbers") from None
    if array.ndim != 1 or (size is not None and array.shape[0] != size):
        expected = "(P,)" if size is None else f"({size},)"
        raise SelectorError(f"{name} must have shape {expected}, got {array.shape}")
    if np.isnan(array).any():
        raise SelectorError(f"{name} must not be NaN")
    return array
