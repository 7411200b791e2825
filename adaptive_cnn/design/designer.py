"""The Designer: an ask/tell search over cascades, journalled so that it can resume.

Each step asks the backend for a point, decodes it into local-stage architectures (and,
in joint mode, thresholds), trains every local network through the training cache with
the proxy budget, evaluates the cascade exactly on the validation split with ``selector``
and tells the backend the loss. Every finished evaluation is appended to
``RUN_DIR/journal.jsonl`` before the next starts; a resumed search re-tells the journal to
a fresh backend and continues with the next step, training nothing twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn.data.types import DatasetSplits
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.costs import CostModel
from adaptive_cnn.design.optimizers import (
    Backend,
    GaussianProcessBackend,
    NoFeasibleCandidate,
    RandomBackend,
)
from adaptive_cnn.design.space import Candidate, CascadeSpace
from adaptive_cnn.errors import AcnnError
from adaptive_cnn.training import TrainConfig, TrainingCache, TrainResult, train
from energy_models.profile_store import append_record, read_records
from selector import CascadeData, StageCosts, evaluate, optimise_thresholds

JOURNAL = "journal.jsonl"
ENERGY_TOLERANCE = 1e-9  # relative slack when comparing an energy with the budget


class DesignError(AcnnError):
    """The search cannot give a design (impossible budget, no feasible evaluation)."""


@dataclass(frozen=True)
class Evaluation:
    """One finished step of the search (a journal line)."""

    index: int
    point: list[Any]
    stages: tuple[str, ...]
    thresholds: tuple[float, ...]
    predicted_stage_energy_mj: tuple[float, ...]
    metrics: dict[str, Any]
    feasible: bool
    loss: float
    screened: str | None
    seconds: float

    def to_record(self) -> dict[str, Any]:
        return {
            "id": str(self.index),
            "index": self.index,
            "point": self.point,
            "stages": list(self.stages),
            "thresholds": list(self.thresholds),
            "predicted_stage_energy_mj": list(self.predicted_stage_energy_mj),
            "metrics": self.metrics,
            "feasible": self.feasible,
            "loss": self.loss,
            "screened": self.screened,
            "seconds": self.seconds,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Evaluation:
        return cls(
            index=int(r["index"]),
            point=list(r["point"]),
            stages=tuple(r["stages"]),
            thresholds=tuple(float(t) for t in r["thresholds"]),
            predicted_stage_energy_mj=tuple(r["predicted_stage_energy_mj"]),
            metrics=dict(r["metrics"]),
            feasible=bool(r["feasible"]),
            loss=float(r["loss"]),
            screened=r.get("screened"),
            seconds=float(r["seconds"]),
        )


def constraint_violation(metrics: dict[str, Any], config: DesignConfig) -> float:
    """Relative amount by which the metrics break the constraints (0 when feasible)."""
    violation = 0.0
    if config.budget_mj is not None:
        excess = metrics["energy_mj"] / config.budget_mj - 1.0
        violation += max(0.0, excess - ENERGY_TOLERANCE)
    if config.max_bytes is not None:
        violation += max(0.0, metrics["bytes_per_image"] - config.max_bytes) / max(
            config.max_bytes, 1.0
        )
    if config.min_accuracy is not None:
        violation += max(0.0, config.min_accuracy - metrics["accuracy"])
    return violation


def solve_thresholds(data: CascadeData, costs: StageCosts, config: DesignConfig) -> tuple:
    """Thresholds best meeting the configuration's objective and constraints (selector)."""
    return optimise_thresholds(
        data,
        costs,
        budget_mj=config.budget_mj,
        max_bytes=config.max_bytes,
        min_accuracy=config.min_accuracy,
    ).thresholds


def loss_of(metrics: dict[str, Any], config: DesignConfig) -> float:
    """Lower is better: minus accuracy (or log energy) when feasible, a penalty otherwise."""
    violation = constraint_violation(metrics, config)
    if config.min_accuracy is not None:
        base = math.log(max(metrics["energy_mj"], 1e-12))
        return base if violation == 0 else base + 100.0 + violation
    return -metrics["accuracy"] if violation == 0 else 1.0 + violation


class Designer:
    """Searches cascade designs for one dataset, device and configuration.

    Args:
        config: the resolved settings.
        dataset: the dataset splits (validation drives the search; test is untouched).
        costs: predicted stage costs and the a-priori screen.
        cache: the training cache.
        run_dir: where the journal and results go.
        progress: called with (step, total, message) after each evaluation.
    """

    def __init__(
        self,
        config: DesignConfig,
        dataset: DatasetSplits,
        costs: CostModel,
        cache: TrainingCache | None,
        run_dir: Path,
        progress: Callable[[int, int, str], Any] | None = None,
    ) -> None:
        self.config, self.dataset, self.costs, self.cache = config, dataset, costs, cache
        self.run_dir, self.progress = Path(run_dir), progress
        n_stages = config.local_stages + (1 if config.has_cloud else 0)
        self.space = CascadeSpace(
            config.stage_families, n_stages - 1 if config.mode == "joint" else 0
        )
        self.backend = self._backend()
        self.evaluations: list[Evaluation] = []
        self._cloud_probs: np.ndarray | None = None

    # --- search --------------------------------------------------------------------

    def _backend(self) -> Backend:
        screen = self._screen if self.config.strategy != "bo-unaware" else None
        if self.config.strategy == "random":
            return RandomBackend(self.space, self.config.seed)
        return GaussianProcessBackend(
            self.space,
            self.config.seed,
            self.config.initial_points,
            self.config.candidates,
            screen,
        )

    def _screen(self, point: list[Any]) -> bool:
        return self.costs.screen(self.space.decode(point).stages, self.config.budget_mj) is None

    def resume(self) -> int:
        """Re-tell the journal's evaluations to the backend; returns how many."""
        for record in sorted(read_records(self.run_dir / JOURNAL), key=lambda r: r["index"]):
            evaluation = Evaluation.from_record(record)
            self.backend.tell(evaluation.point, evaluation.loss)
            self.evaluations.append(evaluation)
        return len(self.evaluations)

    def check_budget(self, probes: int = 300) -> None:
        """Fail fast when no random design's first stage fits the budget.

        Raises:
            DesignError: none of ``probes`` seeded random designs passes the screen.
        """
        rng = np.random.default_rng([self.config.seed, 999])
        cheapest = float("inf")
        for _ in range(probes):
            stages = self.space.decode(self.space.sample(rng)).stages
            if self.costs.screen(stages, self.config.budget_mj) is None:
                return
            cheapest = min(cheapest, self.costs.local(stages[0]).energy_mj)
        raise DesignError(
            f"no design can meet the {self.config.budget_mj:g} mJ budget: the first stage "
            f"alone needs more (the cheapest of {probes} sampled networks needs "
            f"{cheapest:.3g} mJ on {self.costs.device.name}); raise --budget"
        )

    def run(self, deadline: float | None = None) -> list[Evaluation]:
        """Evaluate until ``config.trials`` evaluations exist (or the deadline passes)."""
        if len(self.evaluations) < self.config.trials:
            self.check_budget()
        while len(self.evaluations) < self.config.trials:
            if deadline is not None and time.monotonic() >= deadline:
                break
            point = self.space.canonical(self._ask())
            evaluation = self.evaluate_point(len(self.evaluations), point)
            append_record(self.run_dir / JOURNAL, evaluation.to_record())
            self.backend.tell(point, evaluation.loss)
            self.evaluations.append(evaluation)
            if self.progress:
                self.progress(len(self.evaluations), self.config.trials, _describe(evaluation))
        return self.evaluations

    def _ask(self) -> list[Any]:
        try:
            return self.backend.ask()
        except NoFeasibleCandidate as exc:
            raise DesignError(
                f"no candidate passed the a-priori screen in {exc}; the budget "
                f"{self.config.budget_mj:g} mJ leaves almost no designs: raise --budget"
            ) from exc

    # --- one evaluation ------------------------------------------------------------

    def proxy_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.config.proxy_epochs, subset=self.config.proxy_subset)

    def final_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.config.final_epochs)

    def stage_probs(self, stages: Sequence[str], config: TrainConfig, split: str) -> list:
        """Probabilities of each local stage (trained through the cache), then the cloud."""
        probs = []
        for arch in stages:
            result = train(
                arch,
                self.dataset,
                config,
                self.config.seed,
                threads=self.config.threads,
                cache=self.cache,
            )
            probs.append(result.val_probs if split == "val" else result.test_probs)
        if self.config.has_cloud:
            probs.append(self.cloud_probs(split))
        return probs

    def cloud_result(self) -> TrainResult:
        """The cloud model (trained once with ``cloud_epochs``, then cached)."""
        return train(
            self.config.cloud_arch,
            self.dataset,
            TrainConfig(epochs=self.config.cloud_epochs),
            self.config.seed,
            threads=self.config.threads,
            cache=self.cache,
        )

    def cloud_probs(self, split: str) -> np.ndarray:
        """The cloud model's probabilities on ``split`` (val or test)."""
        result = self.cloud_result()
        return result.val_probs if split == "val" else result.test_probs

    def evaluate_point(self, index: int, point: list[Any]) -> Evaluation:
        """Train the candidate's networks (proxy budget) and evaluate its cascade."""
        start = time.monotonic()
        candidate = self.space.decode(point)
        predicted = tuple(self.costs.local(a).energy_mj for a in candidate.stages)
        screened = self.costs.screen(candidate.stages, self.config.budget_mj)
        probs = self.stage_probs(candidate.stages, self.proxy_config(), "val")
        thresholds, metrics = self.cascade_metrics(candidate, probs, self.dataset.val.labels)
        return Evaluation(
            index=index,
            point=point,
            stages=candidate.stages,
            thresholds=thresholds,
            predicted_stage_energy_mj=predicted,
            metrics=metrics,
            feasible=constraint_violation(metrics, self.config) == 0,
            loss=loss_of(metrics, self.config),
            screened=screened,
            seconds=time.monotonic() - start,
        )

    def cascade_metrics(
        self, candidate: Candidate, probs: list[np.ndarray], labels: np.ndarray
    ) -> tuple[tuple[float, ...], dict[str, Any]]:
        """Thresholds (the candidate's in joint mode, else solved) and the cascade's metrics."""
        data = CascadeData.from_probs(probs, labels, self.config.metric)
        costs = self.costs.stage_costs(candidate.stages)
        thresholds = candidate.thresholds
        if thresholds is None:
            thresholds = solve_thresholds(data, costs, self.config)
        metrics = evaluate(data, costs, np.asarray(thresholds, dtype=float)).metrics_at(0)
        return tuple(float(t) for t in thresholds), metrics

    # --- results -------------------------------------------------------------------

    def best(self) -> Evaluation:
        """The feasible evaluation with the lowest loss."""
        feasible = [e for e in self.evaluations if e.feasible]
        if not feasible:
            raise DesignError(
                f"none of {len(self.evaluations)} evaluated designs meets the constraints "
                f"(budget {self.config.budget_mj} mJ); raise the budget or search longer"
            )
        return min(feasible, key=lambda e: (e.loss, e.index))

    @property
    def trained_infeasible(self) -> int:
        """Evaluations that were trained and turned out infeasible."""
        return sum(not e.feasible for e in self.evaluations)


def _describe(e: Evaluation) -> str:
    m = e.metrics
    flag = "ok" if e.feasible else "infeasible"
    return f"acc {m['accuracy']:.4f} energy {m['energy_mj']:.3g} mJ {flag}"
