"""``acnn profile``, ``acnn fit-energy``, ``acnn energy-report`` and ``acnn predict``."""

from __future__ import annotations

import argparse
import json

from adaptive_cnn import flag_values as values
from adaptive_cnn.cli.data_commands import NUM_CLASSES, SHAPE_LIMITS, parse_shape
from adaptive_cnn.energy_report import ESTIMATE_NOTE, format_report
from adaptive_cnn.progress import ProgressLine
from adaptive_cnn.tables import format_table, human_count


def add_parsers(commands) -> None:
    _add_profile(commands)
    _add_fit(commands)
    _add_report(commands)
    _add_predict(commands)


def _add_profile(commands) -> None:
    p = commands.add_parser(
        "profile",
        help="time layers and networks on this device (with power) -> a profile directory",
        description=(
            "Time a sweep of layer configurations alone and a set of random networks end to "
            "end, at batch 1, with the device's inference runtime and threads. Each "
            "measurement: warm-up, >= 30 timed calls, median (ms); mean power (W) over the "
            "window from the device's sensor, or its declared power model (then every "
            "energy is labelled estimated). Output is appended to DIR, so an interrupted "
            "profile resumes where it stopped."
        ),
    )
    p.add_argument(
        "--device",
        default="local",
        help="device profile name or YAML path (acnn devices; default local)",
    )
    p.add_argument(
        "--devices-dir",
        metavar="DIR",
        help="folder of the user's device profiles (default: $ACNN_DEVICES_DIR, else "
        "~/.config/acnn/devices)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="profile directory (created or resumed)"
    )
    p.add_argument(
        "--runtime",
        choices=("torch", "torchscript", "onnxruntime"),
        help="inference runtime to time (default: the device profile's)",
    )
    p.add_argument(
        "--threads",
        type=values.threads,
        metavar="N",
        help="intra-op threads, 1..1024 (default: the device's)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sweep for tests and smoke checks (about a minute here)",
    )
    p.add_argument(
        "--time-limit",
        metavar="DURATION",
        help="stop starting new measurements after this long (e.g. 10min, 90s); "
        "re-run the same command to resume (default: no limit)",
    )
    p.add_argument(
        "--seed",
        type=values.seed,
        default=0,
        metavar="N",
        help="seed of the sampled layers and networks (default 0)",
    )
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="CxHxW",
        help="input shape of the sampled networks, repeatable (default: 1x28x28 and "
        "3x32x32, with --quick too)",
    )
    p.add_argument(
        "--num-classes",
        type=NUM_CLASSES,
        default=10,
        metavar="N",
        help="classifier outputs of the sampled networks, 2..100000 (default 10)",
    )
    p.add_argument(
        "--layers",
        type=values.int_in(1, 1_000_000),
        metavar="N",
        help="cap on sampled layer configurations (default: the whole sweep)",
    )
    p.add_argument(
        "--networks",
        type=values.int_in(1, 100_000),
        metavar="N",
        help="networks timed end to end (default: the sweep's, fewer with --quick)",
    )
    p.add_argument(
        "--repeats",
        type=values.int_in(30, 100_000),
        default=30,
        metavar="N",
        help="timed calls per round of a measurement, 30..100000: medians need them (default 30)",
    )
    p.add_argument(
        "--warmup",
        type=values.int_in(1, 100_000),
        default=10,
        metavar="N",
        help="untimed calls before a measurement, 0..100000 (default 10)",
    )
    p.add_argument(
        "--rounds",
        type=values.int_in(1, 1000),
        default=5,
        metavar="N",
        help="rounds per measurement, interleaved with other items (median of round "
        "medians), 1..1000 (default 5)",
    )
    p.add_argument("--skip-layers", action="store_true", help="time networks only (a held-out set)")
    p.add_argument("--skip-networks", action="store_true", help="time layers only")
    p.add_argument(
        "--retake-noisy",
        action="store_true",
        help="re-measure records flagged noisy (spread or throttling) on resume",
    )
    p.add_argument(
        "--power-csv",
        metavar="FILE",
        help="an external power meter's CSV log (timestamp, power_w) as the source",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run_profile)


def run_profile(args: argparse.Namespace) -> int:
    from adaptive_cnn.profiling import ProfileRequest, default_shapes, sweep_size, take_profile
    from energy_models.devices import load_device
    from energy_models.units import parse_duration_s

    device = load_device(args.device, user_dir=args.devices_dir)
    size = sweep_size(args.quick, args.layers, args.networks, args.runtime or device.runtime)
    shapes = [parse_shape(s) for s in args.input_shape or ()] or default_shapes(args.quick)
    if device.name != "local":
        _say(
            False,
            f"acnn: note: timings are of THIS machine; run `acnn profile --device "
            f"{device.name}` on the {device.name} itself for its predictor",
        )
    request = ProfileRequest(
        out=args.out,
        device=device,
        runtime=args.runtime or device.runtime,
        threads=args.threads or device.threads,
        size=size,
        shapes=tuple(shapes),
        seed=args.seed,
        num_classes=args.num_classes,
        warmup=args.warmup,
        repeats=args.repeats,
        rounds=args.rounds,
        quick=args.quick,
        skip_layers=args.skip_layers,
        skip_networks=args.skip_networks,
        retake_noisy=args.retake_noisy,
        power_csv=args.power_csv,
        time_limit_s=parse_duration_s(args.time_limit) if args.time_limit else None,
    )
    summary = take_profile(request, progress=None if args.quiet else ProgressLine)
    print(
        f"{args.out}: {summary.layers} layer and {summary.networks} network records "
        f"({summary.noisy} flagged noisy; --retake-noisy re-measures them); power "
        f"{summary.power} ({summary.label})"
    )
    if summary.out_of_time:
        print("time limit reached: run the same command again to resume")
    return 0


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        import sys

        print(text, file=sys.stderr)


def _add_fit(commands) -> None:
    p = commands.add_parser(
        "fit-energy",
        help="fit layer-wise runtime/power predictors on a profile -> predictor.json",
        description=(
            "Fit per layer kind a sparse polynomial (Lasso with k-fold cross-validation) for "
            "runtime (ms) and power (W), and the runtime's per-call and per-inference "
            "overheads on the profile's networks. Writes a versioned JSON predictor."
        ),
    )
    p.add_argument("profile", metavar="DIR", help="profile directory from `acnn profile`")
    p.add_argument("--out", required=True, metavar="FILE", help="predictor file to write (JSON)")
    p.add_argument(
        "--folds",
        type=values.int_in(2, 100),
        default=5,
        metavar="K",
        help="cross-validation folds, 2..100 (default 5)",
    )
    p.add_argument(
        "--seed",
        type=values.seed,
        default=0,
        metavar="N",
        help="seed of the fold shuffles (default 0)",
    )
    p.add_argument(
        "--power-csv",
        metavar="FILE",
        help="attach a power meter's CSV log to the records by timestamp",
    )
    p.add_argument("--json", action="store_true", help="print the fit summary as JSON")
    p.set_defaults(run=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from energy_models.fitting import attach_power_trace, fit_predictor
    from energy_models.power_meter import PowerMeterTrace
    from energy_models.profile_store import ProfileData

    data = ProfileData.load(args.profile)
    if args.power_csv:
        data = attach_power_trace(data, PowerMeterTrace.load(args.power_csv))
    predictor = fit_predictor(data, folds=args.folds, seed=args.seed)
    predictor.save(args.out)
    rows = [
        (k, m.n_samples, m.cv_rmspe_runtime, m.runtime.size, m.cv_rmspe_power, m.power.size)
        for k, m in sorted(predictor.layers.items())
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "predictor": args.out,
                    "source": predictor.source,
                    "layers": [
                        dict(
                            zip(
                                (
                                    "kind",
                                    "n",
                                    "cv_rmspe_runtime",
                                    "runtime_terms",
                                    "cv_rmspe_power",
                                    "power_terms",
                                ),
                                r,
                                strict=True,
                            )
                        )
                        for r in rows
                    ],
                    "network": predictor.network.to_dict(),
                },
                indent=1,
            )
        )
        return 0
    print(
        format_table(
            ("layer kind", "configs", "CV RMSPE runtime %", "terms", "CV RMSPE power %", "terms"),
            rows,
        )
    )
    net = predictor.network
    scales = ", ".join(f"{g} x{v:.2f}" for g, v in net.scale.items() if v)
    calls = ", ".join(f"{g} {v * 1e3:.1f} us" for g, v in net.per_call_ms.items() if v)
    print(
        f"\nnetwork: in-network scale ({scales}), minus {net.discount:.2f} x the part above "
        f"{net.knee_ms:g} ms; per call ({calls or 'none'}); {net.overhead_ms:.3f} ms per inference"
    )
    print(f"wrote {args.out}: {predictor.source}")
    if predictor.estimated:
        print(ESTIMATE_NOTE)
    return 0


def _add_report(commands) -> None:
    p = commands.add_parser(
        "energy-report",
        help="accuracy of a predictor on a held-out profile (RMSPE, MAPE, share within 10%%)",
        description=(
            "Per-layer-kind RMSPE and model size, and network-level MAPE and share of "
            "networks within +-10% for runtime, power and energy, beside a FLOPs baseline "
            "fitted on the same data. Networks and layers the predictor was fitted on are "
            "excluded."
        ),
    )
    p.add_argument("predictor", metavar="FILE", help="predictor file (acnn fit-energy)")
    p.add_argument("--profile", required=True, metavar="DIR", help="held-out profile directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from energy_models.accuracy import accuracy_report
    from energy_models.predictor import EnergyPredictor
    from energy_models.profile_store import ProfileData

    predictor = EnergyPredictor.load(args.predictor)
    data = ProfileData.load(args.profile)
    _check_same_triple(predictor, data.settings)
    fit_layers = set(predictor.provenance.get("fit_layer_ids", ()))
    report = accuracy_report(predictor, data.layers, data.networks, fit_layers)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(format_report(report))
    return 0


def _check_same_triple(predictor, settings) -> None:
    from energy_models.errors import EnergyModelError

    mine = (predictor.device, predictor.runtime, predictor.threads)
    theirs = (settings.get("device"), settings.get("runtime"), settings.get("threads"))
    if mine != theirs:
        raise EnergyModelError(
            f"the predictor is for device/runtime/threads {mine} but the profile was taken "
            f"with {theirs}"
        )


def _add_predict(commands) -> None:
    p = commands.add_parser(
        "predict",
        help="predicted latency (ms), power (W), energy (mJ) and memory of an architecture",
        description=(
            "Predict with a fitted predictor (acnn fit-energy) the batch-1 latency (ms), mean "
            "power (W) and energy (mJ) of each architecture on the predictor's device, "
            "runtime and threads, and its memory: parameters, weight bytes (fp32, int8) and "
            "peak activation bytes. Energies are labelled estimated when the predictor's "
            "power is a declared model, not a measurement."
        ),
    )
    p.add_argument("predictor", metavar="FILE", help="predictor file (acnn fit-energy)")
    p.add_argument(
        "--arch",
        required=True,
        action="append",
        metavar="STR",
        help="architecture string, e.g. conv:c16k3p-c32k3p-fc64 (repeatable)",
    )
    p.add_argument(
        "--input-shape",
        default="1x28x28",
        metavar="CxHxW",
        help=f"shape of one input image (default 1x28x28; {SHAPE_LIMITS})",
    )
    p.add_argument(
        "--num-classes",
        type=NUM_CLASSES,
        default=10,
        metavar="N",
        help="classifier outputs, 2..100000 (default 10)",
    )
    p.add_argument("--layers", action="store_true", help="print the per-layer breakdown")
    p.add_argument("--json", action="store_true", help="print one JSON object per architecture")
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from adaptive_cnn.networks import describe_arch
    from energy_models.errors import EnergyModelError
    from energy_models.estimate import estimate_layers
    from energy_models.predictor import EnergyPredictor

    shape = parse_shape(args.input_shape)
    predictor = EnergyPredictor.load(args.predictor)
    for arch in args.arch:
        try:
            layers = describe_arch(arch, shape, args.num_classes)
        except (RuntimeError, MemoryError) as exc:  # its weights could not even be allocated
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EnergyModelError(f"{arch} is too large to describe here: {first}") from None
        estimate = estimate_layers(layers, shape, predictor)
        if args.json:
            d = {"arch": arch, "input_shape": list(shape), **estimate.to_dict()}
            if not args.layers:
                d.pop("layers")
            print(json.dumps(d))
            continue
        _print_estimate(arch, estimate, args.layers)
    return 0


def _print_estimate(arch: str, e, with_layers: bool) -> None:
    mem = e.memory
    print(
        f"{arch}\n  latency {e.latency_ms:.4f} ms  power {e.power_w:.3g} W  energy "
        f"{e.energy_mj:.4g} mJ ({e.energy_label})\n  memory: {human_count(mem.params)} params, "
        f"weights {mem.weight_bytes_fp32} B fp32 / {mem.weight_bytes_int8} B int8, peak "
        f"activations {mem.peak_activation_bytes_fp32} B fp32\n  source: {e.source}"
    )
    if with_layers:
        rows = [(x.name, x.kind, x.latency_ms, x.power_w, x.energy_mj) for x in e.layers]
        print(format_table(("layer", "kind", "ms", "W", "mJ"), rows))
        print(f"  + overhead {e.overhead_ms:.4f} ms")
