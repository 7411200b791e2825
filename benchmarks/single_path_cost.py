"""Search cost of the single-path superkernel search against the BO designer.

Runs ``acnn design`` twice on the same dataset, device predictor and energy budget, one
local stage of the mbconv family and no cloud, each with its own empty training cache (so
neither reuses the other's training): ``--method single-path`` (superkernel search with
the automatic lambda, then the found network trained from scratch) and ``--method bo``
(``--trials N`` proxy-trained candidates, re-ranked and trained fully). It prints a
side-by-side table (search epochs, wall seconds, design, predicted energy, accuracy) and
writes JSON with every figure and the settings (the logic lives in
``adaptive_cnn.reproduce.search_cost``, shared with ``acnn reproduce single-path``). The
issue's target: the single-path wall
time at most 1/5 of the BO's for a design of equal or better (accuracy, energy).

    python benchmarks/single_path_cost.py --budget 2mJ [--trials 20] [--out FILE]
    python benchmarks/single_path_cost.py --quick --predictor P   # tiny run on digits
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from adaptive_cnn.reproduce.registry import ReproduceError
from adaptive_cnn.reproduce.search_cost import (
    QUICK,
    TARGET_RATIO,
    add_setting_arguments,
    compare,
    report,
    resolve_settings,
)
from adaptive_cnn.tables import format_table

__all__ = ["QUICK", "TARGET_RATIO", "main", "parse_args", "settings"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setting_arguments(parser)
    parser.add_argument("--predictor", help="energy predictor file (default: this machine's)")
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
    resolved = resolve_settings(args.quick, vars(args))
    resolved.setdefault("budget", "2mJ")  # as acnn reproduce single-path
    return resolved


def main(argv=None) -> int:
    args = parse_args(argv)
    s = settings(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        try:
            rows = compare(
                s, work, seed=args.seed, predictor=args.predictor, threads=args.threads,
                quick=args.quick, say=lambda text: print(text, file=sys.stderr),
            )  # fmt: skip
        except ReproduceError as exc:
            raise SystemExit(str(exc)) from None
    result = report(s, args.seed, rows)
    sp, bo = result["results"]
    check = result["verdict"]
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
        f"{TARGET_RATIO}); without each one's final training of its chosen network "
        f"{check['ratio_without_final_training']:.2f}; design as good (accuracy and energy): "
        f"{check['design_as_good']}; target met (wall-time ratio): {check['met']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
