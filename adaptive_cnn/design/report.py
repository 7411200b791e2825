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
    result = dict(run_folder.load_run(run_dir).summary)
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
    """search.png (best feasible accuracy vs evaluations) and plane.png (energy-accuracy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = result["energy_source"]
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

    fig, ax = plt.subplots(figsize=(7, 5))
    energy = np.asarray([r["metrics"]["energy_mj"] for r in journal])
    accuracy = np.asarray([100 * r["metrics"]["accuracy"] for r in journal])
    ax.scatter(energy, accuracy, s=14, c="0.6", label="evaluated designs (validation, proxy)")
    if len(journal):
        front = pareto_front(energy, accuracy)
        ax.plot(energy[front], accuracy[front], c="0.3", lw=1, label="Pareto front")
    for row in result.get("baselines", []):
        ax.scatter(row["energy_mj"], 100 * row["test_accuracy"], marker="s", s=30)
        ax.annotate(row["system"], (row["energy_mj"], 100 * row["test_accuracy"]), fontsize=7)
    ax.scatter(
        result["energy_mj"],
        100 * result["test_accuracy"],
        marker="*",
        s=160,
        c="red",
        label="designed cascade (test)",
    )
    ax.scatter(
        result["oracle"]["energy_mj"],
        100 * result["oracle"]["test_accuracy"],
        marker="^",
        s=60,
        c="green",
        label="oracle bound (its networks, test)",
    )
    if result.get("budget_mj"):
        ax.axvline(result["budget_mj"], ls="--", c="k", lw=0.8, label="budget")
    ax.set_xscale("log")
    ax.set_xlabel(f"device energy per image (mJ, {label})")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths
