"""The superkernel search on digits (tiny budgets), the budget form with its fitting, and the
automatic lambda (fake searches)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from adaptive_cnn.errors import ConfigError
from adaptive_cnn.networks import create_network, get_family, parse_arch
from adaptive_cnn.single_path import (
    SearchConfig,
    SearchResult,
    SinglePathError,
    run_search,
    search_lambda,
    supernet_costs,
)
from adaptive_cnn.training import accuracy, predict_probs

TINY = SearchConfig(
    epochs=3, warmup_epochs=1, subset=192, batch_size=32, threshold_lr=0.05, width=0.5
)


@pytest.fixture(scope="module")
def costs(predictor, digits):
    return supernet_costs(predictor, digits.input_shape, digits.num_classes, 0.5)


def test_search_is_deterministic_and_its_arch_round_trips(digits, costs) -> None:
    first = run_search(digits, costs, TINY, seed=3, threads=1)
    again = run_search(digits, costs, TINY, seed=3, threads=1)
    assert (first.arch, first.history, first.thresholds) == (
        again.arch,
        again.history,
        again.thresholds,
    )
    assert first.val_accuracy == again.val_accuracy
    arch = parse_arch(first.arch)
    assert f"mbconv:{get_family('mbconv').from_str(arch.to_str()).to_str()}" == first.arch
    net = create_network(first.arch, digits.input_shape, digits.num_classes)
    assert net(torch.zeros(2, *digits.input_shape)).shape == (2, 10)
    assert first.energy_mj == pytest.approx(costs.energy_mj(arch))
    assert [row["epoch"] for row in first.history] == [1.0, 2.0, 3.0]
    assert first.epochs == 3 and first.seconds > 0


def test_a_large_lambda_finds_a_cheaper_network(digits, costs) -> None:
    free = run_search(digits, costs, TINY, seed=0, threads=1)
    taxed = run_search(digits, costs, dataclasses.replace(TINY, lam=20.0), seed=0, threads=1)
    assert taxed.energy_mj < free.energy_mj
    # during warm-up (epoch 1) the thresholds do not move: every option is still on
    assert taxed.history[0]["arch"] == free.history[0]["arch"]
    assert taxed.history[0]["expected_energy_mj"] == pytest.approx(
        costs.fixed_mj + costs.corners_mj[:, 1, 1, 1].sum(), rel=1e-6
    )


def test_search_config_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="warm-up"):
        SearchConfig(epochs=1, warmup_epochs=1)
    with pytest.raises(ConfigError, match="budget_mj"):
        SearchConfig(cost_form="budget")


def _fake(energy_of):
    calls = []

    def run(lam: float) -> SearchResult:
        calls.append(lam)
        energy = energy_of(lam)
        accuracy = energy / (1.0 + energy)  # costlier networks are more accurate
        return SearchResult(f"mbconv:{lam}", energy, accuracy, lam, 1.0, 0.1)

    return run, calls


def test_lambda_search_brackets_then_bisects() -> None:
    run, calls = _fake(lambda lam: 10.0 / (1.0 + lam))  # cheaper with lambda
    found = search_lambda(run, budget_mj=4.0, trials=4, initial=0.5, factor=4.0)
    # 0.5 -> 6.67 mJ (over) => x4: 2 -> 3.33 (within) => sqrt(0.5 * 2) = 1 -> 5 (over)
    # => sqrt(1 * 2)
    assert calls == pytest.approx([0.5, 2.0, 1.0, math.sqrt(2.0)])
    assert found.best.lam == 2.0  # the only one within the budget (sqrt 2 -> 4.14 mJ)
    assert [t.lam for t in found.trials] == calls


def test_lambda_search_prefers_accuracy_among_feasible_trials() -> None:
    run, calls = _fake(lambda lam: 1.0 / (1.0 + lam))  # always within a 2 mJ budget
    found = search_lambda(run, budget_mj=2.0, trials=3, initial=1.0, factor=2.0)
    assert calls == [1.0, 0.5, 0.25]  # meets the budget: lambda goes down
    assert found.best.lam == 0.25  # the costliest network is the most accurate


def test_lambda_search_without_a_feasible_trial_is_an_error() -> None:
    run, _ = _fake(lambda lam: 5.0)
    with pytest.raises(SinglePathError, match="no single-path search met the 1 mJ budget"):
        search_lambda(run, budget_mj=1.0, trials=2)


def test_a_warm_started_search_equals_one_from_scratch(digits, costs) -> None:
    from adaptive_cnn.single_path.search import warm_up

    config = dataclasses.replace(TINY, lam=2.0)
    warm = warm_up(digits, costs, config, seed=5, threads=1)
    assert warm.epochs == 1 and [row["epoch"] for row in warm.history] == [1.0]
    scratch = run_search(digits, costs, config, seed=5, threads=1)
    started = run_search(digits, costs, config, seed=5, threads=1, warm=warm)
    assert (started.arch, started.thresholds) == (scratch.arch, scratch.thresholds)
    for a, b in zip(started.history, scratch.history, strict=True):
        assert a["arch"] == b["arch"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert started.epochs == 2 and scratch.epochs == 3  # the warm-up is counted once
    other = run_search(digits, costs, dataclasses.replace(config, lam=0.1), 5, warm=warm)
    assert other.history[0] == started.history[0]  # one warm-up serves every lambda
    with pytest.raises(ConfigError, match="warm start"):
        run_search(digits, costs, config, seed=6, threads=1, warm=warm)


def test_the_supernet_trains_channels_last_whatever_the_input_layout(digits) -> None:
    # with one input channel a subset copy of the images is "contiguous" in both layouts,
    # so the layout must come from the weights, as the trainer's networks do
    from adaptive_cnn.single_path.search import _seeded_supernet

    net = _seeded_supernet(digits, TINY, seed=0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    nchw = torch.zeros(4, *digits.input_shape).contiguous()
    assert net.stem(nchw).is_contiguous(memory_format=torch.channels_last)


def test_a_budget_form_search_fits_its_network_and_scores_the_fitted_one(digits, costs) -> None:
    free = run_search(digits, costs, dataclasses.replace(TINY, lam=0.0), seed=1, threads=1)
    budget = (free.energy_mj + costs.cheapest_mj()) / 2  # between the cheapest and free
    config = dataclasses.replace(TINY, lam=0.0, cost_form="budget", budget_mj=budget)
    found = run_search(digits, costs, config, seed=1, threads=1)
    # lambda 0 trains as the free search (same seed), so the raw network is free's
    assert found.raw_energy_mj == pytest.approx(free.energy_mj)
    assert found.dropped and found.energy_mj <= budget < found.raw_energy_mj
    arch = get_family("mbconv").from_str(found.arch.split(":", 1)[1])
    assert found.energy_mj == pytest.approx(costs.energy_mj(arch))
    # the inherited weights are the fitted network's, and its accuracy is the one reported
    net = create_network(found.arch, digits.input_shape, digits.num_classes)
    net.load_state_dict(found.inherited)
    net.eval()
    with torch.no_grad():
        probs = predict_probs(net, digits.val.images, digits.preprocessing)
    assert accuracy(probs, digits.val.labels) == pytest.approx(found.val_accuracy)
    assert found.to_dict()["dropped"] == [list(d) for d in found.dropped]


def test_under_the_budget_form_one_lambda_trial_meets_the_budget(digits, costs) -> None:
    budget = costs.cheapest_mj() * 1.05

    def run(lam: float):
        config = dataclasses.replace(TINY, lam=lam, cost_form="budget", budget_mj=budget)
        return run_search(digits, costs, config, seed=2, threads=1)

    found = search_lambda(run, budget, trials=1, initial=1.0)
    assert len(found.trials) == 1 and found.best.energy_mj <= budget
