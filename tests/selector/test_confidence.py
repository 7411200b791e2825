"""Confidence metrics against closed-form values."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selector import SelectorError, confidence, max_probability, negative_entropy, score_margin


def test_score_margin_is_top1_minus_top2():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(score_margin(probs), [0.5, 0.0, 1.0])


def test_single_class_margin_is_its_probability():
    np.testing.assert_allclose(score_margin(np.array([[1.0], [0.25]])), [1.0, 0.25])


def test_max_probability():
    np.testing.assert_allclose(max_probability(np.array([[0.2, 0.8], [0.6, 0.4]])), [0.8, 0.6])


@pytest.mark.parametrize("k", [2, 3, 10])
def test_negative_entropy_bounds_are_uniform_and_one_hot(k):
    uniform = np.full((1, k), 1.0 / k)
    one_hot = np.eye(k)[:1]
    assert negative_entropy(uniform)[0] == pytest.approx(-math.log(k))
    assert negative_entropy(one_hot)[0] == pytest.approx(0.0)


def test_named_dispatch_and_unknown_metric():
    probs = np.array([[0.6, 0.3, 0.1]])
    assert confidence(probs)[0] == pytest.approx(0.3)  # margin is the default
    assert confidence(probs, "max-prob")[0] == pytest.approx(0.6)
    with pytest.raises(SelectorError, match="unknown confidence metric 'top5'"):
        confidence(probs, "top5")


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 0)), np.zeros((2, 2, 2))])
def test_bad_shapes_are_rejected(bad):
    with pytest.raises(SelectorError, match=r"shape \(N, K\)"):
        score_margin(bad)


simplex_rows = arrays(np.float64, (5, 4), elements=st.floats(0.01, 1.0)).map(
    lambda a: a / a.sum(axis=1, keepdims=True)
)


@given(simplex_rows)
def test_metrics_stay_in_their_ranges_and_ignore_class_order(probs):
    permuted = probs[:, ::-1]
    for metric, low, high in (
        ("margin", 0, 1),
        ("max-prob", 0.25, 1),
        ("neg-entropy", -math.log(4), 0),
    ):
        values = confidence(probs, metric)
        assert np.all(values >= low - 1e-12) and np.all(values <= high + 1e-12)
        np.testing.assert_allclose(values, confidence(permuted, metric))
