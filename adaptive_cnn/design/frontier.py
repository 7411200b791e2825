"""The energy-accuracy frontier of a run's fully trained networks, across budgets.

A design answers one budget; the user's device may want another (a battery running low
can drop to a cheaper point without re-designing). The frontier is built from the
networks the run already trained fully, with no training at all: at each of a range of
budgets, from the cheapest single network's energy to the largest's, the best cascade of
those networks (:func:`adaptive_cnn.design.combination.best_combination`, thresholds
solved exactly on validation) is tested once on test; the points no other point beats on
both validation energy and validation accuracy are kept.

Pure logic: the networks' probabilities are passed in, nothing is read or written here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_cnn.design.combination import best_combination
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.costs import CostModel
from selector import CascadeData, evaluate

#: budgets per frontier (geometric steps from the cheapest network to the dearest)
DEFAULT_POINTS = 8


@dataclass(frozen=True)
class FrontierPoint:
    """The best cascade at one budget: chosen on validation, tested once on test.

    Attributes:
        budget_mj: the budget it was chosen under (device energy per image, validation).
        stages: the local networks, cheapest first (the cloud follows when configured).
        thresholds: the exit thresholds, one per stage before the last.
        val_accuracy, val_energy_mj: its validation figures (where it was chosen).
        test_accuracy, test_energy_mj, bytes_per_image: its test figures.
        stage_energy_mj: each local stage's predicted device energy per call.
    """

    budget_mj: float
    stages: tuple[str, ...]
    thresholds: tuple[float, ...]
    val_accuracy: float
    val_energy_mj: float
    test_accuracy: float
    test_energy_mj: float
    bytes_per_image: float
    stage_energy_mj: tuple[float, ...] = ()

    def to_row(self) -> dict[str, Any]:
        return {
            "budget_mj": self.budget_mj,
            "stages": " | ".join(self.stages),
            "thresholds": " ".join(repr(float(t)) for t in self.thresholds),  # exact
            "val_accuracy": self.val_accuracy,
            "val_energy_mj": self.val_energy_mj,
            "test_accuracy": self.test_accuracy,
            "test_energy_mj": self.test_energy_mj,
            "bytes_per_image": self.bytes_per_image,
            "stage_energy_mj": " ".join(repr(float(e)) for e in self.stage_energy_mj),
        }


def frontier_budgets(energies_mj: list[float], points: int = DEFAULT_POINTS) -> list[float]:
    """``points`` budgets in geometric steps from the cheapest to the dearest energy."""
    low, high = min(energies_mj), max(energies_mj)
    if points == 1 or high <= low:
        return [high]
    return [float(b) for b in np.geomspace(low, high, points)]


def design_frontier(
    val_probs: Mapping[str, np.ndarray],
    test_probs: Mapping[str, np.ndarray],
    val_labels: np.ndarray,
    test_labels: np.ndarray,
    costs: CostModel,
    config: DesignConfig,
    cloud: tuple[np.ndarray, np.ndarray] | None = None,
    points: int = DEFAULT_POINTS,
) -> list[FrontierPoint]:
    """The frontier of the networks in ``val_probs``/``test_probs`` (arch -> probabilities
    (N, classes)), cheapest first; ``cloud`` is the cloud's (validation, test)
    probabilities when the cascade ends in it. Other constraints of ``config`` (the bytes
    cap) hold at every point; its budget and accuracy floor are replaced by each budget."""
    budgets = frontier_budgets([costs.local(a).energy_mj for a in val_probs], points)
    found: dict[tuple[tuple[str, ...], tuple[float, ...]], FrontierPoint] = {}
    for budget in budgets:
        at_budget = config.changed(budget_mj=budget, min_accuracy=None)
        best = best_combination(
            val_probs, val_labels, costs, at_budget, None if cloud is None else cloud[0]
        ).best
        if best is None or (best.stages, best.thresholds) in found:
            continue
        probs = [test_probs[a] for a in best.stages] + ([] if cloud is None else [cloud[1]])
        data = CascadeData.from_probs(probs, test_labels, config.metric)
        thresholds = np.asarray(best.thresholds, dtype=float)
        test = evaluate(data, costs.stage_costs(best.stages), thresholds).metrics_at(0)
        found[(best.stages, best.thresholds)] = FrontierPoint(
            budget_mj=budget,
            stages=best.stages,
            thresholds=best.thresholds,
            val_accuracy=best.val_metrics["accuracy"],
            val_energy_mj=best.val_metrics["energy_mj"],
            test_accuracy=test["accuracy"],
            test_energy_mj=test["energy_mj"],
            bytes_per_image=test["bytes_per_image"],
            stage_energy_mj=tuple(costs.local(a).energy_mj for a in best.stages),
        )
    return _undominated(list(found.values()))


def _undominated(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """The points no other beats on validation (no more energy and more accuracy, or
    less energy and no less accuracy), cheapest first."""
    ordered = sorted(points, key=lambda p: (p.val_energy_mj, -p.val_accuracy))
    kept: list[FrontierPoint] = []
    best_accuracy = -math.inf
    for p in ordered:
        if p.val_accuracy > best_accuracy:
            kept.append(p)
            best_accuracy = p.val_accuracy
    return kept
