"""Baselines in the same harness as the design: fixed systems, trained and tested alike.

- ``single:<ref>``: one local network of the family (its small/medium/large reference);
- ``big/little``: the fixed hand-picked pair small -> large (prior work that treats CNNs
  as black boxes), thresholds solved on validation under the same constraints;
- ``all-local-largest``: the large reference alone;
- ``all-cloud``: every image sent to the cloud model over the design's link.

Every baseline's networks get the final training budget, thresholds are chosen on the
validation split, and the test split is evaluated once, like the chosen design.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_cnn.design.context import RunContext
from adaptive_cnn.design.designer import constraint_violation, solve_thresholds
from adaptive_cnn.networks import get_family
from selector import CascadeData, StageCosts, evaluate


def solve_and_test(
    context: RunContext,
    val: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    costs: StageCosts,
    thresholds: Sequence[float] | None = None,
) -> tuple[tuple[float, ...], dict[str, Any], dict[str, Any]]:
    """Thresholds solved on validation (unless given), then validation and test metrics."""
    config, data = context.config, context.dataset
    val_data = CascadeData.from_probs(list(val), data.val.labels, config.metric)
    if thresholds is None:
        thresholds = solve_thresholds(val_data, costs, config)
    chosen = np.asarray(thresholds, dtype=float)
    test_data = CascadeData.from_probs(list(test), data.test.labels, config.metric)
    val_metrics = evaluate(val_data, costs, chosen).metrics_at(0)
    test_metrics = evaluate(test_data, costs, chosen).metrics_at(0)
    return tuple(float(t) for t in chosen), val_metrics, test_metrics


def baseline_systems(family: str) -> dict[str, tuple[list[str], bool]]:
    """Name -> (local stage architectures, uses the cloud) of every baseline."""
    refs = {k: f"{family}:{a.to_str()}" for k, a in get_family(family).references().items()}
    systems: dict[str, tuple[list[str], bool]] = {
        f"single:{name}": ([arch], False) for name, arch in refs.items()
    }
    systems["big/little"] = ([refs["small"], refs["large"]], False)
    systems["all-local-largest"] = ([refs["large"]], False)
    systems["all-cloud"] = ([], True)
    return systems


def baseline_archs(family: str) -> list[str]:
    """The local networks the baselines train (each once)."""
    return sorted({a for stages, _ in baseline_systems(family).values() for a in stages})


def evaluate_baselines(context: RunContext) -> list[dict[str, Any]]:
    """Train, solve and test every baseline; one row each."""
    config = context.config
    local_costs = context.local_costs()
    rows = []
    for name, (stages, cloud) in baseline_systems(config.baseline_family).items():
        if cloud and not config.has_cloud:
            continue
        results = [context.train_final(a) for a in stages]
        val = [r.val_probs for r in results]
        test = [r.test_probs for r in results]
        model = context.costs if cloud else local_costs
        if cloud:
            val, test = [context.cloud_probs("val")], [context.cloud_probs("test")]
            e, t, b = context.costs.cloud()
            costs = StageCosts(
                np.asarray([e]), np.asarray([t]), np.asarray([b]), np.asarray([True])
            )
        else:
            costs = model.stage_costs(stages)
        thresholds, val_m, test_m = solve_and_test(context, val, test, costs)
        rows.append(
            {
                "system": name,
                "stages": " | ".join(stages) if stages else config.cloud_arch + " (cloud)",
                "thresholds": list(thresholds),
                "val_accuracy": val_m["accuracy"],
                "test_accuracy": test_m["accuracy"],
                "energy_mj": test_m["energy_mj"],
                "bytes_per_image": test_m["bytes_per_image"],
                "offload_rate": test_m["offload_rate"],
                "feasible_on_val": constraint_violation(val_m, config) == 0,
            }
        )
    return rows
