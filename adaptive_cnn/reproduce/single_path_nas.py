"""Experiment ``single-path``: search cost and design of the single-path superkernel search
against the BO designer at the same budget (one local mbconv stage, no cloud).

Both methods run through ``acnn design`` with their own empty training cache, so each
pays for its own training (see :mod:`adaptive_cnn.reproduce.search_cost`, also behind
``benchmarks/single_path_cost.py``); ``--from`` re-reads that benchmark's JSON instead.
Energies are the layer-wise predictor's: estimates where its power is declared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptive_cnn import flag_values as values
from adaptive_cnn.reproduce import search_cost as cost
from adaptive_cnn.reproduce.registry import Experiment, ReproduceError, register_experiment
from adaptive_cnn.reproduce.writer import ResultWriter

PAPER = (
    "Stamoulis et al., Single-Path NAS: Designing Hardware-Efficient ConvNets in less than "
    "4 Hours (ECML-PKDD 2019): one superkernel network searched in a few epochs"
)
FULL_BUDGET = "2mJ"
ROW_KEYS = (
    "method",
    "arch",
    "energy_mj",
    "test_accuracy",
    "search_epochs",
    "search_seconds",
    "wall_seconds",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    cost.add_setting_arguments(p)
    p.add_argument(
        "--seed", type=values.seed, default=0, metavar="N", help="search seed (default 0)"
    )
    p.add_argument(
        "--threads",
        type=values.threads,
        default=1,
        metavar="N",
        help="torch threads, 1..1024 (default 1)",
    )
    p.add_argument(
        "--predictor",
        type=Path,
        metavar="FILE",
        help="energy predictor (default: this machine's, as acnn design gets it)",
    )
    p.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help="keep the two design runs here (must not hold earlier runs; default temporary)",
    )
    p.add_argument(
        "--from",
        dest="from_json",
        type=Path,
        metavar="JSON",
        help="read benchmarks/single_path_cost.py's JSON instead of running both searches",
    )


def run(args: argparse.Namespace, out: ResultWriter) -> dict[str, Any]:
    from adaptive_cnn.reproduce.single_path_report import plot_cost, render_table

    if args.from_json is not None:
        report = load_report(args.from_json)
        out.say(f"read {args.from_json} (nothing is trained)")
    else:
        report = _measure(args, out)
    results = {"paper": PAPER, "source": str(args.from_json or "measured now"), **report}
    out.write_json("results.json", results)
    out.write_csv("methods.csv", [{k: r[k] for k in ROW_KEYS} for r in report["results"]])
    out.write_text("table.md", render_table(results))
    out.save_figure("search_cost.png", plot_cost(results))
    sp, bo = report["results"]
    v = report["verdict"]
    return {
        "energy_label": sp["energy_label"],
        "wall_ratio_single_path_over_bo": v["wall_ratio"],
        "ratio_without_final_training": v.get("ratio_without_final_training"),
        "search_epochs_single_path": sp["search_epochs"],
        "search_epochs_bo": bo["search_epochs"],
        "design_as_good": v["design_as_good"],
        "target_met": v["met"],
    }


def _measure(args: argparse.Namespace, out: ResultWriter) -> dict[str, Any]:
    settings = cost.resolve_settings(args.quick, vars(args))
    settings.setdefault("budget", FULL_BUDGET)
    predictor = args.predictor  # None: this machine's, as acnn design gets it
    if args.predictor is not None and not args.predictor.is_file():
        raise ReproduceError(f"--predictor {args.predictor}: no such file")
    out.resolve(settings=settings, predictor=predictor)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for method in cost.METHODS:
            if (work / method).exists() and any((work / method).iterdir()):
                raise ReproduceError(
                    f"{work / method} holds an earlier run: its cached training would hide "
                    "the search cost; pass an empty --work"
                )
        rows = cost.compare(
            settings,
            work,
            seed=args.seed,
            predictor=None if predictor is None else str(predictor),
            threads=args.threads,
            quick=args.quick,
            say=out.say,
        )
    return cost.report(settings, args.seed, rows)


def load_report(path: Path) -> dict[str, Any]:
    """benchmarks/single_path_cost.py's JSON, checked; a bad file is a one-line error."""
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReproduceError(f"--from {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReproduceError(f"--from {path} is not valid JSON: {exc}") from None
    rows = report.get("results") if isinstance(report, Mapping) else None
    methods = [r.get("method") for r in rows or [] if isinstance(r, Mapping)]
    if methods != list(cost.METHODS):
        raise ReproduceError(
            f"--from {path}: expected results for {', '.join(cost.METHODS)} as written by "
            f"benchmarks/single_path_cost.py, got {methods or 'none'}"
        )
    missing = sorted({k for r in rows for k in ROW_KEYS + ("energy_label",) if k not in r})
    if missing:
        raise ReproduceError(f"--from {path}: the results lack {', '.join(missing)}")
    report.setdefault("settings", {})
    report.setdefault("seed", None)
    report["verdict"] = cost.verdict(rows[0], rows[1])  # recomputed: today's rule
    return report


def _ours(head: Mapping[str, Any]) -> str:
    """The headline as one sentence (the README's table)."""
    return (
        f"{head['search_epochs_single_path']:g} search epochs; wall time "
        f"{head['wall_ratio_single_path_over_bo']:.2f}× our BO's (target ≤ 0.2×)"
        + ("" if head["design_as_good"] else "; neither design dominates the other")
    )


EXPERIMENT = register_experiment(
    Experiment(
        name="single-path",
        title="search cost and design: single-path superkernel search vs BO at one budget",
        paper=PAPER,
        add_arguments=add_arguments,
        run=run,
        claim="8 epochs of search, up to 5,000× cheaper than earlier NAS",
        ours=_ours,
    )
)
