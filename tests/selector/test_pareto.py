"""Pareto fronts against hand examples and the O(P^2) definition of dominance."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selector import SelectorError, pareto_front


def test_two_objectives_with_ties_and_duplicates():
    energy = [1.0, 2.0, 2.0, 3.0, 1.0, 4.0, 3.0]
    accuracy = [0.5, 0.7, 0.6, 0.7, 0.5, 0.9, 0.8]
    # 4 duplicates 0 (the lower index stays); 2 loses to 1 at equal energy; 3 loses to 1 at
    # equal accuracy; 1, 6, 5 each buy accuracy with energy.
    np.testing.assert_array_equal(pareto_front(energy, accuracy), [0, 1, 6, 5])


def test_bytes_keep_points_that_energy_and_accuracy_alone_would_drop():
    energy = [1.0, 1.0, 2.0, 2.0, 0.5, 3.0]
    accuracy = [0.5, 0.5, 0.8, 0.8, 0.4, 0.8]
    sent = [10.0, 0.0, 0.0, 5.0, 50.0, 0.0]
    # 0 loses to 1 on bytes alone; 3 loses to 2 on bytes; 5 loses to 2 on energy.
    np.testing.assert_array_equal(pareto_front(energy, accuracy, sent), [4, 1, 2])
    np.testing.assert_array_equal(pareto_front(energy, accuracy), [4, 0, 2])


def test_empty_input_gives_an_empty_front():
    assert pareto_front([], []).shape == (0,)
    assert pareto_front([], [], []).shape == (0,)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 2.0], [0.5]), r"accuracy must have shape \(2,\)"),
        (([1.0], [0.5], [1.0, 2.0]), r"bytes_per_image must have shape \(1,\)"),
        (([np.nan], [0.5]), "energy_mj must not be NaN"),
        (([[1.0]], [0.5]), r"energy_mj must have shape \(P,\)"),
    ],
)
def test_bad_input_is_rejected(args, match):
    with pytest.raises(SelectorError, match=match):
        pareto_front(*args)


def _definition(energy, accuracy, sent):
    """Indices kept by the definition: not dominated, and the first of identical points."""
    points = list(zip(energy, [-a for a in accuracy], sent, strict=True))
    kept = []
    for i, p in enumerate(points):
        dominated = any(
            all(q[k] <= p[k] for k in range(3)) and (q != p or j < i)
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            kept.append(i)
    return sorted(kept, key=lambda i: (points[i], i))


_VALUES = st.sampled_from([0.0, 0.25, 0.5, 1.0])  # few values: many ties


@given(st.lists(st.tuples(_VALUES, _VALUES, _VALUES), max_size=25), st.booleans())
def test_front_matches_the_definition(points, with_bytes):
    energy = [p[0] for p in points]
    accuracy = [p[1] for p in points]
    sent = [p[2] if with_bytes else 0.0 for p in points]
    front = pareto_front(energy, accuracy, sent if with_bytes else None)
    assert front.tolist() == _definition(energy, accuracy, sent)
