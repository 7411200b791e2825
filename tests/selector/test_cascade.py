"""Cascade inputs and exact evaluation: a hand-computed example, a per-image loop, invariants."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import selector.cascade
from selector import CascadeData, SelectorError, StageCosts, evaluate, exit_stages

# Two stages, four images: a local CNN, then the cloud.
HAND_DATA = CascadeData(
    confidence=np.array([[0.9, 0.2, 0.6, 0.4], [0.0, 0.0, 0.0, 0.0]]),
    correct=np.array([[True, False, False, True], [True, True, True, False]]),
)
HAND_COSTS = StageCosts(
    energy_mj=np.array([2.0, 10.0]),
    latency_ms=np.array([5.0, 50.0]),
    payload_bytes=np.array([0.0, 1000.0]),
    remote=np.array([False, True]),
)


def test_hand_example_two_thresholds_at_once():
    m = evaluate(HAND_DATA, HAND_COSTS, np.array([[0.5], [0.4]]))
    # 0.5: images 0 and 2 stop locally (0 right, 2 wrong); 1 and 3 go to the cloud
    # (1 right, 3 wrong). Local exit pays 2 mJ / 5 ms / 0 B, cloud 12 mJ / 55 ms / 1000 B.
    # 0.4: image 3 (confidence exactly 0.4) stops too, and is right locally.
    np.testing.assert_allclose(m.accuracy, [2 / 4, 3 / 4])
    np.testing.assert_allclose(m.energy_mj, [(2 + 12 + 2 + 12) / 4, (2 + 12 + 2 + 2) / 4])
    np.testing.assert_allclose(m.latency_ms, [(5 + 55 + 5 + 55) / 4, (5 + 55 + 5 + 5) / 4])
    np.testing.assert_allclose(m.bytes_per_image, [2000 / 4, 1000 / 4])
    np.testing.assert_allclose(m.offload_rate, [0.5, 0.25])
    np.testing.assert_allclose(m.exit_fractions, [[0.5, 0.5], [0.75, 0.25]])
    np.testing.assert_array_equal(exit_stages(HAND_DATA, [0.5]), [0, 1, 0, 1])


def test_one_vector_gives_one_row_of_plain_floats():
    m = evaluate(HAND_DATA, HAND_COSTS, [0.5])
    assert len(m) == 1 and m.accuracy.shape == (1,) and m.exit_fractions.shape == (1, 2)
    row = m.metrics_at(0)
    assert json.loads(json.dumps(row)) == row
    assert row["energy_mj"] == pytest.approx(7.0) and row["exit_fractions"] == [0.5, 0.5]
    assert type(row["accuracy"]) is float


def test_one_stage_cascade_answers_everything_at_stage_zero():
    data = CascadeData(np.array([[0.1, 0.9, 0.5]]), np.array([[True, False, True]]))
    costs = StageCosts(np.array([3.0]), np.array([1.0]), np.array([0.0]), np.array([False]))
    m = evaluate(data, costs, np.empty(0))
    assert m.accuracy[0] == pytest.approx(2 / 3) and m.energy_mj[0] == pytest.approx(3.0)
    np.testing.assert_allclose(m.exit_fractions, [[1.0]])


def _per_image(data, costs, thresholds):
    """Second implementation: walk each image through the stages."""
    n_stages, n_images = data.confidence.shape
    rows = []
    for n in range(n_images):
        s = 0
        while s < n_stages - 1 and not data.confidence[s, n] >= thresholds[s]:
            s += 1
        rows.append(
            (
                data.correct[s, n],
                sum(costs.energy_mj[: s + 1]),
                sum(costs.latency_ms[: s + 1]),
                sum(costs.payload_bytes[: s + 1]),
                costs.remote[s],
                s,
            )
        )
    acc, energy, latency, sent, remote, stage = (np.array(c) for c in zip(*rows, strict=True))
    fractions = np.bincount(stage, minlength=n_stages) / n_images
    return acc.mean(), energy.mean(), latency.mean(), sent.mean(), remote.mean(), fractions


def _threshold_vectors(draw, data, count):
    choices = [-math.inf, math.inf, 0.5, *np.unique(data.confidence).tolist()]
    width = data.n_stages - 1
    return np.array(
        [[draw(st.sampled_from(choices)) for _ in range(width)] for _ in range(count)]
    ).reshape(count, width)


@given(st.data())
def test_vectorised_evaluation_equals_per_image_loop(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy())
    table = _threshold_vectors(data.draw, cascade, data.draw(st.integers(1, 6)))
    m = evaluate(cascade, costs, table)
    for i, thresholds in enumerate(table):
        acc, energy, latency, sent, offload, fractions = _per_image(cascade, costs, thresholds)
        assert m.accuracy[i] == pytest.approx(acc)
        assert m.energy_mj[i] == pytest.approx(energy)
        assert m.latency_ms[i] == pytest.approx(latency)
        assert m.bytes_per_image[i] == pytest.approx(sent)
        assert m.offload_rate[i] == pytest.approx(offload)
        np.testing.assert_allclose(m.exit_fractions[i], fractions)


@given(st.data())
def test_energy_lies_between_first_stage_and_all_stages(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy())
    m = evaluate(cascade, costs, _threshold_vectors(data.draw, cascade, 4))
    tol = 1e-9 * (1 + costs.energy_mj.sum())
    assert np.all(m.energy_mj >= costs.energy_mj[0] - tol)
    assert np.all(m.energy_mj <= costs.energy_mj.sum() + tol)
    np.testing.assert_allclose(m.exit_fractions.sum(axis=1), 1.0)


def _probs(n_stages, n_images, n_classes):
    return arrays(np.float64, (n_stages, n_images, n_classes), elements=st.floats(0.0, 1.0)).map(
        lambda a: (a + 1e-3) / (a + 1e-3).sum(axis=2, keepdims=True)
    )


@st.composite
def _probability_cascades(draw):
    n_stages, n_images, n_classes = (draw(st.integers(1, k)) for k in (4, 10, 4))
    probs = draw(_probs(n_stages, n_images, n_classes))
    labels = draw(arrays(np.int64, n_images, elements=st.integers(0, n_classes - 1)))
    energy = draw(arrays(np.float64, n_stages, elements=st.floats(0, 50)))
    zeros = np.zeros(n_stages)
    return probs, labels, StageCosts(energy, zeros, zeros, zeros.astype(bool))


@pytest.mark.parametrize("metric", ["margin", "max-prob"])
@given(case=_probability_cascades())
def test_zero_thresholds_stop_everything_at_stage_one(metric, case):
    probs, labels, costs = case
    cascade = CascadeData.from_probs(list(probs), labels, metric)
    m = evaluate(cascade, costs, np.zeros(cascade.n_stages - 1))
    assert m.exit_fractions[0, 0] == 1.0
    assert m.accuracy[0] == pytest.approx(np.mean(probs[0].argmax(axis=1) == labels))
    assert m.energy_mj[0] == pytest.approx(costs.energy_mj[0])


@pytest.mark.parametrize("metric", ["margin", "max-prob"])
@given(case=_probability_cascades())
def test_thresholds_above_one_send_everything_to_the_last_stage(metric, case):
    probs, labels, costs = case
    cascade = CascadeData.from_probs(list(probs), labels, metric)
    m = evaluate(cascade, costs, np.full(cascade.n_stages - 1, np.nextafter(1.0, 2.0)))
    assert m.exit_fractions[0, -1] == 1.0
    assert m.accuracy[0] == pytest.approx(np.mean(probs[-1].argmax(axis=1) == labels))
    assert m.energy_mj[0] == pytest.approx(costs.energy_mj.sum())


def test_chunks_give_the_same_metrics_as_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    cascade = CascadeData(rng.random((3, 50)), rng.random((3, 50)) < 0.7)
    costs = StageCosts([1.0, 4.0, 9.0], [1.0, 2.0, 3.0], [0.0, 0.0, 500.0], [False, False, True])
    table = rng.random((37, 2))
    whole = evaluate(cascade, costs, table)
    monkeypatch.setattr(selector.cascade, "_CHUNK_CELLS", 120)  # 2 vectors per chunk
    chunked = evaluate(cascade, costs, table)
    for name in ("accuracy", "energy_mj", "bytes_per_image", "exit_fractions"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_from_probs_uses_the_metric_and_arg_max():
    local = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]])
    cloud = np.array([[0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
    cascade = CascadeData.from_probs([local, cloud], np.array([0, 2]), metric="max-prob")
    np.testing.assert_allclose(cascade.confidence, [[0.7, 0.5], [0.8, 1.0]])
    np.testing.assert_array_equal(cascade.correct, [[True, False], [False, False]])
    assert cascade.metric == "max-prob" and cascade.n_stages == 2 and cascade.n_images == 2


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        ([np.full((2, 3), 1 / 3)], np.array([0, 3]), r"labels must lie in \[0, 3\)"),
        ([np.full((2, 3), 1 / 3)], np.array([-1, 0]), r"labels must lie in"),
        ([np.full((2, 3), 1 / 3)], np.array([0.0, 1.0]), "integer"),
        ([np.full((2, 3), 1 / 3), np.full((2, 2), 0.5)], np.array([0, 1]), r"probs\[1\]"),
        ([np.full((3, 3), 1 / 3)], np.array([0, 1]), r"probs\[0\] has shape \(3, 3\)"),
        ([], np.array([0, 1]), "one \\(N, K\\) array per stage"),
    ],
)
def test_from_probs_rejects_bad_input(probs, labels, match):
    with pytest.raises(SelectorError, match=match):
        CascadeData.from_probs(probs, labels)


@pytest.mark.parametrize(
    ("confidence", "correct", "match"),
    [
        (np.zeros((0, 3)), np.zeros((0, 3), bool), r"shape \(S, N\)"),
        (np.zeros(3), np.zeros(3, bool), r"shape \(S, N\)"),
        (np.array([[np.nan]]), np.array([[True]]), "finite"),
        (np.zeros((2, 3)), np.zeros((2, 2), bool), "correct must be"),
        (np.zeros((2, 3)), np.zeros((2, 3)), "correct must be a boolean"),
    ],
)
def test_cascade_data_rejects_bad_arrays(confidence, correct, match):
    with pytest.raises(SelectorError, match=match):
        CascadeData(confidence, correct)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"energy_mj": [-1.0, 2.0]}, "energy_mj must be finite and non-negative"),
        ({"latency_ms": [np.nan, 2.0]}, "latency_ms must be finite"),
        ({"payload_bytes": [0.0, np.inf]}, "payload_bytes must be finite"),
        ({"latency_ms": [1.0]}, "latency_ms has 1 stages, energy_mj has 2"),
        ({"energy_mj": []}, r"shape \(S,\) with S >= 1"),
        ({"remote": [True, False]}, "only the last stage may be remote"),
        ({"remote": [0, 1]}, "remote must be a boolean array"),
    ],
)
def test_stage_costs_reject_bad_values(fields, match):
    base = {"energy_mj": [1.0, 2.0], "latency_ms": [1.0, 2.0], "payload_bytes": [0.0, 9.0]}
    base["remote"] = [False, True]
    with pytest.raises(SelectorError, match=match):
        StageCosts(**{**base, **fields})


def test_inputs_are_read_only_copies():
    energy = np.array([1.0, 2.0])
    costs = StageCosts(energy, energy, energy, np.array([False, True]))
    energy[0] = 99.0
    assert costs.energy_mj[0] == 1.0
    with pytest.raises(ValueError):
        costs.energy_mj[0] = 5.0


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        (np.zeros(2), r"shape \(1,\) or \(T, 1\)"),
        (np.zeros((3, 2)), r"shape \(1,\) or \(T, 1\)"),
        (np.array([np.nan]), "NaN"),
    ],
)
def test_evaluate_rejects_bad_thresholds(thresholds, match):
    with pytest.raises(SelectorError, match=match):
        evaluate(HAND_DATA, HAND_COSTS, thresholds)


def test_evaluate_rejects_costs_of_another_cascade():
    costs = StageCosts([1.0], [1.0], [0.0], [False])
    with pytest.raises(SelectorError, match="costs describe 1 stages but the data has 2"):
        evaluate(HAND_DATA, costs, [0.5])
