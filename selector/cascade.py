"""Exact evaluation of a cascade under many threshold vectors at once.

Image ``n`` exits at the first stage ``s`` with ``confidence[s, n] >= thresholds[s]``; the
last stage always answers. Every image that reaches a stage pays its costs, so the costs
of an image are the cumulative costs up to its exit stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selector.cascade_data import CascadeData
from selector.costs import StageCosts
from selector.errors import SelectorError

# Boolean (threshold vector x image) cells processed at once; bounds evaluate's memory
# to a few times this many bytes whatever T and N are.
_CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class CascadeMetrics:
    """Outcomes of T threshold vectors; every field has T rows, even when T == 1.

    Attributes:
        accuracy: (T,) fraction of images whose exit stage is right.
        energy_mj: (T,) mean device energy per image in mJ.
        latency_ms: (T,) mean latency per image in ms.
        bytes_per_image: (T,) mean bytes sent off the device per image.
        offload_rate: (T,) fraction of images whose exit stage is remote.
        exit_fractions: (T, S) fraction of images exiting at each stage (rows sum to 1).
    """

    accuracy: np.ndarray
    energy_mj: np.ndarray
    latency_ms: np.ndarray
    bytes_per_image: np.ndarray
    offload_rate: np.ndarray
    exit_fractions: np.ndarray

    def __len__(self) -> int:
        return int(self.accuracy.shape[0])

    def metrics_at(self, i: int) -> dict[str, float | list[float]]:
        """Row ``i`` as plain Python floats (JSON-safe)."""
        return {
            "accuracy": float(self.accuracy[i]),
            "energy_mj": float(self.energy_mj[i]),
            "latency_ms": float(self.latency_ms[i]),
            "bytes_per_image": float(self.bytes_per_image[i]),
            "offload_rate": float(self.offload_rate[i]),
            "exit_fractions": [float(f) for f in self.exit_fractions[i]],
        }

    def take(self, rows: np.ndarray | list[int]) -> CascadeMetrics:
        """The metrics of the given rows (indices or a boolean mask), in that order."""
        return CascadeMetrics(
            accuracy=self.accuracy[rows],
            energy_mj=self.energy_mj[rows],
            latency_ms=self.latency_ms[rows],
            bytes_per_image=self.bytes_per_image[rows],
            offload_rate=self.offload_rate[rows],
            exit_fractions=self.exit_fractions[rows],
        )


def evaluate(data: CascadeData, costs: StageCosts, thresholds: np.ndarray) -> CascadeMetrics:
    """Exact metrics of the cascade under each threshold vector.

    Args:
        data: per-image confidence and correctness of the S stages.
        costs: per-stage costs, S entries.
        thresholds: (S-1,) one threshold vector or (T, S-1) many; ``+inf`` never exits and
            ``-inf`` always exits at that stage.

    Returns:
        Metrics with T rows (T == 1 for a single vector). Works in chunks of threshold
        vectors, so memory stays bounded for T and N in the tens of thousands.
    """
    check_costs(data, costs)
    return summarise(*count_exits(data, thresholds), costs)


def count_exits(data: CascadeData, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit counts (T, S) and numbers of right answers (T,) under (S-1,) or (T, S-1) thresholds."""
    table = _threshold_table(thresholds, data.n_stages)
    counts = np.empty((table.shape[0], data.n_stages), dtype=np.int64)
    n_correct = np.empty(table.shape[0], dtype=np.int64)
    step = max(1, _CHUNK_CELLS // data.n_images)
    for start in range(0, table.shape[0], step):
        rows = slice(start, start + step)
        counts[rows], n_correct[rows] = _count_chunk(data, table[rows])
    return counts, n_correct


def exit_stages(data: CascadeData, thresholds: np.ndarray) -> np.ndarray:
    """(N,) exit stage of every image under one (S-1,) threshold vector."""
    table = _threshold_table(thresholds, data.n_stages)
    if table.shape[0] != 1:
        raise SelectorError(f"exit_stages takes one threshold vector, got {table.shape[0]}")
    stage = np.full(data.n_images, data.n_stages - 1, dtype=np.int64)
    for s in range(data.n_stages - 2, -1, -1):
        stage[data.confidence[s] >= table[0, s]] = s
    return stage


def summarise(counts: np.ndarray, n_correct: np.ndarray, costs: StageCosts) -> CascadeMetrics:
    """Metrics from exit counts (T, S) and numbers of right answers (T,).

    Costs are accumulated stage by stage in a fixed order, so equal counts give
    bit-identical metrics whichever routine produced them (the optimiser compares them).
    """
    n_images = counts.sum(axis=1)
    fractions = counts / n_images[:, None]
    return CascadeMetrics(
        accuracy=n_correct / n_images,
        energy_mj=_weighted(fractions, np.cumsum(costs.energy_mj)),
        latency_ms=_weighted(fractions, np.cumsum(costs.latency_ms)),
        bytes_per_image=_weighted(fractions, np.cumsum(costs.payload_bytes)),
        offload_rate=_weighted(fractions, costs.remote.astype(np.float64)),
        exit_fractions=fractions,
    )


def check_costs(data: CascadeData, costs: StageCosts) -> None:
    """Raise SelectorError unless data and costs describe the same number of stages."""
    if costs.n_stages != data.n_stages:
        raise SelectorError(
            f"costs describe {costs.n_stages} stages but the data has {data.n_stages}"
        )


def _weighted(fractions: np.ndarray, per_exit_stage: np.ndarray) -> np.ndarray:
    total = np.zeros(fractions.shape[0])
    for s, value in enumerate(per_exit_stage):
        total += fractions[:, s] * value
    return total


def _count_chunk(data: CascadeData, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit counts (t, S) and right answers (t,) for a chunk of t threshold vectors."""
    n_stages = data.n_stages
    counts = np.empty((table.shape[0], n_stages), dtype=np.int64)
    n_correct = np.zeros(table.shape[0], dtype=np.int64)
    remaining = np.ones((table.shape[0], data.n_images), dtype=bool)
    exits = np.empty_like(remaining)
    for s in range(n_stages - 1):
        np.greater_equal(data.confidence[s], table[:, s, None], out=exits)
        exits &= remaining
        remaining &= ~exits
        counts[:, s] = np.count_nonzero(exits, axis=1)
        n_correct += np.count_nonzero(exits & data.correct[s], axis=1)
    counts[:, -1] = np.count_nonzero(remaining, axis=1)
    n_correct += np.count_nonzero(remaining & data.correct[-1], axis=1)
    return counts, n_correct


def _threshold_table(thresholds: np.ndarray, n_stages: int) -> np.ndarray:
    try:
        table = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise SelectorError("thresholds must be an array of numbers") from None
    if table.ndim == 1:
        table = table[None, :]
    if table.ndim != 2 or table.shape[1] != n_stages - 1:
        raise SelectorError(
            f"thresholds must have shape ({n_stages - 1},) or (T, {n_stages - 1}) "
            f"for {n_stages} stages, got {np.shape(thresholds)}"
        )
    if np.isnan(table).any():
        raise SelectorError("thresholds must not be NaN")
    return table
