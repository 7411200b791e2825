"""Combining a run's fully trained networks: exhaustive against brute force, bounded; the
frontier across budgets built from them, and the run folder that holds it."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import yaml

from adaptive_cnn.design import DesignConfig
from adaptive_cnn.design.combination import admissible_cascades, best_combination
from adaptive_cnn.design.costs import CostModel
from adaptive_cnn.design.designer import constraint_violation, loss_of, solve_thresholds
from adaptive_cnn.design.frontier import design_frontier, frontier_budgets
from adaptive_cnn.errors import RunFolderError
from adaptive_cnn.run_folder import load_run
from energy_models.devices import load_device
from energy_models.predictor import EnergyPredictor
from selector import CascadeData, evaluate

#: conv networks of growing predicted cost (closed-form predictor, 8x8 digits)
ARCHS = (
    "conv:c4k3p-fc16",
    "conv:c8k3p-fc32",
    "conv:c16k3p-c32k3p-fc64",
    "conv:c32k5p-c64k3p-fc128",
    "conv:bn-c32k3-c32k3p-c64k3p-c128k3p-fc256",
)


@pytest.fixture(scope="module")
def costs(design_predictor):
    predictor = EnergyPredictor.load(design_predictor)
    return CostModel(predictor, load_device("local"), "none", (1, 8, 8), 10, 0.0)


def _probs(rng, labels, accuracy, classes=10):
    """Probabilities right on about ``accuracy`` of the images, more confident when right."""
    n = len(labels)
    right = rng.random(n) < accuracy
    guess = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), guess] += np.where(right, 3.0, 1.0) + rng.normal(0, 1, n)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _brute_force(val, labels, costs, config):
    """Every admissible cascade scored: the best feasible by (loss, energy, stages)."""
    best = None
    for stages in admissible_cascades(list(val), costs, config):
        data = CascadeData.from_probs([val[a] for a in stages], labels, config.metric)
        stage_costs = costs.stage_costs(stages)
        thresholds = solve_thresholds(data, stage_costs, config)
        m = evaluate(data, stage_costs, np.asarray(thresholds, dtype=float)).metrics_at(0)
        if constraint_violation(m, config) > 0:
            continue
        key = (loss_of(m, config), m["energy_mj"], len(stages))
        if best is None or key < best[0]:
            best = (key, stages)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("objective", ["budget", "floor"])
def test_the_bounded_combination_finds_what_scoring_every_cascade_finds(costs, seed, objective):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 400)
    accuracies = (0.55, 0.65, 0.8, 0.86, 0.93)  # the costlier, the more accurate
    val = {a: _probs(rng, labels, acc) for a, acc in zip(ARCHS, accuracies, strict=True)}
    energies = [costs.local(a).energy_mj for a in ARCHS]
    assert energies == sorted(energies)  # the test's premise: costs grow along ARCHS
    settings = {"dataset": "digits", "link": "none", "local_stages": 3}
    if objective == "budget":
        config = DesignConfig.from_dict({**settings, "budget": f"{energies[3] * 0.9}mJ"})
    else:
        config = DesignConfig.from_dict({**settings, "budget": None, "min_accuracy": 0.86})
    found = best_combination(val, labels, costs, config)
    expected = _brute_force(val, labels, costs, config)
    assert found.best is not None and expected is not None
    key = (found.best.loss, found.best.val_metrics["energy_mj"], len(found.best.stages))
    assert key == pytest.approx(expected[0])
    assert found.admissible == len(admissible_cascades(list(val), costs, config))
    assert 0 < found.scored <= found.admissible
    row = found.to_dict()
    assert row["bounded_out"] == found.admissible - found.scored
    assert row["best"]["stages"] == list(found.best.stages)


def test_admissible_cascades_grow_in_cost_and_keep_the_budget(costs):
    budget = costs.local(ARCHS[2]).energy_mj  # the two costliest cannot come first
    config = DesignConfig.from_dict(
        {"dataset": "digits", "link": "none", "local_stages": 2, "budget": f"{budget}mJ"}
    )
    cascades = admissible_cascades(list(reversed(ARCHS)), costs, config)
    n = len(ARCHS)
    singles = [c for c in cascades if len(c) == 1]
    assert len(cascades) <= n + n * (n - 1) // 2
    for stages in cascades:
        energy = [costs.local(a).energy_mj for a in stages]
        assert energy == sorted(energy) and energy[0] <= config.budget_mj
    expected = sum(costs.local(a).energy_mj <= config.budget_mj for a in ARCHS)
    assert len(singles) == expected == 3
    pairs = {c for c in cascades if len(c) == 2}
    assert pairs == {
        p
        for p in itertools.combinations(ARCHS, 2)
        if costs.local(p[0]).energy_mj <= config.budget_mj
    }


def test_admissible_cascades_keep_the_fixed_last_stage_and_each_stage_s_family(costs):
    fixed = ARCHS[-1]
    config = DesignConfig.from_dict(
        {"dataset": "digits", "link": "none", "local_stages": 2, "budget": "1000mJ",
         "last_stage": fixed}
    )  # fmt: skip
    cascades = admissible_cascades(list(ARCHS), costs, config)
    assert cascades and all(c[-1] == fixed for c in cascades)
    mixed = DesignConfig.from_dict(
        {"dataset": "digits", "link": "none", "local_stages": 2, "budget": "1000mJ",
         "families": ["mlp", "conv"]}
    )  # fmt: skip
    archs = [*ARCHS, "mlp:fc16"]
    cascades = admissible_cascades(archs, costs, mixed)
    assert ("mlp:fc16",) not in cascades and (ARCHS[0],) in cascades  # one stage: conv's
    assert all(c[0].startswith("mlp:") for c in cascades if len(c) == 2)
    assert all(c[-1].startswith("conv:") for c in cascades)


def test_bounding_skips_cascades_that_cannot_win(costs):
    # one network right on every image: nothing can beat it, every other cascade with it
    # only adds cost, so scoring stops as soon as the bounds fall below it
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 300)
    val = {a: _probs(rng, labels, 0.5) for a in ARCHS[1:]}
    val[ARCHS[0]] = np.eye(10)[labels]
    budget = sum(costs.local(a).energy_mj for a in ARCHS)
    config = DesignConfig.from_dict(
        {"dataset": "digits", "link": "none", "local_stages": 3, "budget": f"{budget}mJ"}
    )
    found = best_combination(val, labels, costs, config)
    assert found.best.stages == (ARCHS[0],) and found.best.val_metrics["accuracy"] == 1.0
    assert found.scored < found.admissible


@pytest.mark.parametrize("seed", [0, 1])
def test_every_point_is_the_best_cascade_at_its_budget_and_none_is_dominated(costs, seed):
    rng = np.random.default_rng(seed)
    val_labels, test_labels = rng.integers(0, 10, 400), rng.integers(0, 10, 300)
    accuracies = (0.55, 0.65, 0.8, 0.86, 0.93)
    val = {a: _probs(rng, val_labels, x) for a, x in zip(ARCHS, accuracies, strict=True)}
    test = {a: _probs(rng, test_labels, x) for a, x in zip(ARCHS, accuracies, strict=True)}
    config = DesignConfig.from_dict(
        {"dataset": "digits", "link": "none", "local_stages": 2, "budget": "1mJ"}
    )
    points = design_frontier(val, test, val_labels, test_labels, costs, config, points=6)
    energies = [costs.local(a).energy_mj for a in ARCHS]
    assert frontier_budgets(energies, 6)[0] == pytest.approx(min(energies))
    assert frontier_budgets(energies, 6)[-1] == pytest.approx(max(energies))
    assert len(points) >= 2
    for p in points:
        assert p.val_energy_mj <= p.budget_mj * (1 + 1e-9)
        at = config.changed(budget_mj=p.budget_mj)
        best = best_combination(val, val_labels, costs, at).best
        assert (best.stages, best.thresholds) == (p.stages, p.thresholds)
        assert 0 <= p.test_accuracy <= 1 and p.test_energy_mj > 0
    for a, b in zip(points, points[1:], strict=False):  # cheapest first, each more accurate
        assert a.val_energy_mj <= b.val_energy_mj and a.val_accuracy < b.val_accuracy


def test_a_run_folder_holds_its_frontier_and_rejects_a_corrupt_one(runtime_run_dir, tmp_path):
    from adaptive_cnn.cli.design_command import format_result

    summary = json.loads((runtime_run_dir / "result.json").read_text())
    points = summary["frontier"]
    assert points and (runtime_run_dir / "frontier.csv").read_text().count("\n") == len(points) + 1
    assert all((runtime_run_dir / w).is_file() for p in points for w in p["weights"].split(" | "))
    frontier = yaml.safe_load((runtime_run_dir / "frontier.yaml").read_text())
    assert frontier == {"energy_source": summary["energy_source"], "points": points}
    assert [p["val_energy_mj"] for p in points] == sorted(p["val_energy_mj"] for p in points)
    assert "frontier: the best cascade" in format_result(summary, runtime_run_dir)
    broken = tmp_path / "run"
    shutil.copytree(runtime_run_dir, broken)
    summary["frontier"][0]["test_energy_mj"] = -1.0
    (broken / "result.json").write_text(json.dumps(summary))
    with pytest.raises(RunFolderError, match=r"frontier\[0\]\.test_energy_mj"):
        load_run(broken)
    summary["frontier"][0]["test_energy_mj"] = 1.0
    for field, bad, message in (
        ("thresholds", "0.5 abc", r"frontier\[0\]\.thresholds must be a string of numbers"),
        ("thresholds", "nan", r"frontier\[0\]\.thresholds must hold finite numbers"),
        ("stages", "conv:zz9", r"frontier\[0\]\.stages holds 'conv:zz9', not an architecture"),
        ("stage_energy_mj", 3, r"frontier\[0\]\.stage_energy_mj must be a string"),
    ):
        good = summary["frontier"][0][field]
        summary["frontier"][0][field] = bad
        (broken / "result.json").write_text(json.dumps(summary))
        with pytest.raises(RunFolderError, match=message):
            load_run(broken)
        summary["frontier"][0][field] = good
    summary["frontier"][0]["weights"] = "../../outside.pt"  # a hostile path: never read
    (broken / "result.json").write_text(json.dumps(summary))
    with pytest.raises(RunFolderError, match=r"frontier\[0\]\.weights .* outside the run folder"):
        load_run(broken)
