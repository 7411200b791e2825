"""The validation margin: per-image correctness of a cascade and the paired standard error."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selector import (
    CascadeData,
    SelectorError,
    cascade_correct,
    evaluate,
    paired_standard_error,
)

HAND = CascadeData(
    confidence=np.array([[0.9, 0.2, 0.6, 0.4], [0.0, 0.0, 0.0, 0.0]]),
    correct=np.array([[True, False, False, True], [True, True, True, False]]),
)


def test_cascade_correct_hand_example():
    # at 0.5 images 0 and 2 stop at stage 1 (right, wrong); 1 and 3 take stage 2's answer
    assert cascade_correct(HAND, np.array([0.5])).tolist() == [True, True, False, False]


@given(data=st.data())
def test_cascade_correct_agrees_with_evaluate(cascade_strategy, data):
    cascade, costs = data.draw(cascade_strategy())
    thresholds = np.full(cascade.n_stages - 1, 0.5)
    got = cascade_correct(cascade, thresholds).mean()
    assert math.isclose(got, evaluate(cascade, costs, thresholds).metrics_at(0)["accuracy"])


def test_paired_standard_error_by_hand():
    a = np.array([True, True, False, True])
    b = np.array([True, False, False, False])
    # differences 0, 1, 0, 1: mean 0.5, sample sd sqrt(1/3), se sqrt(1/3)/2
    assert math.isclose(paired_standard_error(a, b), math.sqrt(1 / 3) / 2)


def test_identical_systems_have_no_paired_error():
    a = np.array([True, False, True, True, False])
    assert paired_standard_error(a, a) == 0.0


def test_paired_error_ignores_images_both_get_right():
    a, b = np.array([True, False]), np.array([False, True])
    both_right = np.ones(98, dtype=bool)
    wide = paired_standard_error(np.r_[a, both_right], np.r_[b, both_right])
    assert wide < paired_standard_error(a, b)  # same disagreements, more images: smaller


@pytest.mark.parametrize("a, b", [(np.ones(3, bool), np.ones(4, bool)), ([True], [False])])
def test_paired_error_refuses_mismatched_or_single_images(a, b):
    with pytest.raises(SelectorError):
        paired_standard_error(a, b)
