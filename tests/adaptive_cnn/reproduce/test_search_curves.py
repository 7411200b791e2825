"""Search-efficiency arithmetic on made-up journals (hand-computed expectations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptive_cnn.reproduce import search_curves as sc


def journal(*evals):
    """(accuracy, feasible, seconds[, stages]) -> journal records."""
    return [
        {
            "index": i,
            "metrics": {"accuracy": acc},
            "feasible": ok,
            "seconds": s,
            "stages": list(rest[0]) if rest else [f"n{i}"],
        }
        for i, (acc, ok, s, *rest) in enumerate(evals)
    ]


# aware: every evaluation feasible, 10 s each; errors 0.30, 0.20, 0.25, 0.10
AWARE = journal((0.70, True, 10), (0.80, True, 10), (0.75, True, 10), (0.90, True, 10))
# unaware: two infeasible (trained anyway, 40 s each), best feasible error 0.20 at 4th eval
UNAWARE = journal((0.95, False, 40), (0.60, True, 20), (0.99, False, 40), (0.80, True, 20))


def test_best_error_so_far_ignores_infeasible_evaluations():
    curve = sc.best_error_so_far(UNAWARE)
    assert curve[0] is None
    assert curve[1:] == pytest.approx([0.4, 0.4, 0.2])
    assert sc.best_error_so_far(AWARE) == pytest.approx([0.3, 0.2, 0.2, 0.1])


def test_time_to_best_ratio_by_hand():
    row = sc.time_to_best_ratio(AWARE, UNAWARE)
    # unaware reaches its best (0.20) after 40 + 20 + 40 + 20 = 120 s (4 evaluations);
    # aware first reaches <= 0.20 after 20 s (2 evaluations): 6x and 2x
    assert row["level_error"] == pytest.approx(0.2)
    assert (row["other_s"], row["aware_s"]) == (120.0, 20.0)
    assert row["ratio"] == pytest.approx(6.0)
    assert (row["other_evals"], row["aware_evals"], row["evals_ratio"]) == (4, 2, 2.0)


def test_time_to_best_when_aware_never_reaches_or_other_never_feasible():
    weak = journal((0.5, True, 5), (0.6, True, 5))
    assert sc.time_to_best_ratio(weak, UNAWARE)["ratio"] is None
    none_feasible = journal((0.9, False, 5))
    row = sc.time_to_best_ratio(AWARE, none_feasible)
    assert row["level_error"] is None and row["ratio"] is None


def test_evaluations_per_hour_by_hand():
    # 4 evaluations in 120 s = 120/h; 2 feasible = 60/h; aware: 4 in 40 s = 360/h
    assert sc.evaluations_per_hour(UNAWARE) == pytest.approx(120.0)
    assert sc.evaluations_per_hour(UNAWARE, feasible_only=True) == pytest.approx(60.0)
    assert sc.evaluations_per_hour(AWARE, feasible_only=True) == pytest.approx(360.0)
    assert sc.evaluations_per_hour(journal((0.5, True, 0))) is None


def test_curve_at_is_a_step_function_of_finished_evaluations():
    times = sc.elapsed_seconds(UNAWARE)
    assert times == [40, 60, 100, 120]
    got = sc.curve_at(times, sc.best_error_so_far(UNAWARE), [0, 39, 40, 59, 60, 119, 120, 500])
    want = [np.nan, np.nan, np.nan, np.nan, 0.4, 0.4, 0.2, 0.2]
    np.testing.assert_allclose(got, want)


def test_mean_and_range_skip_missing_values():
    mean, lo, hi = sc.mean_and_range([[np.nan, 0.4, 0.2], [np.nan, np.nan, 0.4]])
    assert math.isnan(mean[0]) and math.isnan(lo[0])
    np.testing.assert_allclose([mean[1], lo[1], hi[1]], [0.4, 0.4, 0.4])
    np.testing.assert_allclose([mean[2], lo[2], hi[2]], [0.3, 0.2, 0.4])
    assert sc.padded([None, 0.3], 4)[1:] == [0.3, 0.3, 0.3]


def test_standalone_seconds_charge_each_network_once_per_search():
    records = journal(
        (0.5, True, 0.01, ["a", "b"]),  # both cache hits in the journal: 0.01 s
        (0.6, True, 0.01, ["a", "c"]),  # a already trained in this search: only c
        (0.7, True, 3.0, ["d"]),  # d's training time is unknown: journalled 3 s kept
    )
    out, unknown = sc.standalone_seconds(records, {"a": 5.0, "b": 7.0, "c": 2.0, "d": None})
    assert [r["seconds"] for r in out] == [12.0, 2.0, 3.0]
    assert [r["journal_seconds"] for r in out] == [0.01, 0.01, 3.0]
    assert unknown == 1
