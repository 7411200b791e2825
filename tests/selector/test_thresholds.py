"""Threshold optimisation: hand-computed choices and brute force over every threshold vector."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector import (
    CascadeData,
    ExitPolicy,
    SelectorError,
    StageCosts,
    evaluate,
    optimise_thresholds,
    sweep_threshold,
)

# Two stages, four images. Every distinct outcome of the single threshold:
#   t     stops locally   accuracy  energy (local 2 mJ, cloud 2 + 10 mJ)  bytes
#   0.2   all             2/4       2                                      0
#   0.4   0, 2, 3         3/4       (3 * 2 + 12) / 4 = 4.5                 250
#   0.6   0, 2            2/4       7                                      500
#   0.9   0               3/4       9.5                                    750
#   >0.9  none            3/4       12                                     1000
HAND_DATA = CascadeData(
    confidence=np.array([[0.9, 0.2, 0.6, 0.4], [0.0, 0.0, 0.0, 0.0]]),
    correct=np.array([[True, False, False, True], [True, True, True, False]]),
    metric="margin",
)
HAND_COSTS = StageCosts(
    energy_mj=np.array([2.0, 10.0]),
    latency_ms=np.array([5.0, 50.0]),
    payload_bytes=np.array([0.0, 1000.0]),
    remote=np.array([False, True]),
)


@pytest.mark.parametrize(
    ("constraints", "threshold", "accuracy", "energy", "feasible"),
    [
        ({}, 0.4, 0.75, 4.5, True),  # most accurate, then cheapest
        ({"budget_mj": 5.0}, 0.4, 0.75, 4.5, True),
        ({"budget_mj": 4.0}, 0.2, 0.5, 2.0, True),
        ({"budget_mj": 1.0}, 0.2, 0.5, 2.0, False),  # nothing fits: least excess energy
        ({"max_bytes": 100.0}, 0.2, 0.5, 2.0, True),
        ({"min_accuracy": 0.7}, 0.4, 0.75, 4.5, True),
        ({"min_accuracy": 0.5}, 0.2, 0.5, 2.0, True),
        ({"min_accuracy": 0.9}, 0.4, 0.75, 4.5, False),  # closest accuracy, then cheapest
        ({"min_accuracy": 0.7, "max_bytes": 100.0}, 0.2, 0.5, 2.0, False),
        # the budget is kept and the floor missed (a total-violation rule would pick 0.4:
        # 12.5% over the budget "costs" less than 29% short of the floor)
        ({"min_accuracy": 0.7, "budget_mj": 4.0}, 0.2, 0.5, 2.0, False),
    ],
)
def test_hand_example(constraints, threshold, accuracy, energy, feasible):
    choice = optimise_thresholds(HAND_DATA, HAND_COSTS, **constraints)
    assert choice.thresholds == (threshold,)
    assert choice.metrics.accuracy[0] == pytest.approx(accuracy)
    assert choice.metrics.energy_mj[0] == pytest.approx(energy)
    assert choice.feasible is feasible


def test_everything_continues_above_the_largest_confidence():
    data = CascadeData(HAND_DATA.confidence, np.array([[False] * 4, [True] * 4]))
    choice = optimise_thresholds(data, HAND_COSTS)
    assert choice.thresholds[0] > 0.9 and choice.metrics.exit_fractions[0, 1] == 1.0


def test_one_stage_has_no_thresholds():
    data = CascadeData(np.array([[0.3, 0.8]]), np.array([[True, False]]))
    costs = StageCosts([4.0], [1.0], [0.0], [False])
    choice = optimise_thresholds(data, costs, budget_mj=3.0)
    assert choice.thresholds == () and choice.feasible is False
    assert choice.metrics.accuracy[0] == pytest.approx(0.5)


def test_choice_serialises_and_becomes_a_policy():
    choice = optimise_thresholds(HAND_DATA, HAND_COSTS, budget_mj=5.0)
    as_dict = json.loads(json.dumps(choice.to_dict()))
    assert as_dict["thresholds"] == [0.4] and as_dict["feasible"] is True
    assert as_dict["metrics"]["bytes_per_image"] == pytest.approx(250.0)
    assert choice.to_policy() == ExitPolicy(thresholds=(0.4,), metric="margin")
    unnamed = optimise_thresholds(CascadeData(HAND_DATA.confidence, HAND_DATA.correct), HAND_COSTS)
    with pytest.raises(SelectorError, match="metric"):
        unnamed.to_policy()
    assert unnamed.to_policy("max-prob").metric == "max-prob"


@pytest.mark.parametrize(
    ("constraints", "match"),
    [
        ({"budget_mj": -1.0}, "budget_mj must be finite and non-negative"),
        ({"max_bytes": float("nan")}, "max_bytes"),
        ({"min_accuracy": 1.5}, r"min_accuracy must lie in \[0, 1\]"),
        ({"budget_mj": "5"}, "budget_mj"),
    ],
)
def test_bad_constraints_are_rejected(constraints, match):
    with pytest.raises(SelectorError, match=match):
        optimise_thresholds(HAND_DATA, HAND_COSTS, **constraints)


# --- brute force: a second implementation of the documented rule ------------------------


def _all_vectors(data):
    """Every distinct outcome: each threshold at a confidence of its stage, or above all."""
    axes = [np.r_[np.unique(row), np.nextafter(row.max(), np.inf)] for row in data.confidence[:-1]]
    return np.array(list(itertools.product(*axes))).reshape(-1, data.n_stages - 1)


def _excess(value, bound):
    if bound is None or value <= bound + 1e-9 * max(1.0, abs(bound)):
        return 0.0
    return (value - bound) / max(abs(bound), 1e-9)


def _brute_force(data, costs, budget_mj=None, max_bytes=None, min_accuracy=None):
    """(violation, accuracy, energy, bytes) of the best vector by a Python sort: least
    excess over the energy and bytes limits, then least shortfall, then the objective."""
    m = evaluate(data, costs, _all_vectors(data))
    rows = []
    for acc, energy, sent in zip(m.accuracy, m.energy_mj, m.bytes_per_image, strict=True):
        limits = _excess(energy, budget_mj) + _excess(sent, max_bytes)
        if min_accuracy is not None:
            short = _excess(-acc, -min_accuracy)
            outcome = (limits + short, acc, energy, sent)
            rows.append(((limits, short, energy, -acc, sent), outcome))
        else:
            rows.append(((limits, 0.0, -acc, energy, sent), (limits, acc, energy, sent)))
    return min(rows)[1]


def _constraints(draw, costs):
    constraints = {}
    if draw(st.booleans()):
        constraints["budget_mj"] = draw(st.floats(0, float(costs.energy_mj.sum()) + 1))
    if draw(st.booleans()):
        constraints["max_bytes"] = draw(st.floats(0, float(costs.payload_bytes.sum()) + 1))
    if draw(st.booleans()):
        constraints["min_accuracy"] = draw(st.floats(0, 1))
    return constraints


def _assert_same_outcome(choice, expected):
    violation, accuracy, energy, sent = expected
    assert choice.feasible is bool(violation == 0)
    assert choice.metrics.accuracy[0] == pytest.approx(accuracy)
    assert choice.metrics.energy_mj[0] == pytest.approx(energy)
    assert choice.metrics.bytes_per_image[0] == pytest.approx(sent)


@given(st.data())
def test_each_swept_candidate_matches_evaluate(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy(stages=(2, 4)))
    levels = [[*np.unique(row).tolist(), 2.0] for row in cascade.confidence[:-1]]
    current = np.array([data.draw(st.sampled_from(level)) for level in levels])
    stage = data.draw(st.integers(0, cascade.n_stages - 2))
    sweep = sweep_threshold(cascade, current, stage)
    assert np.all(np.diff(sweep.candidates) > 0)
    vectors = np.repeat(current[None, :], sweep.candidates.size, axis=0)
    vectors[:, stage] = sweep.candidates
    m = evaluate(cascade, costs, vectors)
    np.testing.assert_array_equal(sweep.counts / cascade.n_images, m.exit_fractions)
    np.testing.assert_array_equal(sweep.n_correct / cascade.n_images, m.accuracy)


@given(st.data())
def test_two_stages_are_exact(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy(stages=(2, 2), max_images=30))
    constraints = _constraints(data.draw, costs)
    choice = optimise_thresholds(cascade, costs, **constraints)
    _assert_same_outcome(choice, _brute_force(cascade, costs, **constraints))


@settings(max_examples=40)
@given(st.data())
def test_three_and_four_stages_are_exact_on_tiny_sets(cascade_strategy, data):
    # At most 5 distinct confidences per stage: the grid holds every vector.
    cascade, costs = data.draw(cascade_strategy(stages=(3, 4), max_images=10))
    constraints = _constraints(data.draw, costs)
    choice = optimise_thresholds(cascade, costs, **constraints)
    _assert_same_outcome(choice, _brute_force(cascade, costs, **constraints))


def _correlated(n_stages, n_images, seed):
    """Later stages are more accurate, and a stage is more often right when confident."""
    rng = np.random.default_rng(seed)
    conf = rng.random((n_stages, n_images))
    skill = np.linspace(0.6, 0.95, n_stages)[:, None]
    correct = rng.random((n_stages, n_images)) < skill * (0.5 + conf) / 1.2
    energy = np.array([1.0, 3.0, 8.0, 20.0][:n_stages])
    remote = np.arange(n_stages) == n_stages - 1
    costs = StageCosts(energy, 2 * energy, np.where(remote, 5000.0, 0.0), remote)
    return CascadeData(conf, correct), costs


@pytest.mark.parametrize("seed", range(2))
def test_three_stages_are_near_optimal_on_a_larger_set(seed):
    # 160 distinct confidences per stage: more than the grid holds, so the descent matters.
    cascade, costs = _correlated(3, 160, seed)
    for budget in (2.5, 4.0):
        _, accuracy, _, _ = _brute_force(cascade, costs, budget_mj=budget)
        choice = optimise_thresholds(cascade, costs, budget_mj=budget)
        assert choice.feasible and choice.metrics.energy_mj[0] <= budget
        assert choice.metrics.accuracy[0] >= accuracy - 2 / 160  # within two images
    _, _, energy, _ = _brute_force(cascade, costs, min_accuracy=0.7)
    choice = optimise_thresholds(cascade, costs, min_accuracy=0.7)
    assert choice.feasible and choice.metrics.accuracy[0] >= 0.7
    assert choice.metrics.energy_mj[0] <= energy * 1.05  # within 5% of the least energy
