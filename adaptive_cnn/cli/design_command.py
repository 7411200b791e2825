"""``acnn design``: search a cascade under a device energy budget, then train and test it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from adaptive_cnn import flag_values as values
from adaptive_cnn.progress import ProgressLine
from adaptive_cnn.tables import format_table, human_count


def add_parser(commands) -> None:
    from adaptive_cnn.design import SEARCH_SETTINGS, BOSettings, DesignConfig, SinglePathSettings
    from adaptive_cnn.design.settings import add_arguments

    p = commands.add_parser(
        "design",
        help="design a cascade (local CNNs + cloud) under a per-image energy budget",
        description=(
            "Search the architectures of the local networks and the exit thresholds of an "
            "adaptive cascade with Bayesian optimisation, maximising validation accuracy "
            "subject to the device energy per image (predicted by the layer-wise model), "
            "bytes sent per image and the device's memory limit. Candidates predicted to "
            "break a budget are never trained. The best design is then trained fully and "
            "evaluated once on the test split. With --method single-path, the first stage "
            "is found instead by a single-path superkernel search over the mbconv family "
            "with the predicted energy as a differentiable cost (Single-Path NAS)."
        ),
    )
    add_arguments(p, DesignConfig)
    p.add_argument(
        "--method",
        choices=tuple(SEARCH_SETTINGS),
        help="bo: Bayesian optimisation over whole cascades (default); single-path: stage 1 "
        "by a superkernel search of the mbconv family, later stages its reference networks",
    )
    add_arguments(p.add_argument_group("Bayesian optimisation (--method bo)"), BOSettings)
    add_arguments(
        p.add_argument_group("single-path search (--method single-path)"), SinglePathSettings
    )
    run = p.add_argument_group("the run (not saved with the design)")
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML of design settings")
    run.add_argument(
        "--workers",
        type=values.whole_number,  # its range is the executor's check (one message for both)
        default=1,
        metavar="N",
        help="candidates trained at once in N local processes (default 1: in-process)",
    )
    run.add_argument(
        "--executor",
        metavar="URL",
        help="train candidates on a Dask cluster: dask://HOST:PORT (the training cache "
        "folder must be shared with its workers)",
    )
    run.add_argument(
        "--time-limit",
        metavar="DURATION",
        help=(
            "finish the run in about this long (e.g. 12min, from the start): the search "
            "stops early enough to leave the best design's and the baselines' final "
            "training their time, estimated from each network's proxy training; "
            "re-ranking skips designs whose final training would not fit (default: none)"
        ),
    )
    run.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (default runs/design)")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run with its saved settings; flags that change what "
        "it evaluated are refused, others (--trials, --final-epochs, ...) apply",
    )
    run.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="training cache folder (default: $ACNN_CACHE_DIR or ~/.cache/acnn)",
    )
    run.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the fixed baselines (single networks, big/little, all-cloud)",
    )
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run_design)


def resolve_config(args: argparse.Namespace):
    """The design settings: a saved run's (resume) or a file's, under the flags given."""
    from adaptive_cnn.design import SEARCH_SETTINGS, DesignConfig
    from adaptive_cnn.design.journal import read_config
    from adaptive_cnn.design.settings import values_from_args
    from adaptive_cnn.errors import ConfigError

    if args.resume:
        given, source = read_config(args.resume).to_dict(), f"{args.resume}/config.yaml"
    elif args.config:
        given, source = _read_yaml(args.config), str(args.config)
    else:
        given, source = {}, "the command line"
    flags = values_from_args(args, DesignConfig)
    for settings in SEARCH_SETTINGS.values():
        flags.update(values_from_args(args, settings))
    if args.method is not None:
        flags["method"] = args.method
    given.update(flags)
    if given.get("budget_mj", given.get("budget")) is None and given.get("min_accuracy") is None:
        raise ConfigError("give an energy budget (--budget 2mJ) or --min-accuracy")
    return DesignConfig.from_dict(given, source)


def _read_yaml(path: Path) -> dict:
    from adaptive_cnn.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path} is not valid YAML: {first}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of design settings")
    return data


def run_design(args: argparse.Namespace) -> int:
    from adaptive_cnn.design import design
    from energy_models.units import parse_duration_s

    config = resolve_config(args)
    run_dir = args.resume or args.out or Path("runs/design")
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    result = design(
        config,
        run_dir,
        resume=args.resume is not None,
        baselines=not args.no_baselines,
        time_limit_s=parse_duration_s(args.time_limit) if args.time_limit else None,
        executor=args.executor,
        workers=args.workers,
        cache_root=args.cache_dir,
        say=say,
        progress=None if args.quiet else ProgressLine,
    )
    if args.json:
        print(json.dumps(result.summary))
    else:
        print(format_result(result.summary, run_dir))
    return 0


def format_result(s: dict, run_dir: Path) -> str:
    """The human-readable result: the stages, then the cascade's figures."""
    rows = []
    for i, stage in enumerate(s["stages"], start=1):
        rows.append(
            (
                i,
                stage["where"],
                stage["arch"],
                f"{stage['energy_mj']:.3g}",
                human_count(stage.get("macs", 0)) if "macs" in stage else "-",
                f"{s['exit_fractions'][i - 1]:.1%}",
            )
        )
    label = s["energy_source"]
    lines = [
        format_table(
            ("stage", "where", "architecture", f"mJ ({label})", "MACs", "exits here"), rows
        ),
        "",
        f"thresholds ({s['policy']['metric']}): " + ", ".join(f"{t:.4f}" for t in s["thresholds"]),
        f"test accuracy {s['test_accuracy']:.2%} (validation {s['val_accuracy']:.2%}); "
        f"energy {s['energy_mj']:.3g} mJ/image ({label}){_val_energy(s)} vs budget "
        f"{s['budget_mj'] if s['budget_mj'] is not None else '-'} mJ; oracle "
        f"{s['oracle']['energy_mj']:.3g} mJ at {s['oracle']['test_accuracy']:.2%}",
        f"offload rate {s['offload_rate']:.1%}, {s['bytes_per_image']:.1f} bytes/image; "
        f"{s['evaluations']} evaluations, {s['trained_infeasible']} trained infeasible",
        f"energy: {s['energy_note']}",
        *_skipped_lines(s.get("rerank_skipped", [])),
        *_combination_lines(s),
        *_frontier_lines(s),
        *_single_path_lines(s.get("single_path")),
        *_baseline_lines(s.get("baselines", [])),
        f"wrote {run_dir}/design.yaml, result.json, search.csv, pareto.csv, baselines.csv, "
        + ("frontier.csv, frontier.yaml, " if s.get("frontier") else "")
        + "stage*.pt, cloud.pt",
    ]
    return "\n".join(lines)


def _val_energy(s: dict) -> str:
    """The validation energy (where the budget binds), when the result records it."""
    val = s.get("val_energy_mj")
    return "" if val is None else f" on test, {val:.3g} on validation"


def _skipped_lines(rows: list[dict]) -> list[str]:
    """The re-rank candidates --time-limit left untrained, if any."""
    return [
        f"not re-ranked (--time-limit): {' -> '.join(r['stages'])}, about "
        f"{r['estimated_seconds'] / 60:.1f} min of final training estimated"
        for r in rows
    ]


def _combination_lines(s: dict) -> list[str]:
    """How the design was found: the search's re-ranked evaluation, or the best cascade of
    every network trained fully (with how many cascades that scored)."""
    c = s.get("combination")
    if not c:
        return []
    how = (
        f"search evaluation {s['best_evaluation']} re-ranked"
        if s.get("found_by") == "search"
        else "a cascade of fully trained networks the search did not propose"
    )
    return [
        f"design found by {how}; {len(c['networks'])} fully trained networks combined "
        f"({len(c.get('promoted', []))} of them searched networks trained fully for it, "
        "--promote-under): "
        f"{c['admissible']} admissible cascades, {c['scored']} scored, "
        f"{c['bounded_out']} bounded out, {c['seconds']:.1f} s"
    ]


def _frontier_lines(s: dict) -> list[str]:
    """The designs across budgets (from the networks trained fully), cheapest first."""
    points = s.get("frontier") or []
    if not points:
        return []
    lines = [
        "",
        "frontier: the best cascade of the networks trained fully at each budget (chosen on "
        f"validation, tested once; energy {s.get('energy_source', 'estimated')})",
        f"{'budget mJ':>9}  {'val mJ':>7}  {'test mJ':>7}  {'val acc':>7}  {'test acc':>8}  stages",
    ]
    for p in points:
        stages = " -> ".join(p["stages"].split(" | "))
        lines.append(
            f"{p['budget_mj']:>9.3g}  {p['val_energy_mj']:>7.3g}  {p['test_energy_mj']:>7.3g}  "
            f"{p['val_accuracy']:>7.2%}  {p['test_accuracy']:>8.2%}  {stages}"
        )
    return lines


def _single_path_lines(sp: dict | None) -> list[str]:
    if not sp:
        return []
    lambdas = ", ".join(
        f"{t['lambda']:.3g} -> {t['energy_mj']:.3g} mJ / {t['val_accuracy']:.1%}"
        + (
            f" (fitted from {t['raw_energy_mj']:.3g} mJ, {len(t['dropped'])} choices dropped)"
            if t.get("dropped")
            else ""
        )
        for t in sp["trials"]
    )
    return [
        f"single-path search: {sp['search_epochs']:g} epochs, {sp['search_seconds']:.1f} s "
        f"(width {sp['width']:g}); lambda {sp['lambda']:.3g} chosen of: {lambdas} "
        f"(supernet validation accuracy, {sp['energy_label']} energy)"
    ]


def _baseline_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    table = [
        (
            r["system"],
            f"{r['test_accuracy']:.2%}",
            f"{r['energy_mj']:.3g}",
            f"{r['offload_rate']:.1%}",
            "yes" if r["feasible_on_val"] else "no",
        )
        for r in rows
    ]
    headers = ("baseline", "test acc", "mJ/image", "offloaded", "meets constraints")
    return ["", format_table(headers, table)]


def add_report_parser(commands) -> None:
    p = commands.add_parser(
        "report",
        help="tables and PNG plots of a finished design run",
        description=(
            "Print a design run's result, baselines and search, and write search.png (best "
            "feasible validation accuracy vs evaluations) and plane.png (energy per image vs "
            "accuracy: evaluated designs, Pareto front, baselines, the design, the oracle)."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder of `acnn design`")
    p.add_argument("--json", action="store_true", help="print the result JSON instead")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from adaptive_cnn.design.report import best_so_far, load_run, write_plots

    result, journal = load_run(args.run_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_result(result, args.run_dir))
    curve = best_so_far(journal)
    reached = [
        f"{i + 1}: {100 * v:.2f}%" for i, v in enumerate(curve) if i == 0 or v != curve[i - 1]
    ]
    print("\nbest feasible validation accuracy by evaluation: " + ", ".join(reached))
    for path in write_plots(args.run_dir, result, journal):
        print(f"wrote {path}")
    return 0
