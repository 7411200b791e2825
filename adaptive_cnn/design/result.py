"""The chosen design: full training, one test evaluation, and the run folder's files.

The best few feasible evaluations are retrained with the final budget and the best of them
on validation is chosen (:mod:`adaptive_cnn.design.final_choice`); its thresholds are
solved again on the validation split with those networks (the same constraints), and the
test split is evaluated once, here, for the first time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn.design.baselines import baseline_archs, evaluate_baselines, solve_and_test
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.context import RunContext
from adaptive_cnn.design.costs import predictor_identity
from adaptive_cnn.design.designer import Designer, Evaluation
from adaptive_cnn.design.final_choice import FinalCandidate, FinalChoice, choose_final
from adaptive_cnn.design.frontier import design_frontier
from adaptive_cnn.design.time_budget import Deadline
from adaptive_cnn.run_folder import (
    CLOUD_WEIGHTS,
    write_frontier_weights,
    write_run,
    write_weights,
)
from selector import CascadeData, ExitPolicy, oracle, pareto_front


@dataclass(frozen=True)
class DesignResult:
    """A finished design: what ``acnn design --json`` prints, and its run folder.

    Attributes:
        summary: the run folder's ``result.json`` (stages, thresholds, test and
            validation figures, baselines, the resolved config).
        run_dir: the run folder.
    """

    summary: dict[str, Any]
    run_dir: Path

    @property
    def stages(self) -> list[str]:
        """The architecture of each stage, the cloud's last if any."""
        return [s["arch"] for s in self.summary["stages"]]

    @property
    def test_accuracy(self) -> float:
        return float(self.summary["test_accuracy"])

    @property
    def energy_mj(self) -> float:
        """Device energy per image on the test split (``energy_source`` says whether it is
        estimated from a declared power model or predicted from measured power)."""
        return float(self.summary["energy_mj"])


def finalise(
    designer: Designer,
    baselines: bool = True,
    say: Callable[[str], None] | None = None,
    deadline: Deadline | None = None,
) -> DesignResult:
    """Train the best design fully, evaluate it on test once, write the run folder.

    With ``baselines``, the fixed systems of :mod:`adaptive_cnn.design.baselines` are
    trained and tested the same way and reported beside the design. ``say`` hears the
    progress of the final trainings. With a ``deadline``, re-ranking trains only the
    designs whose estimated final training (and the baselines') still fits; the skipped
    ones are listed in the result (``rerank_skipped``).
    """
    choice = choose_final(designer, say, deadline, trained_after_choice(designer.config, baselines))
    extra: dict[str, Any] = {"rerank_skipped": [c.to_row() for c in choice.skipped]}
    if choice.combination is not None:
        extra["combination"] = {**choice.combination.to_dict(), "promoted": list(choice.promoted)}
    if choice.pool:
        extra["frontier"] = _frontier(designer, choice, say)
    return write_design(
        designer.context,
        choice.best,
        choice.ranked,
        designer.evaluations,
        designer.trained_infeasible,
        baselines,
        extra,
    )


def _frontier(
    designer: Designer, choice: FinalChoice, say: Callable[[str], None] | None
) -> list[dict[str, Any]]:
    """The frontier across budgets of every network the choice trained fully, as the run
    folder's rows (its networks' weights written under ``frontier/``)."""
    context, config = designer.context, designer.config
    started = time.monotonic()
    cloud = None
    if config.has_cloud:
        cloud = (context.cloud_probs("val"), context.cloud_probs("test"))
    points = design_frontier(
        {a: r.val_probs for a, r in choice.pool.items()},
        {a: r.test_probs for a, r in choice.pool.items()},
        context.dataset.val.labels,
        context.dataset.test.labels,
        context.costs,
        config,
        cloud,
    )
    used = {a for p in points for a in p.stages}
    paths = write_frontier_weights(context.run_dir, {a: choice.pool[a].state_dict for a in used})
    if say:
        say(
            f"frontier: {len(points)} designs from {len(choice.pool)} fully trained networks "
            f"across budgets, in {time.monotonic() - started:.1f} s (no training)"
        )
    return [{**p.to_row(), "weights": " | ".join(paths[a] for a in p.stages)} for p in points]


def trained_after_choice(config: DesignConfig, baselines: bool) -> list[str]:
    """The networks :func:`finalise` trains after the shortlist: the hand-picked
    references, combined with the shortlist's networks and, with ``baselines``, tested
    as the baselines (trained either way, so ``baselines`` does not change the design)."""
    return baseline_archs(config.baseline_family)


def write_design(
    context: RunContext,
    chosen: FinalCandidate,
    ranked: list[FinalCandidate],
    evaluations: list[Evaluation],
    trained_infeasible: int,
    baselines: bool = True,
    extra: dict[str, Any] | None = None,
) -> DesignResult:
    """Evaluate a chosen design (networks trained with the final budget) on test once and
    write the run folder; :func:`finalise` for BO, the single-path design likewise.

    Args:
        context: the run's settings, data, costs, cache and folder.
        chosen: the design and its final-budget networks.
        ranked: every design trained at the final budget to choose it.
        evaluations: every design the search evaluated (its journal).
        trained_infeasible: how many of them were trained and broke a budget.
        baselines: also train and test the fixed baselines.
        extra: method-specific entries added to the summary.
    """
    config, run_dir = context.config, context.run_dir
    results = list(chosen.results)
    val = [r.val_probs for r in results]
    test = [r.test_probs for r in results]
    if config.has_cloud:
        val.append(context.cloud_probs("val"))
        test.append(context.cloud_probs("test"))
    costs = context.costs.stage_costs(chosen.stages)
    thresholds, val_metrics, test_metrics = solve_and_test(context, val, test, costs)
    test_data = CascadeData.from_probs(test, context.dataset.test.labels, config.metric)
    bound = oracle(test_data, costs)
    cloud_state = context.cloud_result().state_dict if config.has_cloud else None
    write_weights(run_dir, [r.state_dict for r in results], cloud_state)
    summary = _summary(context, chosen, thresholds, val_metrics, test_metrics, bound)
    summary["evaluations"] = len(evaluations)
    summary["trained_infeasible"] = trained_infeasible
    summary["reranked"] = [c.to_row() for c in ranked]
    summary["baselines"] = evaluate_baselines(context) if baselines else []
    summary.update(extra or {})
    _write_files(run_dir, evaluations, summary)
    return DesignResult(summary, run_dir)


def _summary(context, chosen: FinalCandidate, thresholds, val_metrics, test_metrics, bound):
    config, costs = context.config, context.costs
    stages = []
    for i, (arch, result) in enumerate(zip(chosen.stages, chosen.results, strict=True), start=1):
        local = costs.local(arch)
        stages.append(
            {
                "arch": arch,
                "where": "device",
                "weights": f"stage{i}.pt",
                "energy_mj": local.energy_mj,
                "latency_ms": local.latency_ms,
                "memory_bytes": local.memory_bytes,
                "params": local.params,
                "macs": local.macs,
                "val_accuracy": result.val_accuracy,
                "test_accuracy": result.test_accuracy,
            }
        )
    if config.has_cloud:
        energy, latency, payload = costs.cloud()
        stages.append(
            {
                "arch": config.cloud_arch,
                "where": f"cloud over {config.link}",
                "weights": CLOUD_WEIGHTS,
                "energy_mj": energy,
                "latency_ms": latency,
                "payload_bytes": payload,
            }
        )
    return {
        "method": config.method,
        "energy_mj": test_metrics["energy_mj"],
        # the budget binds on validation, where the thresholds were chosen; the test
        # split's exits differ by sampling, so its energy may lie slightly above
        "val_energy_mj": val_metrics["energy_mj"],
        "budget_mj": config.budget_mj,
        "min_accuracy": config.min_accuracy,
        "test_accuracy": test_metrics["accuracy"],
        "val_accuracy": val_metrics["accuracy"],
        "offload_rate": test_metrics["offload_rate"],
        "bytes_per_image": test_metrics["bytes_per_image"],
        "latency_ms": test_metrics["latency_ms"],
        "exit_fractions": test_metrics["exit_fractions"],
        "stages": stages,
        "thresholds": list(thresholds),
        "policy": ExitPolicy(tuple(thresholds), config.metric).to_dict(),
        "oracle": {"test_accuracy": bound.accuracy, "energy_mj": bound.energy_mj},
        "evaluations": 0,  # the search's figures, set by write_design
        "trained_infeasible": 0,
        # the search's evaluation the design re-ranks; None when combining won
        "best_evaluation": chosen.evaluation.index if chosen.evaluation else None,
        "search_val_accuracy": (
            chosen.evaluation.metrics["accuracy"] if chosen.evaluation else None
        ),
        "found_by": chosen.found_by,
        "energy_source": "estimated" if costs.estimated else "measured",
        "energy_note": costs.predictor.source,
        "link": config.link,
        "cloud_latency_ms": config.cloud_latency_ms,
        "device": costs.device.name,
        "pricing": {
            "runtime": costs.predictor.runtime,
            "threads": costs.predictor.threads,
            "predictor": predictor_identity(costs.predictor, context.predictor_path),
        },
        "input": {
            "dataset": context.dataset.name,
            "shape": list(context.dataset.input_shape),
            "num_classes": context.dataset.num_classes,
            "class_names": list(context.dataset.class_names),
            "preprocessing": context.dataset.preprocessing.to_dict(),
        },
        "config": config.to_dict(),
    }


def _write_files(run_dir: Path, evaluations: list[Evaluation], summary: dict[str, Any]) -> None:
    rows = [_search_row(e) for e in evaluations]
    energy = np.asarray([e.metrics["energy_mj"] for e in evaluations])
    acc = np.asarray([e.metrics["accuracy"] for e in evaluations])
    sent = np.asarray([e.metrics["bytes_per_image"] for e in evaluations])
    front = pareto_front(energy, acc, sent) if len(rows) else []
    pareto = [rows[i] for i in front]
    write_run(
        run_dir,
        summary,
        search_rows=rows,
        pareto_rows=pareto,
        baseline_rows=summary["baselines"],
        frontier_rows=summary.get("frontier", []),
    )


def _search_row(e: Evaluation) -> dict[str, Any]:
    m = e.metrics
    return {
        "index": e.index,
        "stages": " | ".join(e.stages),
        "thresholds": " ".join(f"{t:.4f}" for t in e.thresholds),
        "val_accuracy": m["accuracy"],
        "energy_mj": m["energy_mj"],
        "bytes_per_image": m["bytes_per_image"],
        "offload_rate": m["offload_rate"],
        "feasible": e.feasible,
        "screened": e.screened or "",
        "seconds": round(e.seconds, 2),
    }
