"""Table and plot of the ``hyperpower`` experiment (from its results.json)."""

from __future__ import annotations

from typing import Any

import numpy as np

from adaptive_cnn.reproduce import search_curves as sc

COLOURS = {"bo": "C0", "bo-unaware": "C3", "random": "C7"}
GRID_POINTS = 200


def _n(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _ms(stats: dict[str, Any], fmt: str, scale: float = 1.0) -> str:
    if stats["mean"] is None:
        return "–"
    return f"{stats['mean'] * scale:{fmt}} ± {stats['sd'] * scale:{fmt}}"


def render_table(results: dict[str, Any]) -> str:
    from adaptive_cnn.reproduce.hyperpower import (
        LABELS,
        OTHERS,
        PAPER_EVALS_RATIO,
        PAPER_TIME_RATIO,
    )

    summary = results["summary"]
    lines = [
        "# hyperpower: search efficiency under an energy budget",
        "",
        f"{summary['seeds']} seed(s), {results['trials']} evaluations per search. Error = 1 − "
        "validation accuracy after proxy training; feasibility (the budget) uses predicted "
        f"device energy, {results['energy_label'].upper()} ({results['energy_note']}). Time "
        "= each search's own training seconds, as if it ran alone (networks another search "
        "trained first are charged their cached training time, not the cache read). Mean ± sd "
        "over seeds.",
        "",
        "| strategy | best feasible error (%) | infeasible trained (mean, total) "
        "| evaluations / h | feasible evaluations / h |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in summary["strategies"].items():
        lines.append(
            f"| {LABELS[name]} | {_ms(row['best_error'], '.2f', 100)} "
            f"| {_n(row['trained_infeasible']['mean'], '.2f')}, "
            f"{row['trained_infeasible_total']} | {_ms(row['evals_per_hour'], '.1f')} "
            f"| {_ms(row['feasible_evals_per_hour'], '.1f')} |"
        )
    lines += [
        "",
        "Constraint-aware BO against each other search (median / largest over seeds):",
        "",
        "| against | time to its best error: other / aware | evaluations to it | feasible "
        "evaluations per hour: aware / other | paper |",
        "|---|---:|---:|---:|---|",
    ]
    for other in OTHERS:
        r = summary["ratios"][other]
        never = f" (aware never reached it in {r['aware_never_reached']} seed(s))"
        lines.append(
            f"| {LABELS[other]} | {_n(r['ratio']['median'], '.2f')}× / "
            f"{_n(r['ratio']['max'], '.2f')}×{never if r['aware_never_reached'] else ''} "
            f"| {_n(r['evals_ratio']['median'], '.2f')}× / {_n(r['evals_ratio']['max'], '.2f')}× "
            f"| {_n(r['feasible_evals_per_hour_ratio']['median'], '.2f')}× / "
            f"{_n(r['feasible_evals_per_hour_ratio']['max'], '.2f')}× "
            f"| up to {PAPER_TIME_RATIO}× faster to the best error; up to "
            f"{PAPER_EVALS_RATIO}× more evaluations in the same time |"
        )
    lines += [
        "",
        "Per seed:",
        "",
        "| seed | budget mJ | strategy | evaluations | infeasible "
        "trained | best error (%) | seconds | read only |",
        "|---|---:|---|---:|---:|---:|---:|:-:|",
    ]
    for s in results["seeds"]:
        for name, row in s["strategies"].items():
            lines.append(
                f"| {s['seed']} | {s['budget_mj']:.4g} | {name} | {row['evaluations']} "
                f"| {row['trained_infeasible']} | {_n(_pct(row['best_error']), '.2f')} "
                f"| {row['seconds']:.1f} | {'no' if name in s['searched'] else 'yes'} |"
            )
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any]):
    """Two panels: best feasible error vs evaluations and vs seconds, mean and min-max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adaptive_cnn.reproduce.hyperpower import LABELS

    fig, (by_eval, by_time) = plt.subplots(1, 2, figsize=(10.5, 4.2), sharey=True)
    seeds = results["seeds"]
    end = max((s["strategies"][n]["elapsed_s"] or [0])[-1] for s in seeds for n in LABELS)
    grid = np.linspace(0.0, max(end, 1e-9), GRID_POINTS)
    for name, label in LABELS.items():
        runs = [s["strategies"][name] for s in seeds]
        length = max(len(r["best_error_so_far"]) for r in runs)
        rows = [sc.padded(r["best_error_so_far"], length) for r in runs]
        _band(by_eval, np.arange(1, length + 1), rows, COLOURS[name], label)
        rows = [sc.curve_at(r["elapsed_s"], r["best_error_so_far"], grid) for r in runs]
        _band(by_time, grid, rows, COLOURS[name], label)
    by_eval.set_xlabel("evaluations (candidate designs trained)")
    by_time.set_xlabel("training seconds (each search as if alone)")
    by_eval.set_ylabel("best feasible validation error (%)")
    for ax in (by_eval, by_time):
        ax.legend(fontsize=8)
    fig.suptitle(
        f"search efficiency, mean and min-max over {len(seeds)} seed(s) "
        f"(feasibility by {results['energy_label']} energy)"
    )
    fig.tight_layout()
    return fig


def _band(ax, x, rows, colour: str, label: str) -> None:
    mean, lo, hi = sc.mean_and_range(rows)
    ax.step(x, 100 * mean, where="post", color=colour, label=label)
    ax.fill_between(x, 100 * lo, 100 * hi, step="post", color=colour, alpha=0.2)
