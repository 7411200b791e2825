"""Table and plot of the ``single-path`` experiment (from its results.json)."""

from __future__ import annotations

from typing import Any

COLOURS = {"single-path": "C2", "bo": "C0"}


def render_table(results: dict[str, Any]) -> str:
    sp, bo = results["results"]
    v = results["verdict"]
    s = results.get("settings", {})
    label = sp["energy_label"]
    lines = [
        "# single-path: search cost and design against BO at the same budget",
        "",
        f"Budget {s.get('budget', '?')} per image, dataset {s.get('dataset', '?')}, one local "
        f"mbconv stage, no cloud; source: {results['source']}. Energies are "
        f"{label.upper()} (layer-wise predictor).",
        "",
        f"| method | search epochs | search s | wall s | energy mJ ({label}) | test accuracy "
        "| architecture |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in (sp, bo):
        lines.append(
            f"| {r['method']} | {r['search_epochs']:g} | {r['search_seconds']:.1f} "
            f"| {r['wall_seconds']:.1f} | {r['energy_mj']:.4g} | {r['test_accuracy']:.2%} "
            f"| `{r['arch']}` |"
        )
    lines += [
        "",
        f"Wall-time ratio single-path / BO: **{v['wall_ratio']:.3f}** (target ≤ "
        f"{v['target_ratio']}){_without_final(v)}; search-epoch ratio: "
        f"{_ratio(sp['search_epochs'], bo['search_epochs'])}; single-path design as good "
        f"(accuracy ≥ and energy ≤ BO's): {'yes' if v['design_as_good'] else 'no'}; target "
        f"met: {'yes' if v['met'] else 'no'}.",
        "",
        "Search epochs: single-path counts supernet epochs (warm-up included, every lambda "
        "search); BO counts proxy epochs per trained candidate. Search seconds are the "
        "searches' own training time; wall seconds the whole `acnn design` run (final "
        "training and testing included).",
        "",
    ]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "–"


def plot_cost(results: dict[str, Any]):
    """Left: search and wall seconds per method; right: energy vs accuracy of the designs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["results"]
    fig, (bars, plane) = plt.subplots(1, 2, figsize=(9.6, 4.0))
    x = range(len(rows))
    bars.bar(
        [i - 0.2 for i in x], [r["search_seconds"] for r in rows], 0.4, label="search s", color="C1"
    )
    bars.bar(
        [i + 0.2 for i in x], [r["wall_seconds"] for r in rows], 0.4, label="wall s", color="C4"
    )
    bars.set_xticks(list(x), [r["method"] for r in rows])
    bars.set_ylabel("seconds")
    bars.set_title("search cost")
    bars.legend()
    for r in rows:
        plane.plot(
            [r["energy_mj"]],
            [100 * r["test_accuracy"]],
            "o",
            ms=8,
            color=COLOURS.get(r["method"], "k"),
            label=r["method"],
        )
    plane.set_xlabel(f"device energy per image, mJ ({rows[0]['energy_label']})")
    plane.set_ylabel("test accuracy (%)")
    plane.set_title("found designs")
    plane.legend()
    fig.tight_layout()
    return fig


def _without_final(v: dict) -> str:
    """The ratio without each method's final training of its chosen network, if recorded."""
    ratio = v.get("ratio_without_final_training")
    return "" if ratio is None else f" ({ratio:.3f} without each one's final training)"
