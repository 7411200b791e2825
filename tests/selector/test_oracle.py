"""The oracle bound: hand examples, a per-image loop, and domination of every threshold scheme."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selector import CascadeData, SelectorError, StageCosts, evaluate, oracle


def test_two_stage_hand_example():
    data = CascadeData(
        confidence=np.array([[0.9, 0.2, 0.6, 0.4], [0.0, 0.0, 0.0, 0.0]]),
        correct=np.array([[True, False, False, True], [True, True, True, False]]),
    )
    costs = StageCosts([2.0, 10.0], [5.0, 50.0], [0.0, 1000.0], [False, True])
    result = oracle(data, costs)
    # Images 0 and 3 are right locally; 1 and 2 only in the cloud; every image is right.
    assert result.accuracy == pytest.approx(1.0)
    assert result.energy_mj == pytest.approx((2 + 12 + 12 + 2) / 4)
    assert result.latency_ms == pytest.approx((5 + 55 + 55 + 5) / 4)
    assert result.bytes_per_image == pytest.approx(2000 / 4)
    assert result.offload_rate == pytest.approx(0.5)
    np.testing.assert_allclose(result.exit_fractions, [0.5, 0.5])
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_images_no_stage_gets_right_stop_at_the_first_stage():
    data = CascadeData(
        confidence=np.zeros((3, 3)),
        correct=np.array([[False, False, False], [False, True, False], [False, True, True]]),
    )
    costs = StageCosts([1.0, 2.0, 4.0], [0.0] * 3, [0.0] * 3, [False] * 3)
    result = oracle(data, costs)
    # Image 0: never right, stage 0 (1 mJ). Image 1: stage 1 (3 mJ). Image 2: stage 2 (7 mJ).
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.energy_mj == pytest.approx((1 + 3 + 7) / 3)
    np.testing.assert_allclose(result.exit_fractions, [1 / 3, 1 / 3, 1 / 3])


def test_costs_of_another_cascade_are_rejected():
    data = CascadeData(np.zeros((2, 1)), np.ones((2, 1), bool))
    with pytest.raises(SelectorError, match="costs describe 1 stages"):
        oracle(data, StageCosts([1.0], [0.0], [0.0], [False]))


def _per_image(data, costs):
    """Second implementation: walk each image to its first right stage."""
    n_stages, n_images = data.correct.shape
    right, energy = [], []
    for n in range(n_images):
        stage = next((s for s in range(n_stages) if data.correct[s, n]), 0)
        right.append(bool(data.correct[stage, n]))
        energy.append(sum(costs.energy_mj[: stage + 1]))
    return np.mean(right), np.mean(energy)


@given(st.data())
def test_oracle_equals_per_image_loop(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy())
    accuracy, energy = _per_image(cascade, costs)
    result = oracle(cascade, costs)
    assert result.accuracy == pytest.approx(accuracy)
    assert result.energy_mj == pytest.approx(energy)


@given(st.data())
def test_no_threshold_scheme_beats_the_oracle(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy(stages=(1, 3), max_images=8))
    # Every distinct outcome: each threshold at a confidence of its stage, or above all.
    axes = [np.r_[np.unique(r), np.nextafter(r.max(), np.inf)] for r in cascade.confidence[:-1]]
    vectors = list(itertools.product(*axes))  # one empty vector when S == 1
    vectors = np.array(vectors, dtype=float).reshape(len(vectors), cascade.n_stages - 1)
    schemes = evaluate(cascade, costs, vectors)
    bound = oracle(cascade, costs)
    assert np.all(schemes.accuracy <= bound.accuracy + 1e-12)
    as_accurate = np.isclose(schemes.accuracy, bound.accuracy, rtol=0, atol=1e-12)
    tol = 1e-9 * (1 + costs.energy_mj.sum())
    assert np.all(schemes.energy_mj[as_accurate] >= bound.energy_mj - tol)
    assert np.all(schemes.bytes_per_image[as_accurate] >= bound.bytes_per_image - 1e-9 * 1e3)


@given(st.data())
def test_iso_accuracy_oracle_is_below_every_scheme_as_accurate(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy(stages=(1, 3), max_images=8))
    axes = [np.r_[np.unique(r), np.nextafter(r.max(), np.inf)] for r in cascade.confidence[:-1]]
    vectors = list(itertools.product(*axes))
    vectors = np.array(vectors, dtype=float).reshape(len(vectors), cascade.n_stages - 1)
    schemes = evaluate(cascade, costs, vectors)
    full = oracle(cascade, costs)
    tol = 1e-9 * (1 + costs.energy_mj.sum())
    for accuracy, energy in zip(schemes.accuracy, schemes.energy_mj, strict=True):
        bound = oracle(cascade, costs, min_accuracy=accuracy)
        assert bound.accuracy >= accuracy - 1e-12 and bound.energy_mj <= energy + tol
        assert bound.energy_mj <= full.energy_mj + tol


def test_iso_accuracy_oracle_hand_example():
    # 4 images; stage 0 right on image 0; image 1 right only at stage 1, image 2 only at
    # stage 2, image 3 never. Stage energies 1, 2, 4 mJ (cumulative 1, 3, 7).
    correct = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=bool)
    probs = [np.eye(2)[c.astype(int)] for c in correct]  # right = predicts class 1
    cascade = CascadeData.from_probs(probs, np.ones(4, dtype=int))
    costs = StageCosts([1.0, 2.0, 4.0], [0.0] * 3, [0.0] * 3, [False] * 3)
    assert oracle(cascade, costs).energy_mj == pytest.approx((1 + 3 + 7 + 1) / 4)
    half = oracle(cascade, costs, min_accuracy=0.5)  # image 1 (3 mJ) beats image 2 (7 mJ)
    assert half.accuracy == 0.5 and half.energy_mj == pytest.approx((1 + 3 + 1 + 1) / 4)
    low = oracle(cascade, costs, min_accuracy=0.1)
    assert low.accuracy == 0.25 and low.energy_mj == pytest.approx(1.0)
    top = oracle(cascade, costs, min_accuracy=1.0)  # capped at what some stage gets right
    assert top.accuracy == 0.75 and top.energy_mj == pytest.approx(12 / 4)


@given(st.data(), st.floats(0, 150))
def test_budget_oracle_is_above_every_scheme_within_the_budget(cascade_strategy, data, budget):
    cascade, costs = data.draw(cascade_strategy(stages=(1, 3), max_images=8))
    axes = [np.r_[np.unique(r), np.nextafter(r.max(), np.inf)] for r in cascade.confidence[:-1]]
    vectors = list(itertools.product(*axes))
    vectors = np.array(vectors, dtype=float).reshape(len(vectors), cascade.n_stages - 1)
    schemes = evaluate(cascade, costs, vectors)
    bound = oracle(cascade, costs, budget_mj=budget)
    tol = 1e-9 * max(1.0, budget)
    within = schemes.energy_mj <= budget + tol
    assert np.all(schemes.accuracy[within] <= bound.accuracy + 1e-12)
    assert bound.accuracy <= oracle(cascade, costs).accuracy + 1e-12
    if costs.energy_mj[0] <= budget:  # the bound's own assignment keeps the budget
        assert bound.energy_mj <= budget + tol


def test_budget_oracle_hand_example():
    # the iso-accuracy example's cascade: image 0 right at stage 0, image 1 only at stage 1
    # (3 mJ cumulative), image 2 only at stage 2 (7 mJ), image 3 never
    correct = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=bool)
    probs = [np.eye(2)[c.astype(int)] for c in correct]
    cascade = CascadeData.from_probs(probs, np.ones(4, dtype=int))
    costs = StageCosts([1.0, 2.0, 4.0], [0.0] * 3, [0.0] * 3, [False] * 3)
    assert oracle(cascade, costs, budget_mj=1.0).accuracy == 0.25  # no spare energy
    one = oracle(cascade, costs, budget_mj=1.5)  # 2 mJ spare in all: image 1 (+2 mJ) only
    assert one.accuracy == 0.5 and one.energy_mj == pytest.approx(1.5)
    both = oracle(cascade, costs, budget_mj=3.0)  # +2 and +6 mJ fit in 8 mJ spare
    assert both.accuracy == 0.75 and both.energy_mj == pytest.approx(3.0)
    broke = oracle(cascade, costs, budget_mj=0.5)  # stage 0 alone is over the budget
    assert broke.accuracy == 0.25 and broke.energy_mj == pytest.approx(1.0)
    with pytest.raises(SelectorError, match="not both"):
        oracle(cascade, costs, min_accuracy=0.5, budget_mj=3.0)
