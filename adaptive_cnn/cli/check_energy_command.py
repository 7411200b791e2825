"""``acnn check-energy``: the design's predicted energy against the device's measured one."""

from __future__ import annotations

import argparse
import json
import math
import time

from adaptive_cnn import flag_values as values


def add_parser(commands) -> None:
    from energy_models.devices import RUNTIMES  # torch-free, unlike energy_models.runtimes

    parser = commands.add_parser(
        "check-energy",
        help="measure a design's local stages on this device against their predicted energy",
        description=(
            "Run the local stages of an `acnn design` run folder on a split of the dataset it "
            "was designed on, one image at a time, in the runtime and threads the design was "
            "priced for, and print per stage the predicted energy per call, the energy from "
            "its measured latency (latency x the device's power: 'measured' where a power "
            "sensor is read, else 'estimated from latency x declared power') and their "
            "ratio, and the same for the whole cascade (each image charged the stages it "
            "passed). Local compute only: radio energy is the link model's. The result is "
            "written to RUN_DIR/energy_check.json with the settings that made it."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "val", "train"),
        help="the split of the design's dataset to run (default test)",
    )
    parser.add_argument(
        "--limit",
        type=values.int_in(1),
        default=None,
        metavar="N",
        help="the first N images of the split, >= 1 (default: all of them)",
    )
    parser.add_argument(
        "--warmup",
        type=values.int_in(0, 100000),
        default=10,
        metavar="N",
        help="untimed calls of each stage before the first image, 0..100000 (default 10)",
    )
    parser.add_argument(
        "--passes",
        type=values.int_in(1, 1000),
        default=1,
        metavar="N",
        help="run the images N times and pool them, 1..1000 (default 1); a shared "
        "machine's speed drifts between minutes, and each pass's ratio is printed",
    )
    parser.add_argument(
        "--runtime",
        default=None,
        choices=RUNTIMES,
        help="run the stages in another runtime than the design was priced for "
        "(its energies then say 'priced for X, run in Y'); default: the priced one",
    )
    parser.add_argument(
        "--threads",
        type=values.threads,
        default=None,
        metavar="N",
        help="intra-op threads, 1..1024 (default: the design's, else its device profile's)",
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="the dataset's folder (default: the run's)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run_check_energy)


def run_check_energy(args: argparse.Namespace) -> int:
    from adaptive_cnn.energy_check import check_energy, load_split, write_energy_check
    from adaptive_cnn.run_folder import load_run

    run = load_run(args.run_dir)
    images, _ = load_split(run, args.split, args.data_dir)
    images = images[: args.limit] if args.limit else images
    check = check_energy(
        run,
        images,
        runtime=args.runtime,
        threads=args.threads,
        warmup=args.warmup,
        passes=args.passes,
        progress=None if args.quiet else _progress(),
    )
    check = _with_config(check, args)
    path = write_energy_check(run, check)
    if args.json:
        print(json.dumps(check.to_dict()))
    else:
        print(format_check(check))
        print(f"wrote {path}")
    return 0


def _with_config(check, args: argparse.Namespace):
    import dataclasses

    config = {
        **check.config,
        "run_dir": str(args.run_dir),
        "split": args.split,
        "limit": args.limit,
        "data_dir": args.data_dir,
    }
    return dataclasses.replace(check, config=config)


def _progress():
    from adaptive_cnn.progress import ProgressLine

    line, started = ProgressLine("check-energy"), time.monotonic()

    def update(done: int, total: int) -> None:
        line.update(done, total, f"{time.monotonic() - started:.1f} s elapsed")
        if done == total:
            line.close()

    return update


def format_check(check) -> str:
    """The per-stage and whole-cascade table of an :class:`EnergyCheck`."""
    from adaptive_cnn.tables import format_table

    rows = [
        (
            s.name, s.arch, str(s.calls), f"{s.predicted_mj:.4g}", f"{s.measured_mj:.4g}",
            f"{s.median_latency_ms:.4g}", _ratio(s.ratio),
        )
        for s in check.stages
    ]  # fmt: skip
    rows.append(
        (
            "cascade", "per image", str(check.images), f"{check.predicted_mj_per_image:.4g}",
            f"{check.measured_mj_per_image:.4g}", "", _ratio(check.ratio),
        )
    )  # fmt: skip
    label = check.energy.label
    headers = ("stage", "architecture", "calls", "predicted mJ", f"mJ ({label})", "median ms")
    priced = f"; {check.pricing_label}" if check.pricing_label else ""
    return "\n".join(
        [
            format_table((*headers, "measured/predicted"), rows),
            "",
            f"{check.images} images, batch 1, in {check.runtime} with {check.threads} "
            f"thread(s){priced}; power {check.energy.power_w:.3g} W ({check.energy.source}, "
            f"{label}); exits {dict(check.exits)}; local compute only",
            *_passes_line(check.pass_ratios),
        ]
    )


def _passes_line(ratios) -> list[str]:
    if len(ratios) < 2:
        return []
    import statistics

    shown = ", ".join(_ratio(r) for r in ratios)
    return [
        f"{len(ratios)} passes pooled; the cascade's measured/predicted per pass: {shown} "
        f"(median {_ratio(statistics.median(ratios))})"
    ]


def _ratio(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"
