"""The Designer: an ask/tell search over cascades, journalled so that it can resume.

Each step asks the backend for a point, decodes it into local-stage architectures (and,
in joint mode, thresholds), trains every local network through the training cache with
the proxy budget (on an executor: in-process, local processes or Dask workers), evaluates
the cascade exactly on the validation split with ``selector`` and tells the backend the
loss. Every finished evaluation is appended to ``RUN_DIR/journal.jsonl`` as soon as it
finishes; a resumed search re-tells the journal to a fresh backend and continues, training
nothing twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_cnn.design import journal
from adaptive_cnn.design.config import BOSettings, DesignConfig
from adaptive_cnn.design.context import RunContext
from adaptive_cnn.design.executors import (
    ExecutorPlan,
    InlineExecutor,
    JobResult,
    TrainingJob,
    remember_dataset,
    run_training_job,
)
from adaptive_cnn.design.optimizers import (
    Backend,
    GaussianProcessBackend,
    NoFeasibleCandidate,
    RandomBackend,
)
from adaptive_cnn.design.space import Candidate, CascadeSpace
from adaptive_cnn.design.time_budget import Deadline, TimeEstimate
from adaptive_cnn.errors import AcnnError
from adaptive_cnn.training import TrainConfig, TrainResult, is_trained
from selector import CascadeData, StageCosts, evaluate, optimise_thresholds

JOURNAL = journal.JOURNAL
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
    worker: str = ""
    train_seconds: tuple[float, ...] = ()  # per searched stage; () in older journals

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
            "worker": self.worker,
            "train_seconds": list(self.train_seconds),
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
            worker=str(r.get("worker", "")),
            train_seconds=tuple(float(s) for s in r.get("train_seconds", ())),
        )


def constraint_violation(
    metrics: dict[str, Any], config: DesignConfig, *, accuracy: bool = True
) -> float:
    """Relative amount by which the metrics break the constraints (0 when feasible);
    ``accuracy=False`` leaves ``min_accuracy`` out (the constraint proxy training
    cannot judge: it underestimates the accuracy of the fully trained networks)."""
    violation = 0.0
    if config.budget_mj is not None:
        excess = metrics["energy_mj"] / config.budget_mj - 1.0
        violation += max(0.0, excess - ENERGY_TOLERANCE)
    if config.max_bytes is not None:
        violation += max(0.0, metrics["bytes_per_image"] - config.max_bytes) / max(
            config.max_bytes, 1.0
        )
    if accuracy and config.min_accuracy is not None:
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
    """Lower is better: minus accuracy (or log energy) when feasible; otherwise a penalty
    above every feasible loss that grows with the violation (the least short first)."""
    violation = constraint_violation(metrics, config)
    if config.min_accuracy is not None:
        # log energy of a feasible design lies within (-28, 28): 1e-12 .. 1e12 mJ
        return math.log(max(metrics["energy_mj"], 1e-12)) if violation == 0 else 100.0 + violation
    return -metrics["accuracy"] if violation == 0 else 1.0 + violation


class Designer:
    """Searches cascade designs (``method: bo``) for one run.

    Args:
        context: the run's data, costs, cache and folder (:func:`open_run`); its
            ``config.search`` holds the :class:`BOSettings`.
        progress: called with (step, total, message) after each evaluation.
    """

    def __init__(
        self,
        context: RunContext,
        progress: Callable[[int, int, str], Any] | None = None,
    ) -> None:
        config = context.config
        if not isinstance(config.search, BOSettings):
            raise DesignError(f"the Designer searches --method bo, not {config.method}")
        self.context, self.config, self.search = context, config, config.search
        self.dataset, self.costs, self.cache = context.dataset, context.costs, context.cache
        self.run_dir, self.progress = context.run_dir, progress
        n_stages = config.local_stages + (1 if config.has_cloud else 0)
        fixed = (self.search.last_stage,) if self.search.last_stage is not None else ()
        self.space = CascadeSpace(
            config.stage_families[: config.local_stages - len(fixed)],
            n_stages - 1 if self.search.mode == "joint" else 0,
            fixed,
        )
        self.backend = self._backend()
        self.seed_points = self._seed_points()
        self.evaluations: list[Evaluation] = []
        self._fixed: tuple[TrainResult, ...] | None = None  # read from the cache once

    # --- search --------------------------------------------------------------------

    def _backend(self) -> Backend:
        screen = self._screen if self.search.strategy != "bo-unaware" else None
        if self.search.strategy == "random":
            return RandomBackend(self.space, self.config.seed)
        return GaussianProcessBackend(
            self.space,
            self.config.seed,
            self.search.initial_points,
            self.search.candidates,
            screen,
        )

    def _seed_points(self) -> list[list[Any]]:
        """The hand-picked reference cascades the search starts from (screened if aware)."""
        if not self.search.reference_seeds:
            return []
        points = self.space.reference_cascades()
        if self.search.strategy == "bo-unaware":
            return points
        return [p for p in points if self._screen(p)]

    def _screen(self, point: list[Any]) -> bool:
        return self.costs.screen(self.space.decode(point).stages, self.config.budget_mj) is None

    def resume(self) -> int:
        """Re-tell the journal's evaluations to the backend; returns how many.

        Each loss is recomputed from the journalled metrics, so a journal written under an
        older loss rule resumes consistently with the evaluations still to come.
        """
        for record in journal.records(self.run_dir):
            evaluation = Evaluation.from_record(record)
            evaluation = dataclasses.replace(
                evaluation, loss=loss_of(evaluation.metrics, self.config)
            )
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

    def run(
        self,
        deadline: Deadline | None = None,
        plan: ExecutorPlan | None = None,
        reserve_s: Callable[[], float] | None = None,
    ) -> list[Evaluation]:
        """Evaluate until ``config.trials`` evaluations exist (or time runs out).

        Up to ``plan.workers`` candidates train at once on ``plan.executor`` (in-process,
        one at a time, by default); each is journalled and told as soon as it finishes.
        A new candidate starts only while ``reserve_s()`` (the estimated seconds of what
        must follow the search, asked afresh each time) still fits before ``deadline``;
        what is running is finished.
        """
        plan = plan or ExecutorPlan(InlineExecutor(), 1, self.config.threads, "in-process")
        if len(self.evaluations) < self.search.trials:
            self.check_budget()
        remember_dataset(self._dataset_key, self.dataset)
        next_index = max((e.index for e in self.evaluations), default=-1) + 1
        running: dict[Future, tuple[int, list[Any]]] = {}

        def time_left() -> bool:  # the first evaluation always runs: else no design at all
            if deadline is None or not (self.evaluations or running):
                return True
            return deadline.fits(reserve_s() if reserve_s else 0.0)

        try:
            while True:
                while (
                    len(running) < plan.workers
                    and len(self.evaluations) + len(running) < self.search.trials
                    and time_left()
                ):
                    pending = [point for _, point in running.values()]
                    point = self.space.canonical(self._ask(next_index, pending))
                    job = self.training_job(point, self.proxy_config(), plan.threads)
                    running[plan.executor.submit(run_training_job, job)] = (next_index, point)
                    next_index += 1
                if not running:
                    return self.evaluations
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f][0]):
                    self._record(*running.pop(future), future.result())
        finally:
            for future in running:
                future.cancel()

    def _record(self, index: int, point: list[Any], result: JobResult) -> None:
        evaluation = self.finish_evaluation(index, point, result)
        journal.append(self.run_dir, evaluation.to_record())
        self.backend.tell(point, evaluation.loss)
        self.evaluations.append(evaluation)
        if self.progress:
            self.progress(len(self.evaluations), self.search.trials, _describe(evaluation))

    def _ask(self, step: int, pending: list[list[Any]]) -> list[Any]:
        if step < len(self.seed_points):
            return self.seed_points[step]
        try:
            return self.backend.ask(step, pending)
        except NoFeasibleCandidate as exc:
            raise DesignError(
                f"no candidate passed the a-priori screen in {exc}; the budget "
                f"{self.config.budget_mj:g} mJ leaves almost no designs: raise --budget"
            ) from exc

    # --- one evaluation ------------------------------------------------------------

    @property
    def _dataset_key(self) -> tuple[str, str | None, int]:
        return (self.config.dataset, self.config.data_dir, self.config.split_seed)

    def training_job(
        self, point: list[Any], config: TrainConfig, threads: int | None
    ) -> TrainingJob:
        """The job that trains the local networks of ``point`` (in any worker)."""
        searched = self.space.decode(point).stages[: len(self.space.families)]
        return TrainingJob(
            archs=searched,  # the fixed stages are trained once, fully (fixed_results)
            dataset=self.config.dataset,
            data_dir=self.config.data_dir,
            split_seed=self.config.split_seed,
            config=config,
            seed=self.config.seed,
            threads=threads,
            cache_root=str(self.cache.root) if self.cache else None,
        )

    def proxy_config(self) -> TrainConfig:
        """The search's training budget; a subset as large as the training split is the
        whole split, so it names the same training (and cache entry) as no subset: with
        ``proxy_epochs == final_epochs`` re-ranking then trains nothing again."""
        subset = self.config.proxy_subset
        if subset is not None and subset >= len(self.dataset.train):
            subset = None
        return TrainConfig(epochs=self.search.proxy_epochs, subset=subset)

    def final_config(self) -> TrainConfig:
        return self.context.final_config()

    def time_estimate(self) -> TimeEstimate:
        """Final-training time estimates from this run's proxy trainings so far."""
        proxy_seconds: dict[str, float] = {}
        for e in self.evaluations:
            proxy_seconds.update(zip(e.stages, e.train_seconds, strict=False))
        return TimeEstimate.from_configs(
            proxy_seconds,
            self.proxy_config(),
            self.final_config(),
            len(self.dataset.train),
            lambda arch: is_trained(
                arch, self.dataset, self.final_config(), self.config.seed,
                threads=self.config.threads, cache=self.cache,
            ),
        )  # fmt: skip

    def fixed_results(self) -> tuple[TrainResult, ...]:
        """The fixed last stages (``--last-stage``), trained once with the final budget."""
        if self._fixed is None:
            self._fixed = tuple(self.context.train_final(arch) for arch in self.space.fixed)
        return self._fixed

    def cloud_probs(self, split: str) -> np.ndarray:
        """The cloud model's probabilities on ``split`` (val or test)."""
        return self.context.cloud_probs(split)

    def evaluate_point(self, index: int, point: list[Any]) -> Evaluation:
        """Train the candidate's networks (proxy budget) here and evaluate its cascade."""
        job = self.training_job(point, self.proxy_config(), self.config.threads)
        remember_dataset(self._dataset_key, self.dataset)
        return self.finish_evaluation(index, point, run_training_job(job))

    def finish_evaluation(self, index: int, point: list[Any], result: JobResult) -> Evaluation:
        """Evaluate the cascade of ``point`` from its trained stages' probabilities."""
        candidate = self.space.decode(point)
        predicted = tuple(self.costs.local(a).energy_mj for a in candidate.stages)
        probs = list(result.val_probs) + [r.val_probs for r in self.fixed_results()]
        if self.config.has_cloud:
            probs.append(self.cloud_probs("val"))
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
            screened=self.costs.screen(candidate.stages, self.config.budget_mj),
            seconds=result.seconds,
            worker=result.worker,
            train_seconds=result.train_seconds,
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
                f"({_constraints(self.config)}); relax them or search longer"
            )
        return min(feasible, key=lambda e: (e.loss, e.index))

    @property
    def trained_infeasible(self) -> int:
        """Evaluations that were trained and broke the energy budget or the bytes cap: the
        limits the a-priori screen is there to keep. A ``min_accuracy`` floor missed at
        proxy training is not counted (no screen can know accuracy before training)."""
        return sum(
            not e.feasible and constraint_violation(e.metrics, self.config, accuracy=False) > 0
            for e in self.evaluations
        )


def _constraints(config: DesignConfig) -> str:
    parts = [] if config.budget_mj is None else [f"budget {config.budget_mj:g} mJ"]
    if config.min_accuracy is not None:
        parts.append(f"min accuracy {config.min_accuracy:.2%}")
    if config.max_bytes is not None:
        parts.append(f"max {config.max_bytes:g} bytes per image")
    return ", ".join(parts)


def _describe(e: Evaluation) -> str:
    m = e.metrics
    flag = "ok" if e.feasible else "infeasible"
    return f"acc {m['accuracy']:.4f} energy {m['energy_mj']:.3g} mJ {flag}"
