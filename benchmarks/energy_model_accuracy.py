"""Accuracy and speed of the layer-wise energy model on this machine.

Takes a profile to fit (layer sweep + network set, seed 0), a held-out profile of other
random networks of the families (seed 1) and one of networks *outside* the families
(:mod:`energy_models.outside_networks`: 1x1 convolutions, depthwise without batch norm,
residual blocks, global-pool heads, every activation, 3x32x32 inputs; with the anchors, so
session drift is measured), fits the predictor (kernel-level for onnxruntime), and reports
per-layer-kind RMSPE and model size, network-level MAPE and the share within +-10% beside
the FLOPs baseline on both held-out sets; then times the vectorised path on 10,000 random
candidate networks (describing them with the block memo, and predicting them from their
layer table). Profiles are kept under ``--work`` so a re-run resumes instead of
re-measuring (``--fresh`` starts over).

    python benchmarks/energy_model_accuracy.py [--quick] [--runtime torch] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from adaptive_cnn.energy_report import format_report
from adaptive_cnn.errors import AcnnError
from adaptive_cnn.networks import describe_arch, get_family, list_networks
from adaptive_cnn.profiling import ProfileRequest, default_shapes, sweep_size, take_profile
from adaptive_cnn.progress import ProgressLine
from energy_models.accuracy import accuracy_report
from energy_models.devices import load_device
from energy_models.errors import EnergyModelError
from energy_models.features import LayerTable
from energy_models.fitting import fit_predictor
from energy_models.predictor import EnergyPredictor
from energy_models.profile_store import ProfileData


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick profiles (tests, smoke)")
    parser.add_argument("--runtime", default="torch", help="torch | torchscript | onnxruntime")
    parser.add_argument("--threads", type=int, default=None, help="default: the device's")
    parser.add_argument("--heldout-networks", type=int, default=None, metavar="N")
    parser.add_argument(
        "--outside-networks",
        type=int,
        default=None,
        metavar="N",
        help="networks outside the families in the second held-out set (default 60; quick 24)",
    )
    parser.add_argument(
        "--heldout-layers",
        type=int,
        default=600,
        metavar="N",
        help="sampled layer configurations in the held-out profile",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=10_000,
        metavar="N",
        help="networks for the vectorised-prediction timing",
    )
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/energy_profiles"))
    parser.add_argument("--fresh", action="store_true", help="delete earlier profiles first")
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="time the fit networks and both held-out sets in one session, shuffled and "
        "round by round together (the machine's drift between sessions then cancels); the "
        "predictor is fitted on the fit networks only",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/energy_model_accuracy.json")
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only print the markdown tables of an earlier result",
    )
    return parser.parse_args(argv)


def _profile(
    out: Path,
    args: argparse.Namespace,
    seed: int = 0,
    layers: int | None = None,
    networks: int | None = None,
    skip_layers: bool = False,
) -> float:
    """Take (or resume) one profile of this machine, as ``acnn profile`` does with
    ``--runtime``, ``--threads``, ``--quick``, ``--seed``, ``--layers`` and ``--networks``;
    its wall time in seconds (about 0 when it was complete)."""
    device = load_device("local")
    request = ProfileRequest(
        out=out,
        device=device,
        runtime=args.runtime,
        threads=args.threads or device.threads,
        size=sweep_size(args.quick, layers, networks, args.runtime),
        shapes=default_shapes(args.quick),
        seed=seed,
        quick=args.quick,
        skip_layers=skip_layers,
    )
    start = time.perf_counter()
    summary = take_profile(request, progress=ProgressLine)
    print(
        f"{out}: {summary.layers} layer and {summary.networks} network records "
        f"({summary.noisy} flagged noisy); power {summary.power} ({summary.label})"
    )
    return time.perf_counter() - start


def _profile_outside(out: Path, args: argparse.Namespace, count: int) -> float:
    """Time (or resume) the networks outside the families, with the anchors; seconds."""
    from adaptive_cnn.profiling import anchor_set
    from energy_models.outside_networks import outside_networks
    from energy_models.power import make_power_source
    from energy_models.profile_store import ProfileStore
    from energy_models.profiler import Profiler, TimingSettings

    device = load_device("local")
    threads = args.threads or device.threads
    power = make_power_source(device.power.to_dict())
    settings = {"device": device.name, "runtime": args.runtime, "threads": threads,
                "set": "outside", "count": count}  # fmt: skip
    store = ProfileStore.open(out, settings)
    request = ProfileRequest(out, device, args.runtime, threads, sweep_size(args.quick), ())
    # (the request only supplies the timing defaults every profile uses)
    profiler = Profiler(
        store, args.runtime, threads, power,
        TimingSettings(request.warmup, request.repeats, request.rounds),
    )  # fmt: skip
    specs = outside_networks(count, np.random.default_rng(11)) + anchor_set((1, 28, 28))
    start = time.perf_counter()
    bar = ProgressLine("outside ")
    try:
        profiler.profile_networks(specs, bar.update)
    finally:
        bar.close()
        power.close()
    return time.perf_counter() - start


def _fit(profile: Path, path: Path) -> None:
    """Fit the predictor on ``profile`` and save it to ``path``, as ``acnn fit-energy``
    does (5 folds, seed 0)."""
    predictor = fit_predictor(ProfileData.load(profile), folds=5, seed=0)
    predictor.save(path)
    print(f"wrote {path}: {predictor.source}")


def vectorised_timing(predictor: EnergyPredictor, n: int, seed: int = 123) -> dict:
    """Describe ``n`` fresh random networks (block memo) and predict them in one table."""
    rng = np.random.default_rng(seed)
    names = list_networks()
    archs = []
    for i in range(n):
        name = names[i % len(names)]
        archs.append(f"{name}:{get_family(name).sample(rng).to_str()}")
    start = time.perf_counter()
    described = [describe_arch(a, (1, 28, 28), 10) for a in archs]
    describe_s = time.perf_counter() - start
    predict_runs = []
    for _ in range(3):
        start = time.perf_counter()
        table = LayerTable.from_networks(described)
        predictor.predict_table(table)
        predict_runs.append(time.perf_counter() - start)
    return {
        "networks": n,
        "layers": len(table),
        "describe_s": describe_s,
        "describe_ms_per_network": 1e3 * describe_s / n,
        "table_and_predict_s_median": statistics.median(predict_runs),
        "table_and_predict_s_runs": predict_runs,
    }


def render_markdown(result: dict) -> str:
    """README tables of one benchmark result: layer kinds, then network level."""
    report = result["report"]
    held_out = bool(report["layers"])
    lines = [
        f"| layer kind | {'held-out' if held_out else 'fit'} configs | runtime RMSPE"
        f"{'' if held_out else ' (5-fold CV)'} | terms | CV RMSPE (fit data) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["layers"] or report["cross_validated_layers"]:
        lines.append(
            f"| {row['kind']} | {row['n']} | {row['runtime_rmspe']:.1f}% | "
            f"{row['runtime_terms']} | {row['cv_runtime_rmspe']:.1f}% |"
        )
    lines += ["", "| network-level runtime | MAPE | within ±10% |", "|---|---:|---:|"]
    for label, key in (
        ("predictor, held-out family networks", "runtime"),
        ("FLOPs-proportional baseline", "flops_runtime"),
        ("FLOPs-affine baseline", "flops_affine_runtime"),
        ("the measurement vs itself (odd vs even timing rounds)", "repeatability"),
    ):
        if key in report:  # results before the repeatability row lack it
            lines.append(
                f"| {label} | {report[key]['mape']:.1f}% | {report[key]['within_10pct']:.0f}% |"
            )
    outside = result.get("outside_report")
    if outside:
        for label, key in (
            ("predictor", "runtime"),
            ("FLOPs-proportional", "flops_runtime"),
            ("the measurement vs itself", "repeatability"),
        ):
            if key not in outside:
                continue
            lines.append(
                f"| {label}, networks outside the families | {outside[key]['mape']:.1f}% | "
                f"{outside[key]['within_10pct']:.0f}% |"
            )
    for family, target in report["per_family"].items():
        lines.append(
            f"| layer-wise, {family} networks | {target['mape']:.1f}% | "
            f"{target['within_10pct']:.0f}% |"
        )
    speed = result["vectorised"]
    lines += [
        "",
        f"{report['n_networks']} held-out networks; session speed ratio "
        f"{report['session_speed_ratio']:.3f}; vectorised: {speed['networks']} networks "
        f"described in {speed['describe_s']:.1f} s and predicted in "
        f"{speed['table_and_predict_s_median']:.2f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        print(render_markdown(json.loads(args.render.read_text())), end="")
        return 0
    try:
        result = measure(args)
    except (AcnnError, EnergyModelError) as exc:  # e.g. a profile of other settings in --work
        print(f"energy_model_accuracy: error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render_markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


def measure_interleaved(args: argparse.Namespace) -> dict:
    """One session: the layer sweep, then the fit networks (seed 0), the held-out family
    networks (seed 1) and the networks outside the families shuffled together; fit on
    the fit networks, report on the two held-out sets (never in the fit data)."""
    from dataclasses import replace

    from adaptive_cnn.profiling import network_set
    from energy_models.outside_networks import outside_networks
    from energy_models.power import make_power_source
    from energy_models.profile_store import ProfileStore
    from energy_models.profiler import Profiler, TimingSettings

    tag = f"{args.runtime}{'-quick' if args.quick else ''}-interleaved"
    layers_dir, nets_dir = args.work / f"layers-{tag}", args.work / f"networks-{tag}"
    if args.fresh:
        shutil.rmtree(layers_dir, ignore_errors=True)
        shutil.rmtree(nets_dir, ignore_errors=True)
    device = load_device("local")
    threads = args.threads or device.threads
    size = sweep_size(args.quick, runtime=args.runtime)
    shapes = default_shapes(args.quick)
    start = time.perf_counter()
    request = ProfileRequest(
        layers_dir, device, args.runtime, threads, size, shapes, quick=args.quick,
        skip_networks=True,
    )  # fmt: skip
    take_profile(request, progress=ProgressLine)
    layers_s = time.perf_counter() - start
    fit_specs = network_set(shapes, size.networks, np.random.default_rng([0, 1]))
    held_count = args.heldout_networks or (60 if args.quick else 120)
    held_specs = network_set(shapes, held_count, np.random.default_rng([1, 1]))
    fit_ids = {s.id for s in fit_specs}
    held_specs = [s for s in held_specs if s.id not in fit_ids]
    outside_specs = outside_networks(
        args.outside_networks or (24 if args.quick else 60), np.random.default_rng(11)
    )
    specs = fit_specs + held_specs + outside_specs
    order = np.random.default_rng(5).permutation(len(specs))
    power = make_power_source(device.power.to_dict())
    settings = {"device": device.name, "runtime": args.runtime, "threads": threads,
                "set": "interleaved", "count": len(specs)}  # fmt: skip
    profiler = Profiler(
        ProfileStore.open(nets_dir, settings), args.runtime, threads, power,
        TimingSettings(request.warmup, request.repeats, request.rounds),
    )  # fmt: skip
    bar = ProgressLine("networks")
    start = time.perf_counter()
    try:
        profiler.profile_networks([specs[i] for i in order], bar.update)
    finally:
        bar.close()
        power.close()
    networks_s = time.perf_counter() - start
    timed = {r["id"]: r for r in ProfileData.load(nets_dir).networks}
    layers = ProfileData.load(layers_dir)
    fit_data = replace(layers, networks=tuple(timed[s.id] for s in fit_specs))
    predictor = fit_predictor(fit_data, folds=5, seed=0)
    predictor_path = args.work / f"predictor-{tag}.json"
    predictor.save(predictor_path)
    reports = {}
    for name, chosen in (("family", held_specs), ("outside", outside_specs)):
        report = accuracy_report(predictor, [], [timed[s.id] for s in chosen])
        print(f"\n{name} networks, timed interleaved with the fit networks:")
        print(format_report(report))
        reports[name] = report.to_dict()
    print(f"profile wall time: layers {layers_s:.0f} s, all networks {networks_s:.0f} s")
    return {
        "settings": vars(args) | {"work": str(args.work), "out": str(args.out)},
        "predictor": str(predictor_path),
        "profile_seconds": {"layers": layers_s, "networks": networks_s},
        "report": reports["family"],
        "outside_report": reports["outside"],
        "vectorised": vectorised_timing(predictor, args.candidates),
    }


def measure(args: argparse.Namespace) -> dict:
    """Profile (or resume), fit, report and time; the JSON result (tables printed)."""
    if args.interleaved:
        return measure_interleaved(args)
    tag = f"{args.runtime}{'-quick' if args.quick else ''}"
    fit_dir, held_dir = args.work / f"fit-{tag}", args.work / f"heldout-{tag}"
    if args.fresh:
        shutil.rmtree(fit_dir, ignore_errors=True)
        shutil.rmtree(held_dir, ignore_errors=True)
    # The held-out profile: other random networks, and layers of other random networks
    # (configurations also in the fit profile are left out of the layer table).
    held_layers = args.heldout_layers or (60 if args.quick else 600)
    fit_s = _profile(fit_dir, args)
    if args.runtime == "onnxruntime":  # kernel-level: held-out networks only
        held_nets = args.heldout_networks or (60 if args.quick else 120)
        held_s = _profile(held_dir, args, seed=1, networks=held_nets, skip_layers=True)
    else:
        held_s = _profile(
            held_dir, args, seed=1, layers=held_layers, networks=args.heldout_networks
        )
    predictor_path = args.work / f"predictor-{tag}.json"
    start = time.perf_counter()
    _fit(fit_dir, predictor_path)
    fit_seconds = time.perf_counter() - start
    predictor = EnergyPredictor.load(predictor_path)
    held = ProfileData.load(held_dir)
    fit_layers = set(predictor.provenance.get("fit_layer_ids", ()))
    # a kernel-level predictor prices kernels, not torch layers timed alone
    held_layers = [] if predictor.kernels else held.layers
    report = accuracy_report(predictor, held_layers, held.networks, fit_layers)
    print(format_report(report))
    outside_dir = args.work / f"outside-{tag}"
    if args.fresh:
        shutil.rmtree(outside_dir, ignore_errors=True)
    count = args.outside_networks or (24 if args.quick else 60)
    outside_s = _profile_outside(outside_dir, args, count)
    outside = accuracy_report(predictor, [], ProfileData.load(outside_dir).networks)
    print("\nnetworks outside the families:")
    print(format_report(outside))
    speed = vectorised_timing(predictor, args.candidates)
    print(
        f"\nvectorised: {speed['networks']} networks ({speed['layers']} layers): describe "
        f"{speed['describe_s']:.2f} s ({speed['describe_ms_per_network']:.3f} ms/network, "
        f"block memo), table + predict {speed['table_and_predict_s_median']:.3f} s (median of 3)"
    )
    print(
        f"profile wall time: fit {fit_s:.0f} s (0 if resumed), held-out {held_s:.0f} s, "
        f"outside {outside_s:.0f} s"
    )
    return {
        "settings": vars(args) | {"work": str(args.work), "out": str(args.out)},
        "predictor": str(predictor_path),
        "profile_seconds": {"fit": fit_s, "heldout": held_s, "outside": outside_s},
        "fit_energy_seconds": fit_seconds,
        "report": report.to_dict(),
        "outside_report": outside.to_dict(),
        "vectorised": speed,
    }


if __name__ == "__main__":
    sys.exit(main())
