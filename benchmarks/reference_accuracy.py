"""Test accuracy and training wall time of reference networks on Fashion-MNIST.

Trains each (architecture, epochs) pair with the real trainer (through the training
cache, so a re-run only re-reads results; ``--no-cache`` retrains), then prints a
markdown table and writes JSON with every figure and the settings that produced it.

    python benchmarks/reference_accuracy.py [--dataset fashion-mnist] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from adaptive_cnn.data import load_dataset
from adaptive_cnn.networks import get_family
from adaptive_cnn.training import TrainConfig, TrainingCache, default_cache_dir, train

# (family, reference, epochs): a small net within 3 epochs, larger ones given more.
DEFAULT_RUNS = (
    ("conv", "small", 3.0),
    ("conv", "medium", 3.0),
    ("conv", "large", 3.0),
    ("conv", "large", 8.0),
    ("mbconv", "small", 3.0),
    ("mbconv", "medium", 3.0),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument(
        "--runs",
        nargs="+",
        metavar="FAMILY:REFERENCE:EPOCHS",
        help="e.g. conv:small:3 mbconv:medium:5 (default: the table in this file)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--no-cache", action="store_true", help="retrain even if cached")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/reference_accuracy.json")
    )
    return parser.parse_args(argv)


def runs_from(args: argparse.Namespace) -> list[tuple[str, str, float]]:
    if not args.runs:
        return list(DEFAULT_RUNS)
    runs = []
    for text in args.runs:
        family, reference, epochs = text.split(":")
        runs.append((family, reference, float(epochs)))
    return runs


def markdown(rows: list[dict]) -> str:
    lines = [
        "| family | reference | architecture | MACs/image | params | epochs | "
        "val acc | test acc | train time |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['reference']} | `{r['arch']}` | {r['macs'] / 1e6:.2f} M | "
            f"{r['params'] / 1e3:.0f} k | {r['config']['epochs']:g} | "
            f"{r['val_accuracy'] * 100:.2f}% | {r['test_accuracy'] * 100:.2f}% | "
            f"{r['train_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    dataset = load_dataset(args.dataset)
    cache = None if args.no_cache else TrainingCache(default_cache_dir())
    rows = []
    for family, reference, epochs in runs_from(args):
        arch = get_family(family).references()[reference]
        print(f"training {family}:{reference} {arch} for {epochs:g} epochs ...", flush=True)
        result = train(
            arch, dataset, TrainConfig(epochs=epochs), args.seed, threads=args.threads, cache=cache
        )
        rows.append({"reference": reference, **result.summary()})
    table = markdown(rows)
    print(table)
    report = {
        "benchmark": "reference_accuracy",
        "dataset": args.dataset,
        "seed": args.seed,
        "torch": torch.__version__,
        "table_markdown": table,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"wrote {args.out} (train time is the wall time of the run that trained each "
        "network; cached rows were not retrained)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
