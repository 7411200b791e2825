"""The oracle bound: every image exits at the first stage that classifies it correctly.

Stages run in order, so an image stopping at stage ``s`` still pays stages ``0..s``; the
oracle stops each image as early as any cascade could while still answering it right, and
stops the images no stage gets right at stage 0 (wrong anyway, and cheapest). No threshold
scheme on the same networks is more accurate, and none that is as accurate uses less
energy, latency or bytes. Two constrained forms bound what thresholds can reach on the
same networks: the least energy at an accuracy floor, and the most accuracy within an
energy budget (what a search may use to skip cascades that cannot win).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selector.cascade import check_costs, summarise
from selector.cascade_data import CascadeData
from selector.costs import StageCosts
from selector.errors import SelectorError


@dataclass(frozen=True)
class OracleResult:
    """Metrics of the oracle (one value each; units as in :class:`CascadeMetrics`).

    Attributes:
        accuracy: fraction of images that some stage gets right.
        energy_mj: mean device energy per image in mJ.
        latency_ms: mean latency per image in ms.
        bytes_per_image: mean bytes sent off the device per image.
        offload_rate: fraction of images whose exit stage is remote.
        exit_fractions: (S,) fraction of images exiting at each stage.
    """

    accuracy: float
    energy_mj: float
    latency_ms: float
    bytes_per_image: float
    offload_rate: float
    exit_fractions: np.ndarray

    def to_dict(self) -> dict[str, float | list[float]]:
        """Plain Python floats (JSON-safe)."""
        return {
            "accuracy": self.accuracy,
            "energy_mj": self.energy_mj,
            "latency_ms": self.latency_ms,
            "bytes_per_image": self.bytes_per_image,
            "offload_rate": self.offload_rate,
            "exit_fractions": [float(f) for f in self.exit_fractions],
        }


def oracle(
    data: CascadeData,
    costs: StageCosts,
    min_accuracy: float | None = None,
    budget_mj: float | None = None,
) -> OracleResult:
    """Metrics of the cascade when each image exits at its first correct stage.

    Args:
        data: per-image correctness of the S stages (confidences are not used).
        costs: per-stage costs, S entries.
        min_accuracy: the iso-accuracy bound instead: the least device energy of any
            assignment of images to exit stages whose accuracy is at least this (capped at
            the full oracle's accuracy). Images are answered right in order of the least
            extra energy they need beyond stage 0, which is optimal (each counts the same).
        budget_mj: the budget bound instead: the most accurate assignment whose mean device
            energy per image is within this many mJ, answering images right in the same
            order while the budget lasts. No threshold scheme within the budget is more
            accurate. With stage 0 alone above the budget, every image stops at stage 0
            (the cheapest assignment; its energy shows the budget is broken).

    Returns:
        The oracle's accuracy and mean costs per image.
    """
    check_costs(data, costs)
    exit_stage = np.argmax(data.correct, axis=0)  # first right stage, 0 when none is right
    right = data.correct.any(axis=0)
    if min_accuracy is not None and budget_mj is not None:
        raise SelectorError("give the oracle min_accuracy or budget_mj, not both")
    if min_accuracy is not None:
        exit_stage, right = _cheapest_reaching(data, costs, exit_stage, min_accuracy)
    if budget_mj is not None:
        exit_stage, right = _most_within(data, costs, exit_stage, budget_mj)
    counts = np.bincount(exit_stage, minlength=data.n_stages)[None, :]
    n_correct = np.array([np.count_nonzero(right)])
    row = summarise(counts, n_correct, costs)
    return OracleResult(
        accuracy=float(row.accuracy[0]),
        energy_mj=float(row.energy_mj[0]),
        latency_ms=float(row.latency_ms[0]),
        bytes_per_image=float(row.bytes_per_image[0]),
        offload_rate=float(row.offload_rate[0]),
        exit_fractions=row.exit_fractions[0],
    )


def _upgrades(
    data: CascadeData, costs: StageCosts, first_right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Images wrong at stage 0 but right later, cheapest first, and the energy each needs
    beyond stage 0 (in mJ) to exit at its first right stage."""
    upgradable = np.flatnonzero(~data.correct[0] & data.correct.any(axis=0))
    extra_mj = np.cumsum(costs.energy_mj)[first_right[upgradable]] - costs.energy_mj[0]
    order = np.argsort(extra_mj, kind="stable")
    return upgradable[order], extra_mj[order]


def _assign(
    data: CascadeData, first_right: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exit stages and rightness: ``chosen`` images at their first right stage, the rest
    at stage 0."""
    exit_stage = np.zeros(data.correct.shape[1], dtype=int)
    exit_stage[chosen] = first_right[chosen]
    right = data.correct[0].copy()
    right[chosen] = True
    return exit_stage, right


def _most_within(
    data: CascadeData, costs: StageCosts, first_right: np.ndarray, budget_mj: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exit stages (and rightness) answering the most images right within ``budget_mj``."""
    n_images = data.correct.shape[1]
    upgradable, extra_mj = _upgrades(data, costs, first_right)
    spare_mj = (budget_mj - float(costs.energy_mj[0])) * n_images
    slack = 1e-9 * max(1.0, abs(budget_mj)) * n_images  # rounding in sums of costs
    affordable = int(np.searchsorted(np.cumsum(extra_mj), spare_mj + slack, side="right"))
    return _assign(data, first_right, upgradable[:affordable])


def _cheapest_reaching(
    data: CascadeData, costs: StageCosts, first_right: np.ndarray, min_accuracy: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exit stages (and rightness) reaching ``min_accuracy`` with the least energy."""
    n_images = data.correct.shape[1]
    needed = int(np.ceil(min_accuracy * n_images - 1e-9)) - int(np.count_nonzero(data.correct[0]))
    upgradable, _ = _upgrades(data, costs, first_right)
    return _assign(data, first_right, upgradable[: max(needed, 0)])
