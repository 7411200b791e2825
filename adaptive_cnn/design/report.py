"""``acnn report``: a design run's tables and PNG plots, read back from its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn import run_folder
from adaptive_cnn.design import journal as journal_file
from selector import pareto_front


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's result (its summary, validated by :func:`adaptive_cnn.run_folder.load_run`)
    and its journal (evaluations in order)."""
    result = dict(run_folder.require_figures(run_folder.load_run(run_dir)))
    return result, journal_file.records(Path(run_dir))


def best_so_far(journal: list[dict[str, Any]]) -> np.ndarray:
    """Best feasible validation accuracy after each evaluation (NaN until one is feasible)."""
    best, out = float("nan"), []
    for record in journal:
        if record["feasible"]:
            accuracy = record["metrics"]["accuracy"]
            best = accuracy if np.isnan(best) else max(best, accuracy)
        out.append(best)
    return np.asarray(out)


def write_plots(run_dir: Path, result: dict[str, Any], journal: list[dict[str, Any]]) -> list[Path]:
    """search.png (best feasible accuracy vs evaluations) and plane.png (energy-accuracy,
    drawn by :func:`plane_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [Path(run_dir) / "search.png", Path(run_dir) / "plane.png"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(journal) + 1), 100 * best_so_far(journal), marker="o")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best feasible validation accuracy (%)")
    config = result["config"]
    if config.get("method") == "single-path":
        ax.set_title("single-path search (one design evaluated)")
    else:
        ax.set_title(f"search ({config['strategy']}, {config['mode']})")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig = plane_figure(result, journal)
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


_BASELINE_MARKERS = ("s", "D", "P", "X", "v", "<", ">", "p", "h", "o")


def baseline_groups(baselines: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """``(names, energy_mj, accuracy %)`` of the baselines, those at one point merged.

    Two systems that are the same network (``single:large`` and ``all-local-largest``)
    land on one point; they get one marker whose label names both.
    """
    groups: dict[tuple[float, float], list[str]] = {}
    for row in baselines:
        point = (round(float(row["energy_mj"]), 9), round(100 * float(row["test_accuracy"]), 9))
        groups.setdefault(point, []).append(str(row["system"]))
    return [(" = ".join(names), e, a) for (e, a), names in groups.items()]


def plane_figure(result: dict[str, Any], journal: list[dict[str, Any]]):
    """The energy-accuracy plane: evaluated designs, their Pareto front, the frontier
    across budgets, the baselines, the designed cascade, the oracle bound and the budget.

    Nothing is written on the data: every mark is named in a legend placed to the right
    of the axes (a baseline by its own marker and colour, with its energy and accuracy),
    so no label can collide with another or cover a point.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    fig, ax = plt.subplots(figsize=(9.5, 5), layout="constrained")
    energy = np.asarray([r["metrics"]["energy_mj"] for r in journal], dtype=float)
    accuracy = np.asarray([100 * r["metrics"]["accuracy"] for r in journal], dtype=float)
    ax.scatter(energy, accuracy, s=14, c="0.6", label="evaluated designs (validation, proxy)")
    if len(journal):
        front = pareto_front(energy, accuracy)
        ax.plot(
            energy[front], accuracy[front], c="0.3", lw=1, marker="o", ms=6, mfc="none",
            label="Pareto front",
        )  # fmt: skip
    frontier = result.get("frontier") or []
    if frontier:  # the designs across budgets, from the networks trained fully
        ax.plot(
            [p["test_energy_mj"] for p in frontier],
            [100 * p["test_accuracy"] for p in frontier],
            c="tab:red", lw=1, ls=":", marker=".", ms=7,
            label=f"frontier: best cascade per budget ({len(frontier)}, test)",
        )  # fmt: skip
    tab10 = plt.get_cmap("tab10").colors
    colours = [tab10[i] for i in (0, 1, 4, 5, 6, 8, 9)]  # not the design's red/green, nor grey
    for i, (names, e, a) in enumerate(baseline_groups(result.get("baselines", []))):
        ax.scatter(
            e,
            a,
            marker=_BASELINE_MARKERS[i % len(_BASELINE_MARKERS)],
            s=40,
            color=colours[i % len(colours)],
            edgecolors="k",
            linewidths=0.4,
            label=f"baseline {names} ({e:.3g} mJ, {a:.1f}%, test)",
            zorder=3,
        )
    ax.scatter(
        result["energy_mj"],
        100 * result["test_accuracy"],
        marker="*",
        s=160,
        c="red",
        label="designed cascade (test)",
        zorder=4,
    )
    ax.scatter(
        result["oracle"]["energy_mj"],
        100 * result["oracle"]["test_accuracy"],
        marker="^",
        s=60,
        c="green",
        label="oracle bound (its networks, test)",
        zorder=4,
    )
    if result.get("budget_mj"):
        ax.axvline(result["budget_mj"], ls="--", c="k", lw=0.8, label="budget")
    ax.set_xscale("log")
    # plain numbers (2, 3, 5 mJ) instead of 2x10^0; minor ticks labelled only on short axes
    ax.xaxis.set_major_formatter(LogFormatter())
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    ax.margins(x=0.06, y=0.08)  # big markers at the extremes stay inside the frame
    ax.set_xlabel(f"device energy per image (mJ, {result['energy_source']})")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, which="both", lw=0.3, c="0.85")
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    return fig
