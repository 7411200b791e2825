"""Experiment ``offload``: device energy per image vs uplink bandwidth and round-trip time.

For a finished design (``acnn design --out DIR``, two local stages and a cloud stage), the
stages' class probabilities are recomputed once on the validation and test splits from the
saved weights; then, exactly for every link setting, the device energy per image of
all-local (the largest local stage alone, and the local cascade with no cloud exit),
all-cloud (radio + idle waiting) and the designed cascade (with its thresholds fixed, and
with thresholds re-optimised per setting for the least energy at the design's validation
accuracy), and where they cross. Local energies are the design's layer-wise predictions
and radio energies come from the communication model: all are estimates.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn.flag_values import int_in
from adaptive_cnn.reproduce.offload_model import SWEEPS
from adaptive_cnn.reproduce.registry import Experiment, ReproduceError, register_experiment
from adaptive_cnn.reproduce.writer import ResultWriter

PAPER = (
    "Stamoulis et al., Designing Adaptive Neural Networks for Energy-Constrained Image "
    "Classification (ICCAD 2018): local/cloud trade-off of the adaptive system"
)
QUICK_POINTS, FULL_POINTS = 7, 41
QUICK_IMAGES = 2000  # images per split in --quick (seeded subset)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run-dir",
        type=Path,
        default=Path("runs/design"),
        metavar="DIR",
        help="a finished acnn design run folder with a cloud stage (default: runs/design)",
    )
    p.add_argument(
        "--link",
        metavar="NAME",
        help="link whose other numbers the sweeps keep (default: the design's; acnn devices)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder, if not the default")
    p.add_argument(
        "--bandwidth",
        default="0.1:100",
        metavar="MIN:MAX",
        help="uplink bandwidth range in Mbit/s, log grid (default 0.1:100)",
    )
    p.add_argument(
        "--rtt",
        default="5:500",
        metavar="MIN:MAX",
        help="round-trip time range in ms, log grid (default 5:500)",
    )
    p.add_argument(
        "--points",
        type=int_in(2, 10_000),
        metavar="N",
        help=f"grid points per sweep (default {FULL_POINTS}; --quick {QUICK_POINTS})",
    )
    p.add_argument(
        "--no-reoptimise",
        action="store_true",
        help="skip the cascade with thresholds re-optimised per link setting",
    )


def run(args: argparse.Namespace, out: ResultWriter) -> dict[str, Any]:
    from adaptive_cnn.reproduce import offload_model as om
    from adaptive_cnn.reproduce.offload_report import plot_sweeps, render_table

    grids = {"uplink_mbps": _grid(args.bandwidth, args, "--bandwidth")}
    grids["rtt_ms"] = _grid(args.rtt, args, "--rtt")
    design = load_design(args.run_dir)
    run = design[0]
    link, idle_w, device = _link(design, args.link)
    out.resolve(link=link.to_dict(), idle_power_w=idle_w, device=device, grids=grids)
    setup, subset = build_setup(design, args, idle_w, link, out)
    reoptimise = not args.no_reoptimise
    nominal = om.strategies_at(setup, link, reoptimise)
    rows = []
    for parameter, values in grids.items():
        out.say(f"sweeping {SWEEPS[parameter]}: {len(values)} settings")
        rows += om.sweep(setup, link, parameter, values, reoptimise, _progress(out, parameter))
    crossings = crossing_rows(rows, grids, reoptimise)
    closed = closed_form_rows(setup, link, nominal)
    check = design_check(design, nominal, link, subset)
    results = {
        "paper": PAPER,
        "energy_label": "estimated",
        "energy_note": _energy_note(design, link),
        "run_dir": args.run_dir,
        "link": link.to_dict(),
        "idle_power_w": idle_w,
        "cloud_latency_ms": setup.cloud_latency_ms,
        "payload_bytes": setup.payload_bytes,
        "local_energy_mj": setup.local_energy_mj,
        "thresholds": setup.thresholds,
        "target_val_accuracy": setup.target_val_accuracy,
        "images": {"val": setup.val.n_images, "test": setup.test.n_images, "subset": subset},
        "nominal": {k: vars(v) for k, v in nominal.items()},
        "crossings": crossings,
        "closed_form": closed,
        "design_check": check,
    }
    out.write_json("results.json", results)
    out.write_csv("sweep.csv", rows)
    out.write_csv("crossings.csv", crossings + closed)
    out.write_text("table.md", render_table(results, len(run.local_stages)))
    out.save_figure("energy_vs_link.png", plot_sweeps(rows, grids, link, crossings))
    return _summary(nominal, crossings, closed)


def _grid(text: str, args: argparse.Namespace, flag: str) -> list[float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise ReproduceError(f"{flag} must be MIN:MAX, e.g. 0.1:100, got {text!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ReproduceError(f"{flag} needs 0 < MIN < MAX, got {text!r}")
    points = args.points or (QUICK_POINTS if args.quick else FULL_POINTS)
    if points < 2:
        raise ReproduceError(f"--points must be >= 2, got {points}")
    return [float(v) for v in np.geomspace(lo, hi, points)]


def load_design(run_dir: Path):
    """The run folder and its summary; corrupt or incomplete folders are one-line errors
    (:class:`~adaptive_cnn.errors.RunFolderError` from :func:`adaptive_cnn.run_folder.load_run`)."""
    from adaptive_cnn.run_folder import load_run

    if not run_dir.is_dir():
        raise ReproduceError(
            f"{run_dir} is not a folder: pass --run-dir, the --out folder of `acnn design`"
        )
    run = load_run(run_dir)
    summary = run.summary
    if run.cloud_stage is None:
        raise ReproduceError(
            f"{run_dir}: the design has no cloud stage (link none); the offload experiment "
            "needs one (acnn design --link wifi)"
        )
    return run, summary


def _link(design, name: str | None):
    from energy_models.devices import load_device

    run, _ = design
    device = load_device(run.device)
    return device.link(name or run.link), device.power.idle_w, device.name


def build_setup(design, args, idle_w: float, link, out: ResultWriter):
    """Stage outcomes on validation and test, and the design's costs, as an OffloadSetup."""
    from adaptive_cnn.reproduce import offload_model as om
    from selector import CascadeData, evaluate

    run, summary = design
    val_probs, val_labels, test_probs, test_labels, subset = stage_probs(design, args, out)
    metric = run.policy.metric
    val = CascadeData.from_probs(val_probs, val_labels, metric)
    test = CascadeData.from_probs(test_probs, test_labels, metric)
    local = summary["stages"][: len(run.local_stages)]
    cloud = run.cloud_stage
    setup = om.OffloadSetup(
        local_energy_mj=tuple(float(s["energy_mj"]) for s in local),
        local_latency_ms=tuple(float(s.get("latency_ms", 0.0)) for s in local),
        payload_bytes=float(cloud.payload_bytes or math.prod(run.input.shape)),
        idle_power_w=idle_w,
        cloud_latency_ms=float(summary.get("cloud_latency_ms", run.cloud_latency_ms)),
        thresholds=tuple(run.policy.thresholds),
        val=val,
        test=test,
        target_val_accuracy=0.0,
    )
    target = float(evaluate(val, setup.costs(link), np.asarray(setup.thresholds)).accuracy[0])
    return dataclasses.replace(setup, target_val_accuracy=target), subset


def stage_probs(design, args, out: ResultWriter):
    """Class probabilities of every stage on the validation and test splits."""
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.training.trainer import predict_probs

    run, summary = design
    config = summary.get("config") or {}
    name = config.get("dataset", run.input.dataset)
    data_dir = args.data_dir or config.get("data_dir")
    split_seed = int(config.get("split_seed", 0))
    out.say(f"loading {name} (split seed {split_seed})")
    dataset = load_dataset(name, data_dir=data_dir, seed=split_seed)
    if tuple(dataset.input_shape) != tuple(run.input.shape):
        raise ReproduceError(
            f"{name} images are {dataset.input_shape}, the design's input is {run.input.shape}"
        )
    splits: list[Any] = []
    subset = False
    for split in (dataset.val, dataset.test):
        images, labels = _subset(split.images, split.labels, QUICK_IMAGES if args.quick else None)
        subset |= len(labels) < len(split.labels)
        probs = []
        for stage in run.stages:
            out.say(f"{stage.name} ({stage.arch}) on {len(labels)} images")
            probs.append(predict_probs(run.load_network(stage), images, run.input.preprocessing))
        splits += [probs, labels]
    return (*splits, subset)


def _subset(images: np.ndarray, labels: np.ndarray, n: int | None):
    if n is None or len(labels) <= n:
        return images, labels
    keep = np.sort(np.random.default_rng(0).choice(len(labels), n, replace=False))
    return images[keep], labels[keep]


def _progress(out: ResultWriter, parameter: str):
    def report(done: int, total: int) -> None:
        if done == total or done % math.ceil(total / 4) == 0:
            out.say(f"  {parameter}: {done}/{total}")

    return report


def crossing_rows(
    rows: Sequence[Mapping[str, Any]], grids: Mapping[str, Sequence[float]], reoptimise: bool
) -> list[dict[str, Any]]:
    """Crossovers of the reported strategy pairs along each sweep (grid, interpolated)."""
    from adaptive_cnn.reproduce import offload_model as om

    found = []
    for parameter, values in grids.items():
        energy = {
            s: [r["energy_mj"] for r in rows if r["parameter"] == parameter and r["strategy"] == s]
            for s in om.STRATEGIES
        }
        for a, b in om.PAIRS:
            if not (energy[a] and energy[b]):
                continue
            crossings = om.find_crossings(values, energy[a], energy[b], log_x=True)
            found += [_crossing_row(parameter, a, b, c) for c in crossings]
            if not crossings:
                found.append(_no_crossing_row(parameter, a, b, energy[a], energy[b], values))
    return found


def _crossing_row(parameter: str, a: str, b: str, c) -> dict[str, Any]:
    side = "above" if c.a_cheaper_above else "below"
    return {
        "sweep": parameter,
        "a": a,
        "b": b,
        "method": "grid, interpolated",
        "value": c.value,
        "finding": f"{a} cheaper than {b} {side} {c.value:.3g} ({c.lower:.3g}-{c.upper:.3g})",
    }


def _no_crossing_row(parameter, a, b, ea, eb, values) -> dict[str, Any]:
    cheaper = a if np.mean(np.asarray(ea) - np.asarray(eb)) < 0 else b
    same = np.allclose(ea, eb, rtol=1e-9, atol=1e-12)
    finding = (
        f"{a} and {b} cost the same over the range"
        if same
        else f"no crossover in {values[0]:.3g}-{values[-1]:.3g}: {cheaper} is cheaper than "
        f"{b if cheaper == a else a} throughout"
    )
    return {
        "sweep": parameter,
        "a": a,
        "b": b,
        "method": "grid",
        "value": None,
        "finding": finding,
    }


def closed_form_rows(setup, link, nominal) -> list[dict[str, Any]]:
    """Exact break-even bandwidth and RTT of all-cloud against the two all-local options."""
    from adaptive_cnn.reproduce import offload_model as om

    rows = []
    args = (setup.payload_bytes, setup.idle_power_w, setup.cloud_latency_ms)
    floors = {  # all-cloud at infinite bandwidth, and at zero RTT
        "uplink_mbps": setup.cloud_energy_mj(link.with_overrides(uplink_mbps=1e12)),
        "rtt_ms": setup.cloud_energy_mj(link.with_overrides(rtt_ms=0.0)),
    }
    fixed = {"uplink_mbps": f"RTT {link.rtt_ms:g} ms", "rtt_ms": f"{link.uplink_mbps:g} Mbit/s"}
    for local in (om.ALL_LOCAL, om.LOCAL_CASCADE):
        energy = nominal[local].energy_mj
        for parameter, value, side in (
            ("uplink_mbps", om.breakeven_bandwidth_mbps(link, *args, energy), "above"),
            ("rtt_ms", om.breakeven_rtt_ms(link, *args, energy), "below"),
        ):
            rows.append(
                _closed_row(parameter, local, energy, value, side, fixed[parameter], floors)
            )
    return rows


def _closed_row(parameter, local, energy, value, side, fixed, floors) -> dict[str, Any]:
    where = "infinite bandwidth" if parameter == "uplink_mbps" else "zero RTT"
    if value is None:
        finding = (
            f"all-cloud is never cheaper than {local} ({energy:.3g} mJ) at {fixed}: even at "
            f"{where} it costs {floors[parameter]:.3g} mJ"
        )
    else:
        finding = f"all-cloud cheaper than {local} ({energy:.3g} mJ) {side} {value:.4g} at {fixed}"
    return {
        "sweep": parameter,
        "a": "all-cloud",
        "b": local,
        "method": "closed form",
        "value": value,
        "finding": finding,
    }


def design_check(design, nominal, link, subset: bool) -> dict[str, Any]:
    """The fixed-threshold cascade at the design's own link against result.json's figures.

    Compared only on the whole test split (not a --quick subset) at the design's link.
    """
    from adaptive_cnn.reproduce import offload_model as om

    run, summary = design
    point = nominal[om.FIXED]
    same_link = link.name == run.link
    check = {
        "same_link_as_design": same_link,
        "reported_energy_mj": summary.get("energy_mj"),
        "reported_test_accuracy": summary.get("test_accuracy"),
        "recomputed_energy_mj": point.energy_mj,
        "recomputed_test_accuracy": point.accuracy,
    }
    if same_link and not subset and summary.get("energy_mj") is not None:
        check["energy_matches"] = bool(np.isclose(point.energy_mj, summary["energy_mj"], 1e-6))
        check["accuracy_matches"] = bool(
            np.isclose(point.accuracy, summary.get("test_accuracy", np.nan), 0, 1e-9)
        )
    return check


def _energy_note(design, link) -> str:
    run, summary = design
    return (
        f"ESTIMATED: local stage energies are the design's layer-wise predictions "
        f"({summary.get('energy_note', run.energy_source)}); radio energy is the "
        f"communication model of link {link.name!r} ({link.source.strip() or 'user-defined'})"
    )


def _summary(nominal, crossings, closed) -> dict[str, Any]:
    from adaptive_cnn.reproduce import offload_model as om

    summary: dict[str, Any] = {"energy_label": "estimated"}
    for name, key in ((om.ALL_LOCAL, "all_local"), (om.LOCAL_CASCADE, "local_cascade")):
        summary[f"{key}_mj"] = nominal[name].energy_mj
    summary["all_cloud_mj"] = nominal[om.ALL_CLOUD].energy_mj
    summary["designed_fixed_mj"] = nominal[om.FIXED].energy_mj
    if om.REOPTIMISED in nominal:
        summary["designed_reoptimised_mj"] = nominal[om.REOPTIMISED].energy_mj
    summary["grid_crossovers"] = sum(1 for c in crossings if c["value"] is not None)
    for row in closed:
        if row["b"] == om.ALL_LOCAL:
            summary[f"cloud_vs_all_local_breakeven_{row['sweep']}"] = row["value"]
    return summary


def _ours(head: Mapping[str, Any]) -> str:
    """The headline as one sentence (the README's table)."""
    energies = (
        f"all-cloud {head['all_cloud_mj']:.3g} mJ, local cascade {head['local_cascade_mj']:.3g} "
        f"mJ, all-local {head['all_local_mj']:.3g} mJ per image"
    )
    if not head["grid_crossovers"]:
        return f"no crossover in the sweep: {energies}"
    mbps = head["cloud_vs_all_local_breakeven_uplink_mbps"]
    rtt = head["cloud_vs_all_local_breakeven_rtt_ms"]
    return (
        f"{head['grid_crossovers']} crossover(s); all-cloud = all-local at "
        + (f"{mbps:.3g} Mbit/s uplink" if mbps else "–")
        + (f", {rtt:.3g} ms RTT" if rtt else "")
        + f" ({energies})"
    )


EXPERIMENT = register_experiment(
    Experiment(
        name="offload",
        title="device energy per image vs uplink bandwidth and RTT; all-local/all-cloud/cascade",
        paper=PAPER,
        add_arguments=add_arguments,
        run=run,
        ours=_ours,
    )
)
