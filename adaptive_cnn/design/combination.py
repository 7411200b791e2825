"""The best cascade over every network a run trained fully, not only the searched ones.

The search proposes whole cascades and scores them after proxy training; the final
networks it re-ranks, the fixed last stage and the baselines' networks are then trained
with the final budget anyway, and their validation probabilities are at hand. Any of them
can be combined with any other: this module scores every admissible cascade of them
(1 to ``local_stages`` networks in increasing predicted energy, the cloud last when there
is a link, each passing the memory and first-stage screen), with thresholds solved by
``selector`` on the validation split under the run's constraints, and keeps the best.

Solving thresholds takes up to about a second per cascade, so the enumeration is
branch-and-bound, exact rather than sampled: each cascade's oracle bound on validation
(the most accuracy any thresholds can reach within the energy budget, or the least
energy reaching the accuracy floor: :func:`selector.oracle`) is computed first, the
cascades are scored best bound first, and scoring stops when no remaining bound can beat
the best cascade found. A cascade left unscored therefore cannot be better than the one
kept, whatever its thresholds.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.costs import CostModel
from adaptive_cnn.design.designer import constraint_violation, loss_of, solve_thresholds
from selector import CascadeData, evaluate, oracle


@dataclass(frozen=True)
class Combination:
    """One scored cascade of trained networks: its thresholds and validation metrics."""

    stages: tuple[str, ...]
    thresholds: tuple[float, ...]
    val_metrics: dict[str, Any]
    loss: float


@dataclass(frozen=True)
class CombinationSearch:
    """What combining a run's fully trained networks found, and what it took.

    Attributes:
        networks: the trained networks combined, cheapest first.
        admissible: cascades of them in increasing cost that pass the screen.
        scored: how many of those had thresholds solved; the rest were bounded out.
        seconds: wall-clock time of the whole combination.
        best: the best feasible cascade on validation (None when none is feasible).
    """

    networks: tuple[str, ...]
    admissible: int
    scored: int
    seconds: float
    best: Combination | None

    def to_dict(self) -> dict[str, Any]:
        best = None
        if self.best is not None:
            best = {
                "stages": list(self.best.stages),
                "thresholds": list(self.best.thresholds),
                "val_accuracy": self.best.val_metrics["accuracy"],
                "val_energy_mj": self.best.val_metrics["energy_mj"],
            }
        return {
            "networks": list(self.networks),
            "admissible": self.admissible,
            "scored": self.scored,
            "bounded_out": self.admissible - self.scored,
            "seconds": round(self.seconds, 3),
            "best": best,
        }


def admissible_cascades(
    archs: list[str], costs: CostModel, config: DesignConfig
) -> list[tuple[str, ...]]:
    """Every cascade of 1..``local_stages`` of ``archs`` in increasing predicted energy
    whose stages fit the device's memory and whose first stage fits the budget, and that
    keeps what the user fixed: the ``--last-stage`` network last, and with one family per
    stage (``--family`` repeated) each stage of the family of its place, counted from the
    last (a shorter cascade drops the first places)."""
    ordered = sorted(set(archs), key=lambda a: (costs.local(a).energy_mj, a))
    last = getattr(config.search, "last_stage", None)
    families = config.stage_families
    per_stage = len(set(families)) > 1
    cascades = []
    for n in range(1, config.local_stages + 1):
        for stages in itertools.combinations(ordered, n):
            if last is not None and stages[-1] != last:
                continue
            if per_stage and any(
                a.split(":", 1)[0] != fam for a, fam in zip(stages, families[-n:], strict=True)
            ):
                continue
            if costs.screen(stages, config.budget_mj, later_stage_factor=math.inf) is None:
                cascades.append(stages)
    return cascades


def best_combination(
    val_probs: Mapping[str, np.ndarray],
    labels: np.ndarray,
    costs: CostModel,
    config: DesignConfig,
    cloud_val_probs: np.ndarray | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CombinationSearch:
    """The best feasible cascade over the networks of ``val_probs`` (arch -> validation
    probabilities, each (N, classes)), the cloud's probabilities last when given.

    Best means lowest :func:`~adaptive_cnn.design.designer.loss_of` (the most accurate
    within the budget, or the least energy at ``min_accuracy``), then the least energy.
    """
    start = clock()
    rows = {a: _stage_row(p, labels, config.metric) for a, p in val_probs.items()}
    cloud = None
    if cloud_val_probs is not None:
        cloud = _stage_row(cloud_val_probs, labels, config.metric)
    cascades = admissible_cascades(list(val_probs), costs, config)

    def data_of(stages: tuple[str, ...]) -> CascadeData:
        return _stack([rows[a] for a in stages] + ([cloud] if cloud is not None else []))

    bounded: list[tuple[float, int, tuple[str, ...]]] = []
    for i, stages in enumerate(cascades):
        bound = _bound(data_of(stages), costs.stage_costs(stages), config)
        if bound is not None:
            bounded.append((bound, i, stages))
    bounded.sort()
    best: Combination | None = None
    scored = 0
    for bound, _, stages in bounded:
        if best is not None and bound > _key(best, config):
            break  # sorted: no remaining cascade can beat the best one
        scored += 1
        candidate = _score(stages, data_of(stages), costs, config)
        if constraint_violation(candidate.val_metrics, config) > 0:
            continue
        if best is None or _rank(candidate) < _rank(best):
            best = candidate
    names = tuple(sorted(set(val_probs), key=lambda a: (costs.local(a).energy_mj, a)))
    return CombinationSearch(names, len(cascades), scored, clock() - start, best)


def _stage_row(probs: np.ndarray, labels: np.ndarray, metric: str) -> CascadeData:
    return CascadeData.from_probs([probs], labels, metric)


def _stack(rows: list[CascadeData]) -> CascadeData:
    return CascadeData(
        np.vstack([r.confidence for r in rows]),
        np.vstack([r.correct for r in rows]),
        rows[0].metric,
    )


def _bound(data: CascadeData, stage_costs, config: DesignConfig) -> float | None:
    """The cascade's best possible key (lower is better), or None when no thresholds can
    meet the accuracy floor."""
    if config.min_accuracy is not None:
        reach = oracle(data, stage_costs, min_accuracy=config.min_accuracy)
        if reach.accuracy < config.min_accuracy - 1e-12:
            return None
        return reach.energy_mj
    return -oracle(data, stage_costs, budget_mj=config.budget_mj).accuracy


def _key(c: Combination, config: DesignConfig) -> float:
    """What the bound is compared with: energy at a floor, else minus accuracy."""
    m = c.val_metrics
    return m["energy_mj"] if config.min_accuracy is not None else -m["accuracy"]


def _rank(c: Combination) -> tuple[float, float, int]:
    return (c.loss, c.val_metrics["energy_mj"], len(c.stages))


def _score(
    stages: tuple[str, ...], data: CascadeData, costs: CostModel, config: DesignConfig
) -> Combination:
    stage_costs = costs.stage_costs(stages)
    thresholds = solve_thresholds(data, stage_costs, config)
    metrics = evaluate(data, stage_costs, np.asarray(thresholds, dtype=float)).metrics_at(0)
    return Combination(
        stages, tuple(float(t) for t in thresholds), metrics, loss_of(metrics, config)
    )
