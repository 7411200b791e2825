"""The runtime exit policy: hand examples, serialisation, agreement with evaluate."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selector import (
    CascadeData,
    ExitPolicy,
    SelectorError,
    StageCosts,
    evaluate,
    exit_stages,
    optimise_thresholds,
)

PROBS = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])  # margins 0.5, 0.05, 0


def test_should_exit_compares_the_margin_with_the_stage_threshold():
    policy = ExitPolicy(thresholds=(0.05, 0.6))
    np.testing.assert_array_equal(policy.should_exit(0, PROBS), [True, True, False])
    np.testing.assert_array_equal(policy.should_exit(1, PROBS), [False, False, False])
    np.testing.assert_array_equal(policy.should_exit(2, PROBS), [True, True, True])
    max_prob = ExitPolicy(thresholds=(0.5,), metric="max-prob")
    np.testing.assert_array_equal(max_prob.should_exit(0, PROBS), [True, False, True])


def test_exits_from_scores_is_should_exit_on_precomputed_confidences():
    policy = ExitPolicy(thresholds=(0.05, 0.6))
    margins = np.array([0.5, 0.05, 0.0])
    for stage in range(3):
        np.testing.assert_array_equal(
            policy.exits_from_scores(stage, margins), policy.should_exit(stage, PROBS)
        )
    with pytest.raises(SelectorError, match="stage must lie"):
        policy.exits_from_scores(3, margins)


def test_one_stage_policy_always_exits():
    assert ExitPolicy(thresholds=()).should_exit(0, PROBS).all()


@pytest.mark.parametrize("stage", [-1, 3])
def test_stage_outside_the_cascade_is_rejected(stage):
    with pytest.raises(SelectorError, match=r"stage must lie in \[0, 3\)"):
        ExitPolicy(thresholds=(0.1, 0.2)).should_exit(stage, PROBS)


def test_round_trip_through_json():
    policy = ExitPolicy(thresholds=(0.25, 0.5), metric="neg-entropy")
    assert ExitPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    assert ExitPolicy.from_dict({"thresholds": [0.3]}) == ExitPolicy(thresholds=(0.3,))


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"thresholds": [0.1], "metrik": "margin"}, "unknown exit-policy key.* metrik"),
        ({"thresholds": [0.1], "metric": "top5"}, "unknown confidence metric 'top5'"),
        ({"metric": "margin"}, "needs 'thresholds'"),
        ({"thresholds": "0.1"}, "sequence of numbers"),
        ({"thresholds": ["high"]}, "sequence of numbers"),
        ({"thresholds": [float("nan")]}, "NaN"),
        ({"thresholds": [0.1], "metric": ["margin"]}, "unknown confidence metric"),
    ],
)
def test_bad_dicts_are_rejected(d, match):
    with pytest.raises(SelectorError, match=match):
        ExitPolicy.from_dict(d)


@st.composite
def _probability_cascades(draw):
    n_stages, n_images, n_classes = (draw(st.integers(1, k)) for k in (4, 10, 4))
    raw = draw(arrays(np.float64, (n_stages, n_images, n_classes), elements=st.floats(0, 1)))
    probs = (raw + 1e-3) / (raw + 1e-3).sum(axis=2, keepdims=True)
    labels = draw(arrays(np.int64, n_images, elements=st.integers(0, n_classes - 1)))
    metric = draw(st.sampled_from(["margin", "max-prob", "neg-entropy"]))
    data = CascadeData.from_probs(list(probs), labels, metric)
    levels = [-1.0, 0.0, 2.0, *np.unique(data.confidence).tolist()]
    thresholds = tuple(draw(st.sampled_from(levels)) for _ in range(n_stages - 1))
    return probs, labels, data, ExitPolicy(thresholds, metric)


def _run_policy(policy, probs):
    """Stage by stage, as the client does: each stage sees only the images still running."""
    stage = np.full(probs.shape[1], -1)
    for s in range(policy.n_stages):
        running = np.flatnonzero(stage < 0)
        stage[running[policy.should_exit(s, probs[s, running])]] = s
    return stage


@given(_probability_cascades())
def test_policy_makes_the_same_exits_as_evaluate(case):
    probs, labels, data, policy = case
    stage = _run_policy(policy, probs)
    np.testing.assert_array_equal(stage, exit_stages(data, np.array(policy.thresholds)))
    costs = StageCosts(
        np.arange(1.0, data.n_stages + 1),
        *([np.zeros(data.n_stages)] * 2),
        np.zeros(data.n_stages, bool),
    )
    m = evaluate(data, costs, np.array(policy.thresholds))
    predictions = probs[stage, np.arange(labels.size)].argmax(axis=1)
    assert m.accuracy[0] == pytest.approx(np.mean(predictions == labels))
    np.testing.assert_allclose(
        m.exit_fractions[0], np.bincount(stage, minlength=data.n_stages) / labels.size
    )


def test_optimised_choice_runs_as_a_policy_with_the_same_accuracy():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(5) * 0.5, size=(3, 80))
    labels = rng.integers(0, 5, 80)
    probs[2, np.arange(80), labels] += 1.0  # the last stage is right
    probs /= probs.sum(axis=2, keepdims=True)
    data = CascadeData.from_probs(list(probs), labels, "max-prob")
    costs = StageCosts([1.0, 3.0, 9.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1e4], [False, False, True])
    choice = optimise_thresholds(data, costs, budget_mj=4.0)
    stage = _run_policy(choice.to_policy(), probs)
    accuracy = np.mean(probs[stage, np.arange(80)].argmax(axis=1) == labels)
    assert accuracy == pytest.approx(choice.metrics.accuracy[0])
