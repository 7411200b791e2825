"""table.md and the PNG of the ``offload`` experiment (from its results, no computing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptive_cnn.reproduce import offload_model as om
from adaptive_cnn.reproduce.offload_model import SWEEPS


def render_table(results: Mapping[str, Any], n_local: int) -> str:
    """table.md: the nominal link, the strategies there, then the crossovers."""
    link = results["link"]
    lines = [
        "# Offload: device energy per image vs the link",
        "",
        f"Design `{results['run_dir']}` ({n_local} local stages + cloud). "
        f"{results['energy_note']}.",
        "",
        f"Nominal link `{link['name']}`: uplink {link['uplink_mbps']:g} Mbit/s, RTT "
        f"{link['rtt_ms']:g} ms, radio {link['base_power_w']:g} W + {link['power_per_mbps_w']:g} "
        f"W per Mbit/s, tail {link['tail_share'] * link['tail_energy_mj']:g} mJ per transfer; "
        f"device idle {results['idle_power_w']:g} W while waiting; cloud inference "
        f"{results['cloud_latency_ms']:g} ms; {results['payload_bytes']:g} B per image. "
        f"Test split: {results['images']['test']} images.",
        "",
        "## Strategies at the nominal link (energies estimated)",
        "",
        "| strategy | energy (mJ/image, est.) | test accuracy | offload rate |",
        "|---|---:|---:|---:|",
    ]
    for point in results["nominal"].values():
        lines.append(
            f"| {point['strategy']} | {point['energy_mj']:.3f} | {point['accuracy']:.4f} | "
            f"{point['offload_rate']:.3f} |"
        )
    check = results["design_check"]
    if "energy_matches" in check:
        verdict = "match" if check["energy_matches"] and check["accuracy_matches"] else "MISMATCH"
        lines += [
            "",
            f"Check: the fixed-threshold cascade at the design's link gives "
            f"{check['recomputed_energy_mj']:.4f} mJ and accuracy "
            f"{check['recomputed_test_accuracy']:.4f}; result.json reports "
            f"{check['reported_energy_mj']:.4f} mJ and {check['reported_test_accuracy']:.4f} "
            f"({verdict}).",
        ]
    elif results["images"]["subset"]:
        lines += ["", "(--quick: a subset of the splits, so not compared with result.json.)"]
    lines += [
        "",
        "The re-optimised cascade takes, at each link setting, the least-energy thresholds on "
        f"the validation split that keep the design's validation accuracy "
        f"({results['target_val_accuracy']:.4f}).",
        "",
        "## Crossovers",
        "",
        "| sweep | method | finding |",
        "|---|---|---|",
    ]
    for row in [*results["closed_form"], *results["crossings"]]:
        lines.append(f"| {SWEEPS[row['sweep']]} | {row['method']} | {row['finding']} |")
    return "\n".join(lines) + "\n"


def plot_sweeps(rows, grids, link, crossings):
    """Energy (top) and offload rate (bottom) vs bandwidth (left) and RTT (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex="col", height_ratios=(3, 1.4))
    styles = dict(zip(om.STRATEGIES, ("C3-", "C1--", "C0-", "C2-", "k:"), strict=True))
    for col, parameter in enumerate(grids):
        top, bottom = axes[0, col], axes[1, col]
        for strategy, style in styles.items():
            sel = [r for r in rows if r["parameter"] == parameter and r["strategy"] == strategy]
            if not sel:
                continue
            x = [r["value"] for r in sel]
            top.plot(x, [r["energy_mj"] for r in sel], style, label=strategy, lw=1.6)
            if strategy in (om.FIXED, om.REOPTIMISED):
                bottom.plot(x, [r["offload_rate"] for r in sel], style, label=strategy)
        nominal = getattr(link, parameter)
        for ax in (top, bottom):
            ax.axvline(nominal, color="grey", lw=0.8, ls="--")
            ax.set_xscale("log")
        for c in crossings:
            if c["sweep"] == parameter and c["value"] is not None:
                top.axvline(c["value"], color="C4", lw=0.6, alpha=0.6)
        top.set(yscale="log", ylabel="device energy per image (mJ, estimated)")
        top.set_title(f"vs {SWEEPS[parameter]} ({link.name}; dashed: nominal {nominal:g})")
        bottom.set(xlabel=SWEEPS[parameter], ylabel="offload rate", ylim=(-0.05, 1.05))
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle("All-local vs all-cloud vs the designed cascade (energies estimated)")
    fig.tight_layout()
    return fig
