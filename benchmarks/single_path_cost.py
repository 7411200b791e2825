"""Search cost of the single-path superkernel search against the BO designer.

Runs ``acnn design`` twice on the same dataset, device predictor and energy budget, one
local stage of the mbconv family and no cloud, each with its own empty training cache (so
neither reuses the other's training): ``--method single-path`` (superkernel search with
the automatic lambda, then the found network trained from scratch) and ``--method bo``
(``--trials N`` proxy-trained candidates, re-ranked and trained fully). It prints a
side-by-side table (search epochs, wall seconds, design, predicted energy, accuracy) and
writes JSON with every figure and the settings. The issue's target: the single-path wall
time at most 1/5 of the BO's for a design of equal or better (accuracy, energy).

    python benchmarks/single_path_cost.py --budget 2mJ [--trials 20] [--out FILE]
    python benchmarks/single_path_cost.py --quick --predictor P   # tiny run on digits
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adaptive_cnn.cli.main import main as acnn
from adaptive_cnn.cli.tables import format_table
from adaptive_cnn.design.report import load_run

TARGET_RATIO = 0.2
QUICK = {
    "dataset": "digits",
    "trials": 3,
    "search_epochs": 2.0,
    "warmup_epochs": 1.0,
    "lambda_trials": 2,
    "proxy_subset": 256,
    "proxy_epochs": 1.0,
    "final_epochs": 1.0,
    "budget": "15mJ",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", help="device energy per image, e.g. 2mJ (bare = mJ)")
    parser.add_argument("--dataset", default=None, help="default fashion-mnist")
    parser.add_argument("--predictor", help="energy predictor file (default: this machine's)")
    parser.add_argument("--trials", type=int, help="BO evaluations (default 20)")
    parser.add_argument("--search-epochs", type=float, help="single-path epochs per search")
    parser.add_argument("--warmup-epochs", type=float, help="single-path warm-up epochs")
    parser.add_argument("--lambda-trials", type=int, help="single-path lambda searches")
    parser.add_argument("--proxy-subset", type=int, help="training images of both searches")
    parser.add_argument("--proxy-epochs", type=float, help="BO epochs per candidate")
    parser.add_argument("--final-epochs", type=float, help="epochs of the found designs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny settings on digits")
    parser.add_argument("--work", type=Path, help="folder for the runs (default: temporary)")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/single_path_cost.json")
    )
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved settings: --quick's, then the flags given."""
    resolved: dict[str, Any] = dict(QUICK) if args.quick else {"dataset": "fashion-mnist"}
    for key in (
        "budget",
        "dataset",
        "trials",
        "search_epochs",
        "warmup_epochs",
        "lambda_trials",
        "proxy_subset",
        "proxy_epochs",
        "final_epochs",
    ):
        value = getattr(args, key)
        if value is not None:
            resolved[key] = value
    if "budget" not in resolved:
        raise SystemExit("give --budget (e.g. 2mJ), or --quick")
    return resolved


def _flags(s: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        if name in s:
            out += [f"--{name.replace('_', '-')}", str(s[name])]
    return out


def design_args(method: str, s: dict[str, Any], args: argparse.Namespace, run: Path) -> list:
    """The ``acnn design`` arguments of one method."""
    common = [
        "design", "--method", method, "--family", "mbconv", "--stages", "1", "--link", "none",
        "--budget", str(s["budget"]), "--dataset", s["dataset"], "--seed", str(args.seed),
        "--out", str(run / "run"), "--cache-dir", str(run / "cache"), "--no-baselines",
        "--quiet", "--json",
    ]  # fmt: skip
    common += ["--predictor", args.predictor] if args.predictor else []
    common += ["--threads", str(args.threads)] if args.threads else []
    common += _flags(s, ("proxy_subset", "final_epochs"))
    if method == "single-path":
        return common + _flags(s, ("search_epochs", "warmup_epochs", "lambda_trials"))
    bo = _flags(s, ("trials", "proxy_epochs"))
    if args.quick:
        bo += ["--initial-points", "2", "--candidates", "40", "--rerank", "1"]
    return common + bo


def run_design(argv: list[str], run: Path) -> tuple[dict[str, Any], float]:
    """Run ``acnn design``; its JSON result and wall seconds."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = acnn(argv)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"acnn design failed ({code}); see the error above")
    return json.loads(out.getvalue()), seconds


def row(method: str, result: dict[str, Any], seconds: float, run: Path) -> dict[str, Any]:
    """One method's figures."""
    stage = result["stages"][0]
    if method == "single-path":
        sp = result["single_path"]
        search_epochs, search_seconds = sp["search_epochs"], sp["search_seconds"]
    else:  # proxy epochs per trained candidate, and their training seconds
        _, journal = load_run(run / "run")
        config = result["config"]
        search_epochs = len(journal) * config["proxy_epochs"]
        search_seconds = sum(r["seconds"] for r in journal)
    return {
        "method": method,
        "arch": stage["arch"],
        "energy_mj": stage["energy_mj"],
        "energy_label": result["energy_source"],
        "test_accuracy": result["test_accuracy"],
        "val_accuracy": result["val_accuracy"],
        "search_epochs": search_epochs,
        "search_seconds": search_seconds,
        "wall_seconds": seconds,
        "config": result["config"],
    }


def verdict(sp: dict[str, Any], bo: dict[str, Any]) -> dict[str, Any]:
    """Whether single-path reached an equal or better design in at most 1/5 of the time."""
    ratio = sp["wall_seconds"] / bo["wall_seconds"]
    as_good = sp["test_accuracy"] >= bo["test_accuracy"] and sp["energy_mj"] <= bo["energy_mj"]
    return {
        "wall_ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "design_as_good": as_good,
        "met": as_good and ratio <= TARGET_RATIO,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    s = settings(args)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for method in ("single-path", "bo"):
            run = work / method
            print(f"running acnn design --method {method} ...", file=sys.stderr)
            result, seconds = run_design(design_args(method, s, args, run), run)
            rows[method] = row(method, result, seconds, run)
    sp, bo = rows["single-path"], rows["bo"]
    check = verdict(sp, bo)
    table = format_table(
        ("method", "search epochs", "search s", "wall s", "mJ", "test acc", "architecture"),
        [
            (r["method"], f"{r['search_epochs']:g}", f"{r['search_seconds']:.1f}",
             f"{r['wall_seconds']:.1f}", f"{r['energy_mj']:.3g}", f"{r['test_accuracy']:.2%}",
             r["arch"])
            for r in (sp, bo)
        ],
    )  # fmt: skip
    print(table)
    print(
        f"wall-time ratio single-path / BO = {check['wall_ratio']:.2f} (target <= "
        f"{TARGET_RATIO}); design as good (accuracy and energy): {check['design_as_good']}; "
        f"target met: {check['met']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"settings": s, "seed": args.seed, "results": [sp, bo], "verdict": check}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
