"""Search-efficiency arithmetic on journals (pure; the ``hyperpower`` experiment).

A journal is a list of evaluation records in order (``index``), each with ``feasible``,
``metrics["accuracy"]`` (validation, proxy training) and ``seconds`` (the wall seconds of
that evaluation's training). Time along a search is the running sum of ``seconds``; the
optimiser's own time between evaluations is not journalled and is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TOL = 1e-12


def best_error_so_far(records: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """After each evaluation, the least error (1 - accuracy) of the feasible ones so far;
    None until the first feasible evaluation."""
    best: float | None = None
    curve: list[float | None] = []
    for r in records:
        if r["feasible"]:
            error = 1.0 - float(r["metrics"]["accuracy"])
            best = error if best is None else min(best, error)
        curve.append(best)
    return curve


def elapsed_seconds(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """Cumulative journalled seconds at the end of each evaluation."""
    return [float(v) for v in np.cumsum([float(r["seconds"]) for r in records])]


def first_reaching(curve: Sequence[float | None], level: float) -> int | None:
    """Position (0-based) where the error curve first is <= ``level``; None if never."""
    for i, value in enumerate(curve):
        if value is not None and value <= level + TOL:
            return i
    return None


def time_to_best_ratio(
    aware: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """How much sooner the aware search reaches the other search's best feasible error.

    ``level`` = the other's final best error; ``other_s`` its seconds to first reach it,
    ``aware_s`` the aware search's seconds to first reach an error <= level (None when it
    never does), ``ratio`` = other_s / aware_s; the same in evaluations.
    """
    other_curve, aware_curve = best_error_so_far(other), best_error_so_far(aware)
    level = other_curve[-1] if other_curve else None
    row: dict[str, Any] = {"level_error": level, "other_s": None, "aware_s": None, "ratio": None}
    row |= {"other_evals": None, "aware_evals": None, "evals_ratio": None}
    if level is None:
        return row
    i, j = first_reaching(other_curve, level), first_reaching(aware_curve, level)
    row["other_s"], row["other_evals"] = elapsed_seconds(other)[i], i + 1
    if j is None:
        return row
    row["aware_s"], row["aware_evals"] = elapsed_seconds(aware)[j], j + 1
    row["ratio"] = row["other_s"] / row["aware_s"] if row["aware_s"] > 0 else None
    row["evals_ratio"] = row["other_evals"] / row["aware_evals"]
    return row


def evaluations_per_hour(records: Sequence[Mapping[str, Any]], feasible_only: bool = False):
    """Evaluations (or feasible ones) per hour of journalled time; None with no time."""
    total = sum(float(r["seconds"]) for r in records)
    count = sum(1 for r in records if r["feasible"] or not feasible_only)
    return count * 3600.0 / total if total > 0 else None


def curve_at(times: Sequence[float], curve: Sequence[float | None], grid: Sequence[float]):
    """The step curve (value after the last evaluation finished by t) at each grid time;
    NaN before the first feasible value."""
    values = np.array([np.nan if v is None else v for v in curve], dtype=float)
    idx = np.searchsorted(np.asarray(times, dtype=float), np.asarray(grid, dtype=float), "right")
    out = np.full(len(grid), np.nan)
    has = idx > 0
    out[has] = values[idx[has] - 1]
    return out


def mean_and_range(rows: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: mean, min, max over the rows that have a value (NaN where none)."""
    data = np.asarray(rows, dtype=float)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError("need a 2-D array with at least one row")
    mean, lo, hi = (np.full(data.shape[1], np.nan) for _ in range(3))
    seen = ~np.all(np.isnan(data), axis=0)
    mean[seen] = np.nanmean(data[:, seen], axis=0)
    lo[seen] = np.nanmin(data[:, seen], axis=0)
    hi[seen] = np.nanmax(data[:, seen], axis=0)
    return mean, lo, hi


def padded(curve: Sequence[float | None], length: int) -> list[float]:
    """The curve as floats (NaN for None), padded with its last value to ``length``."""
    values = [math.nan if v is None else float(v) for v in curve]
    last = values[-1] if values else math.nan
    return values + [last] * (length - len(values))


def standalone_seconds(
    records: Sequence[Mapping[str, Any]], train_seconds: Mapping[str, float | None]
) -> tuple[list[dict[str, Any]], int]:
    """Records re-timed as if the search had run alone with an empty training cache.

    Searches share the training cache, so a journalled ``seconds`` is small when another
    search (or an earlier run) trained the networks first. Here each evaluation is charged
    the original training seconds of those of its networks not already trained earlier
    in the same search (a network the search evaluated before costs nothing again).

    Args:
        records: the journal's evaluations in order, each with ``stages``.
        train_seconds: per architecture, its training's own seconds (None: unknown).

    Returns:
        (records with ``seconds`` replaced and the journalled value kept as
        ``journal_seconds``, number of evaluations left at their journalled time because a
        network's training time was unknown).
    """
    seen: set[str] = set()
    out, unknown = [], 0
    for r in records:
        new = [a for a in dict.fromkeys(r["stages"]) if a not in seen]
        costs = [train_seconds.get(a) for a in new]
        seen.update(new)
        if any(c is None for c in costs):
            unknown += 1
            seconds = float(r["seconds"])
        else:
            seconds = float(sum(costs))
        out.append({**r, "seconds": seconds, "journal_seconds": float(r["seconds"])})
    return out, unknown
