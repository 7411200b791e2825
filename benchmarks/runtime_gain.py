"""What designing for the deployed runtime gains: the main job priced for eager torch and
for ONNX Runtime, each design and the same baselines run in both runtimes and measured.

For each pricing runtime (``--runtimes``, default ``torch onnxruntime``) the main job's
design (the Makefile's ``RUN_ARGS``: same dataset, budget, search and training settings)
runs through the library's front door, ``adaptive_cnn.design.design``, with the ``local``
device profile priced for that runtime (its own predictor, profiled once if missing);
an existing finished run in ``--work`` is reused. Then every system — the design's local
stages and the baselines the run reports (single small/medium/large and the hand-picked
big/little pair, with the thresholds that run solved) — runs at batch 1 on the test split
in every runtime, per image and to its exit, as the device would
(:func:`adaptive_cnn.energy_check.measure_cascade`). The systems and runtimes take turns
in ``--rounds`` chunks of the images, shuffled, so that the machine's drift between
minutes is shared by all. Energy is measured latency x the device's power (a sensor's
where one can be read, else the declared model: then **estimated**, and labelled so).
Only local compute is measured; the cloud's radio energy is the link model's.

Prints one table and writes JSON (the settings, the machine, every figure)::

    python benchmarks/runtime_gain.py [--work DIR] [--images N] [--out FILE]
    python benchmarks/runtime_gain.py --render FILE.json   # the tables again
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNTIMES = ("torch", "onnxruntime")
SYSTEMS = ("single:small", "single:medium", "single:large", "big/little")


def main_job_args(makefile: Path = ROOT / "Makefile") -> list[str]:
    """``acnn design`` flags of the main job, read from the Makefile (declared there once):
    ``--dataset fashion-mnist`` and ``RUN_ARGS`` with ``$(TIME_LIMIT)`` filled in."""
    text = makefile.read_text()
    found = {
        name: re.search(rf"^{name} \?= (.*)$", text, re.M) for name in ("RUN_ARGS", "TIME_LIMIT")
    }
    if not all(found.values()):
        raise SystemExit(f"runtime_gain: error: {makefile} declares no RUN_ARGS / TIME_LIMIT")
    run_args = found["RUN_ARGS"].group(1).replace("$(TIME_LIMIT)", found["TIME_LIMIT"].group(1))
    return ["--dataset", "fashion-mnist", *shlex.split(run_args)]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--design-args",
        metavar="FLAGS",
        help="acnn design flags instead of the main job's (one quoted string)",
    )
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    p.add_argument(
        "--predictor",
        action="append",
        default=[],
        metavar="RUNTIME=PATH",
        help="a predictor file to price RUNTIME with (default: this machine's, profiled "
        "once if missing)",
    )
    p.add_argument("--images", type=int, default=None, metavar="N", help="test images (all)")
    p.add_argument("--rounds", type=int, default=5, metavar="N", help="interleaved chunks (5)")
    p.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed calls per chunk")
    p.add_argument("--work", type=Path, default=RESULTS / "runtime_gain", metavar="DIR")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR")
    p.add_argument("--out", type=Path, default=RESULTS / "runtime_gain.json", metavar="FILE")
    p.add_argument("--render", type=Path, metavar="JSON", help="print an earlier result's table")
    args = p.parse_args(argv)
    if args.images is not None and args.images < 1:
        p.error("--images must be >= 1")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    try:
        args.predictors = dict(item.split("=", 1) for item in args.predictor)
    except ValueError:
        p.error("--predictor takes RUNTIME=PATH")
    if set(args.predictors) - set(RUNTIMES):
        p.error(f"--predictor: runtimes are {', '.join(RUNTIMES)}")
    return args


def device_file(runtime: str, work: Path) -> str:
    """The ``local`` profile priced for ``runtime``: its own name where the runtime is the
    shipped profile's, else a copy (``local-RUNTIME.yaml`` in ``work``) naming ``runtime``."""
    from importlib.resources import files

    from energy_models.devices import load_device

    if load_device("local").runtime == runtime:
        return "local"
    raw = yaml.safe_load((files("energy_models") / "data" / "devices" / "local.yaml").read_text())
    raw.update(name=f"local-{runtime}", runtime=runtime)
    raw["description"] = f"{raw.get('description', '')} (priced for {runtime})"
    path = work / f"local-{runtime}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def config_for(flags: list[str], device: str, predictor: str | None):
    """The design settings ``acnn design FLAGS`` would use, on ``device`` (and the time
    limit, s): the flags are read with the settings' own declarations
    (:mod:`adaptive_cnn.design.settings`), as the CLI reads them."""
    from adaptive_cnn.design import BOSettings, DesignConfig
    from adaptive_cnn.design.settings import add_arguments, values_from_args
    from energy_models.units import parse_duration_s

    parser = argparse.ArgumentParser(prog="runtime_gain --design-args", add_help=False)
    add_arguments(parser, DesignConfig)
    add_arguments(parser, BOSettings)
    parser.add_argument("--time-limit", metavar="DURATION")
    args = parser.parse_args(flags)
    given = {**values_from_args(args, DesignConfig), **values_from_args(args, BOSettings)}
    given["device"] = device
    if predictor:
        given["predictor"] = predictor
    config = DesignConfig.from_dict(given, "the main job's flags")
    return config, parse_duration_s(args.time_limit) if args.time_limit else None


def run_design(runtime: str, args: argparse.Namespace, flags: list[str]):
    """The design priced for ``runtime`` (reused where ``--work`` holds it finished);
    (run folder, its RunContext, seconds spent)."""
    from adaptive_cnn.design import design
    from adaptive_cnn.design.context import open_run
    from adaptive_cnn.progress import ProgressLine
    from adaptive_cnn.run_folder import load_run

    run_dir = args.work / f"priced-{runtime}"
    config, limit_s = config_for(
        flags, device_file(runtime, args.work), args.predictors.get(runtime)
    )
    say = lambda text: print(f"[{runtime}] {text}", file=sys.stderr)  # noqa: E731
    started = time.perf_counter()
    if not (run_dir / "result.json").exists():
        design(
            config, run_dir, resume=(run_dir / "journal.jsonl").exists(), time_limit_s=limit_s,
            cache_root=args.cache_dir, say=say, progress=ProgressLine,
        )  # fmt: skip
    spent = time.perf_counter() - started
    context = open_run(config, run_dir, cache_root=args.cache_dir, say=say)
    return load_run(run_dir), context, spent


@dataclass(frozen=True)
class StageToTime:
    """A local stage as :func:`measure_cascade` reads it."""

    name: str
    arch: str
    energy_mj: float


@dataclass
class System:
    """A cascade of local stages to run: a design's or a baseline's."""

    priced_for: str
    name: str
    stages: list[StageToTime]
    models: list[Any]
    policy: Any
    test_accuracy: float
    predicted_mj: float  # the run's figure on the test split (its exit distribution)
    cloud_share: float


def systems_of(runtime: str, run, context) -> list[System]:
    """The design and the baselines of the run priced for ``runtime``."""
    from adaptive_cnn.networks import create_network
    from adaptive_cnn.stage import StageModel, load_stage_model
    from selector import ExitPolicy

    s = run.summary
    local = run.local_stages
    design = System(
        runtime, "design", [StageToTime(x.name, x.arch, x.energy_mj) for x in local],
        [load_stage_model(run, x) for x in local], run.policy, float(s["test_accuracy"]),
        _local_energy(s), float(s.get("offload_rate", 0.0)),
    )  # fmt: skip
    systems = [design]
    rows = {row["system"]: row for row in s.get("baselines", [])}
    costs = context.local_costs()
    for name in SYSTEMS:
        row = rows.get(name)
        if row is None:
            continue
        archs = row["stages"].split(" | ")
        energies = costs.stage_costs(archs).energy_mj
        models = []
        for arch in archs:
            trained = context.train_final(arch)  # cached: the run trained it
            network = create_network(arch, run.input.shape, run.input.num_classes)
            network.load_state_dict(trained.state_dict)
            models.append(StageModel(network, run.input.preprocessing))
        stages = [
            StageToTime(f"stage{i + 1}", a, float(e))
            for i, (a, e) in enumerate(zip(archs, energies, strict=True))
        ]
        policy = ExitPolicy(tuple(row["thresholds"]), run.policy.metric)
        systems.append(
            System(
                runtime,
                name,
                stages,
                models,
                policy,
                float(row["test_accuracy"]),
                float(row["energy_mj"]),
                0.0,
            )  # fmt: skip
        )
    return systems


def _local_energy(summary) -> float:
    """The design's predicted local energy per image on test (its cloud stage's radio
    energy left out, as measurement leaves it out)."""
    fractions = summary["exit_fractions"]
    stages = summary["stages"]
    total, reaching = 0.0, 1.0
    for stage, fraction in zip(stages, fractions, strict=True):
        if stage["where"] != "device":
            break
        total += reaching * float(stage["energy_mj"])
        reaching -= fraction
    return total


def measure(systems: list[System], runtimes, images, args, power) -> dict[tuple, dict]:
    """Each system in each runtime on ``images``, in shuffled turns of ``--rounds`` chunks;
    (priced_for, system, run_in) -> summed figures."""
    from adaptive_cnn.energy_check import measure_cascade
    from adaptive_cnn.progress import ProgressLine
    from energy_models.runtimes import compile_runner, set_threads

    threads = args.threads
    set_threads(threads)
    example = args.example
    runners = {}
    for system in systems:
        for run_in in runtimes:
            runners[system.priced_for, system.name, run_in] = [
                compile_runner(m, example, run_in, threads=threads) for m in system.models
            ]
    # never an empty chunk (more --rounds than images)
    chunks = np.array_split(np.arange(len(images)), min(args.rounds, len(images)))
    order = np.random.default_rng(0)
    keys = list(runners)
    by_key = {(s.priced_for, s.name): s for s in systems}
    totals = {k: {"images": 0, "measured_mj": 0.0, "predicted_mj": 0.0, "ms": []} for k in keys}
    bar = ProgressLine("measuring")
    done, steps = 0, len(chunks) * len(keys)
    started = time.perf_counter()
    for chunk in chunks:
        for index in order.permutation(len(keys)):
            key = keys[index]
            system = by_key[key[:2]]
            check = measure_cascade(
                system.stages, runners[key], system.policy, images[chunk], power=power,
                runtime=key[2], threads=threads, warmup=args.warmup,
            )  # fmt: skip
            t = totals[key]
            t["images"] += check.images
            t["measured_mj"] += check.measured_mj_per_image * check.images
            t["predicted_mj"] += check.predicted_mj_per_image * check.images
            t["ms"].append(check.measured_mj_per_image / check.energy.power_w)
            t["energy"] = check.energy.to_dict()
            done += 1
            bar.update(done, steps, f"{time.perf_counter() - started:.0f} s elapsed")
    bar.close()
    return totals


def report(systems, totals, runtimes, meta) -> dict[str, Any]:
    rows = []
    for s in systems:
        row = {
            "priced_for": s.priced_for,
            "system": s.name,
            "stages": " | ".join(x.arch for x in s.stages),
            "test_accuracy": s.test_accuracy,
            "predicted_mj_per_image": _per_image(totals, s, "predicted_mj"),
            "run_predicted_mj_per_image": s.predicted_mj,
            "cloud_share": s.cloud_share,
            "measured_mj_per_image": {},
            "chunk_latency_ms": {},
        }
        for run_in in runtimes:
            t = totals[s.priced_for, s.name, run_in]
            row["measured_mj_per_image"][run_in] = t["measured_mj"] / t["images"]
            row["chunk_latency_ms"][run_in] = t["ms"]
            row["energy"] = t["energy"]
        rows.append(row)
    designs = {r["priced_for"]: r for r in rows if r["system"] == "design"}
    gain = {}
    if {"torch", "onnxruntime"} <= set(designs) and {"torch", "onnxruntime"} <= set(runtimes):
        old, new = designs["torch"], designs["onnxruntime"]
        gain = {
            "torch_design_in_torch_mj": old["measured_mj_per_image"]["torch"],
            "ort_design_in_ort_mj": new["measured_mj_per_image"]["onnxruntime"],
            "energy_ratio": old["measured_mj_per_image"]["torch"]
            / new["measured_mj_per_image"]["onnxruntime"],
            "accuracy_points": 100 * (new["test_accuracy"] - old["test_accuracy"]),
        }
    return {**meta, "rows": rows, "gain": gain}


def _per_image(totals, system: System, figure: str) -> float:
    """A figure per image of ``system`` run in the runtime it was priced for (else the
    first measured)."""
    keys = [k for k in totals if k[:2] == (system.priced_for, system.name)]
    key = next((k for k in keys if k[2] == system.priced_for), keys[0])
    return totals[key][figure] / totals[key]["images"]


def render(result: dict[str, Any]) -> str:
    runtimes = result["settings"]["runtimes"]
    label = result["rows"][0]["energy"]["label"] if result["rows"] else ""
    head = (
        "| priced for | system | stages | test accuracy | predicted mJ | "
        + " | ".join(f"measured mJ in {r}" for r in runtimes)
        + " |"
    )
    lines = [head, "|" + "---|" * (5 + len(runtimes))]
    for r in result["rows"]:
        cells = " | ".join(f"{r['measured_mj_per_image'][x]:.3f}" for x in runtimes)
        stages = " → ".join(f"`{a}`" for a in r["stages"].split(" | "))  # no | in a cell
        lines.append(
            f"| {r['priced_for']} | {r['system']} | {stages} | "
            f"{100 * r['test_accuracy']:.2f}% | {r['predicted_mj_per_image']:.3f} | {cells} |"
        )
    lines.append("")
    lines.append(
        f"energy per image: {label} ({result['images']} test images, batch 1, "
        f"{result['threads']} threads, {result['settings']['rounds']} interleaved rounds; "
        "local compute only)"
    )
    g = result.get("gain")
    if g:
        lines.append(
            f"designed for ONNX Runtime and run there: {g['ort_design_in_ort_mj']:.3f} mJ "
            f"against {g['torch_design_in_torch_mj']:.3f} mJ for the design priced for and run "
            f"in eager torch ({g['energy_ratio']:.2f}x less), accuracy "
            f"{g['accuracy_points']:+.2f} points"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    from adaptive_cnn.energy_check import deployed_threads, load_split
    from adaptive_cnn.errors import AcnnError
    from adaptive_cnn.stage import example_input
    from energy_models.errors import EnergyModelError
    from energy_models.power import make_power_source

    flags = shlex.split(args.design_args) if args.design_args else main_job_args()
    try:
        runs = {r: run_design(r, args, flags) for r in args.runtimes}
        systems = [s for r, (run, ctx, _) in runs.items() for s in systems_of(r, run, ctx)]
        first = runs[args.runtimes[0]][0]
        images, _ = load_split(first, "test")
        images = images[: args.images].astype(np.float32)
        args.threads = deployed_threads(first)
        args.example = example_input(first)
        # the power model of the device profile it was designed with (both pricings'
        # profiles share the local one's)
        power = make_power_source(runs[args.runtimes[0]][1].device.power.to_dict())
        totals = measure(systems, args.runtimes, images, args, power)
    except (AcnnError, EnergyModelError) as exc:
        print(f"runtime_gain: error: {exc}", file=sys.stderr)
        return 2
    meta = {
        "settings": {
            "design_flags": flags,
            "runtimes": args.runtimes,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "work": str(args.work),
        },
        "images": len(images),
        "threads": args.threads,
        "design_seconds": {r: spent for r, (_, _, spent) in runs.items()},
        "pricing": {r: run.pricing.to_dict() for r, (run, _, _) in runs.items()},
        "machine": {
            "python": platform.python_version(),
            "cpu_count": psutil.cpu_count(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    result = report(systems, totals, args.runtimes, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
