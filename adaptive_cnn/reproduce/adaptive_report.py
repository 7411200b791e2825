"""Table and plot of the ``adaptive`` experiment (from its results.json)."""

from __future__ import annotations

from typing import Any

MARKERS = {  # kind -> (marker, colour, legend label)
    "single": ("o", "C0", "single network"),
    "big-little": ("s", "C1", "big/little (fixed pair)"),
    "acnn": ("*", "C3", "acnn design (local)"),
    "cloud": ("^", "C7", "all-cloud"),
    "local+cloud": ("v", "C2", "acnn design + cloud"),
    "oracle": ("x", "k", "oracle bound (same networks)"),
}


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _margin_line(rule: str) -> str:
    if rule == "paired-se":
        return (
            "Thresholds are chosen on validation for the iso target raised by the standard "
            "error of each cascade's accuracy minus the best single's on the same images."
        )
    return "Thresholds are chosen on validation for the iso target as is (no margin)."


def render_table(results: dict[str, Any]) -> str:
    """Markdown: one table per seed, then the headline against the paper."""
    label = results["energy_label"]
    lines = [
        "# adaptive: device energy per image vs test accuracy",
        "",
        f"Energies are {label.upper()}: {results['energy_note']}.",
        f"Iso-accuracy: test accuracy within {results['iso_points']:g} points of the best "
        "single network's; ratios are shown only between systems at iso-accuracy "
        "(× = the baseline's energy / this system's).",
        _margin_line(results.get("iso_margin", "none")),
        "",
    ]
    for s in results["seeds"]:
        lines += _seed_table(s, label)
    summary = results["summary"]
    lines += [
        "## Headline (acnn's best design at iso-accuracy)",
        "",
        "| figure | ours (median over seeds) | ours (largest) | paper |",
        "|---|---:|---:|---:|",
        f"| energy reduction vs best big/little | "
        f"{_num(summary['median_reduction_vs_big_little'], '.2f')}× | "
        f"{_num(summary['max_reduction_vs_big_little'], '.2f')}× | up to "
        f"{summary['paper_reduction_vs_big_little']:g}× |",
        f"| energy reduction vs best single | "
        f"{_num(summary['median_reduction_vs_single'], '.2f')}× | "
        f"{_num(summary['max_reduction_vs_single'], '.2f')}× | – |",
        "",
        f"Seeds with a ratio at iso-accuracy: {summary['seeds_with_reduction_vs_big_little']} of "
        f"{summary['seeds']} (a seed has none when no design or no big/little pair reaches "
        "iso-accuracy on test).",
        "",
    ]
    return "\n".join(lines)


def _seed_table(s: dict[str, Any], label: str) -> list[str]:
    head = s["headline"]
    lines = [
        f"## Seed {s['seed']}",
        "",
        f"Budget {s['budget_mj']:.4g} mJ ({label}) = the best single (`{s['best_single']}`)'s "
        f"energy / {s['target_ratio']:g}; "
        f"reference test accuracy {s['reference_test_accuracy']:.2%}; best big/little at "
        f"iso-accuracy: {head['best_big_little'] or 'none'}.",
        "",
        f"| system | stages | test accuracy | energy mJ ({label}) | iso | × vs best single "
        "| × vs best big/little | design / oracle |",
        "|---|---|---:|---:|:-:|---:|---:|---:|",
    ]
    for r in s["systems"]:
        oracle = r.get("design_over_oracle")
        lines.append(
            f"| {r['system']} | {len(r['stages'])}: {' → '.join(f'`{a}`' for a in r['stages'])} "
            f"| {r['test_accuracy']:.2%} | {r['energy_mj']:.4g} | {'yes' if r['iso'] else 'no'} "
            f"| {_num(r['x_vs_best_single'], '.2f')} | {_num(r['x_vs_best_big_little'], '.2f')} "
            f"| {_num(oracle, '.2f')} |"
        )
    ratio = head["reduction_vs_big_little"]
    lines += [
        "",
        f"Largest reduction vs the best big/little at iso-accuracy: "
        f"{_num(ratio, '.2f')}× ({head['design'] or 'no design at iso-accuracy'}).",
        "",
    ]
    return lines


def plot_plane(results: dict[str, Any]):
    """Energy (log x) vs test accuracy of every system and seed, with oracle points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    seen: set[str] = set()
    for s in results["seeds"]:
        for r in s["systems"]:
            _mark(ax, r["kind"], r["energy_mj"], r["test_accuracy"], seen)
            if "oracle" in r:
                o = r["oracle"]
                _mark(ax, "oracle", o["energy_mj"], o["accuracy"], seen)
                ax.plot(
                    [o["energy_mj"], r["energy_mj"]],
                    [100 * o["accuracy"], 100 * r["test_accuracy"]],
                    ":",
                    color="0.6",
                    lw=0.8,
                )
        level = 100 * s["reference_test_accuracy"] - results["iso_points"]
        label = "iso-accuracy bound" if s is results["seeds"][0] else None
        ax.axhline(level, color="0.5", ls="--", lw=0.8, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(f"device energy per image, mJ ({results['energy_label']}, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"adaptive systems, {len(results['seeds'])} seed(s)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _mark(ax, kind: str, energy: float, accuracy: float, seen: set[str]) -> None:
    marker, colour, label = MARKERS[kind]
    ax.plot(
        [energy],
        [100 * accuracy],
        marker,
        color=colour,
        ms=8 if marker == "*" else 6,
        ls="none",
        label=None if kind in seen else label,
    )
    seen.add(kind)
