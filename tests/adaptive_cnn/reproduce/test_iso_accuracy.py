"""Iso-accuracy energy ratios on hand-made points (worked out in the comments)."""

from __future__ import annotations

import pytest

from adaptive_cnn.reproduce.iso_accuracy import (
    SystemPoint,
    at_iso,
    best_reduction,
    cheapest_at_iso,
    energy_ratio,
)

REF = 0.900  # the best single's test accuracy; iso-accuracy = at least 0.895 at 0.5 points
SINGLE = SystemPoint("single large", "single", 12.0, 0.900)
PAIRS = [
    SystemPoint("b/l a", "big-little", 6.0, 0.897),  # at iso, 6 mJ
    SystemPoint("b/l b", "big-little", 4.0, 0.890),  # cheaper but 1 point below: not at iso
    SystemPoint("b/l c", "big-little", 9.0, 0.905),
]
DESIGNS = [
    SystemPoint("acnn 2", "acnn", 2.0, 0.896),  # 6 / 2 = 3x
    SystemPoint("acnn 3", "acnn", 1.5, 0.895),  # exactly at the bound: 6 / 1.5 = 4x
    SystemPoint("acnn x", "acnn", 0.5, 0.894),  # cheapest but below the bound
]


def test_the_bound_is_inclusive_and_tolerance_in_points():
    assert at_iso(DESIGNS[1], REF, 0.5)
    assert not at_iso(DESIGNS[2], REF, 0.5)
    assert at_iso(DESIGNS[2], REF, 0.6)


def test_cheapest_pair_at_iso_skips_cheaper_pairs_below_the_bound():
    assert cheapest_at_iso(PAIRS, REF, 0.5).name == "b/l a"
    assert cheapest_at_iso(PAIRS, REF, 1.0).name == "b/l b"
    assert cheapest_at_iso(PAIRS, 0.99, 0.5) is None


def test_ratio_needs_both_systems_at_iso():
    assert energy_ratio(PAIRS[0], DESIGNS[0], REF, 0.5) == pytest.approx(3.0)
    assert energy_ratio(SINGLE, DESIGNS[0], REF, 0.5) == pytest.approx(6.0)
    assert energy_ratio(PAIRS[0], DESIGNS[2], REF, 0.5) is None
    assert energy_ratio(PAIRS[1], DESIGNS[0], REF, 0.5) is None
    assert energy_ratio(None, DESIGNS[0], REF, 0.5) is None


def test_best_reduction_is_the_largest_ratio_over_designs_at_iso():
    ratio, design, baseline = best_reduction(DESIGNS, PAIRS, REF, 0.5)
    assert (ratio, design.name, baseline.name) == (pytest.approx(4.0), "acnn 3", "b/l a")
    assert best_reduction(DESIGNS[2:], PAIRS, REF, 0.5)[0] is None
