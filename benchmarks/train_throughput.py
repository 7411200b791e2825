"""Training throughput and batch-1 inference latency of reference architectures.

Measures, for each architecture, on the real dataset and the real code path:
- training images/s of ``adaptive_cnn.training.train`` (AdamW steps, batch 128), taken
  over the steps after a warm-up, from the trainer's own progress reports;
- batch-1 inference latency (eval mode, no grad): median and p90 of many timed calls
  after warm-up calls, in the trainer's memory format (channels-last) and in NCHW.

Prints one line per architecture and writes a JSON file with the figures, the resolved
settings and the machine they ran on.

    python benchmarks/train_throughput.py [--dataset fashion-mnist] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import psutil
import torch

from adaptive_cnn.data import load_dataset
from adaptive_cnn.networks import arch_cost, create_network, get_family
from adaptive_cnn.training import TrainConfig, torch_threads, train
from adaptive_cnn.training.trainer import MEMORY_FORMAT

DEFAULT_ARCHS = ("conv:small", "conv:large", "mbconv:medium")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument(
        "--archs",
        nargs="+",
        default=list(DEFAULT_ARCHS),
        help="FAMILY:REFERENCE names or architecture strings (default: %(default)s)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=100, help="timed training steps (default: 100)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="training measurements, median reported (default: 3)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=10, help="untimed first steps (default: 10)"
    )
    parser.add_argument(
        "--latency-runs", type=int, default=300, help="timed batch-1 calls (default: 300)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/train_throughput.json")
    )
    return parser.parse_args(argv)


def resolve(name: str):
    """'conv:large' -> that family's reference; anything else is an architecture string."""
    family, _, reference = name.partition(":")
    from adaptive_cnn.networks import list_networks, parse_arch

    if family in list_networks() and reference in get_family(family).references():
        return get_family(family).references()[reference]
    return parse_arch(name)


def training_images_per_s(arch, dataset, args) -> dict:
    """Median (and every sample) of images/s over ``args.repeats`` short training runs."""
    samples = [_one_training_run(arch, dataset, args, seed) for seed in range(args.repeats)]
    return {"median": statistics.median(samples), "samples": samples}


def _one_training_run(arch, dataset, args, seed: int) -> float:
    stamps: list[tuple[int, float]] = []
    steps = args.warmup_steps + args.train_steps
    config = TrainConfig(epochs=1, subset=steps * args.batch_size, batch_size=args.batch_size)
    train(
        arch,
        dataset,
        config,
        seed=0,
        threads=args.threads,
        progress=lambda p: stamps.append((p.step, time.perf_counter())),
    )
    timed = [(s, t) for s, t in stamps if s >= args.warmup_steps]
    if len(timed) < 2:
        raise SystemExit("too few progress reports to time: raise --train-steps")
    (s0, t0), (s1, t1) = timed[0], timed[-1]
    return (s1 - s0) * args.batch_size / (t1 - t0)


@torch.inference_mode()
def latency_ms(arch, dataset, runs: int, memory_format: torch.memory_format) -> dict:
    """Batch-1 eval latency in ms; ``memory_format`` applies to the model and its input."""
    model = create_network(arch, dataset.input_shape, dataset.num_classes)
    model = model.to(memory_format=memory_format).eval()
    x = torch.randn(1, *dataset.input_shape).contiguous(memory_format=memory_format)
    for _ in range(max(20, runs // 10)):
        model(x)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p90": samples[int(0.9 * (len(samples) - 1))],
        "min": samples[0],
        "runs": runs,
    }


def summary_line(row: dict) -> str:
    latency = row["latency_ms_batch1"]
    return (
        f"{row['name']:<16} {row['arch']:<40} "
        f"train {row['train_images_per_s']['median']:8.0f} img/s (median)   "
        f"batch-1 latency median {latency['median']:.3f} ms (p90 {latency['p90']:.3f}; "
        f"NCHW {row['latency_ms_batch1_nchw']['median']:.3f})"
    )


def machine() -> dict:
    freq = psutil.cpu_freq()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "processor": platform.processor() or platform.machine(),
        "logical_cpus": psutil.cpu_count(),
        "cpu_mhz": freq.current if freq else None,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    dataset = load_dataset(args.dataset)
    rows = []
    with torch_threads(args.threads) as threads:
        for name in args.archs:
            arch = resolve(name)
            cost = arch_cost(arch, dataset.input_shape, dataset.num_classes)
            row = {
                "name": name,
                "arch": str(arch),
                "params": cost.params,
                "macs": cost.macs,
                "train_images_per_s": training_images_per_s(arch, dataset, args),
                "latency_ms_batch1": latency_ms(arch, dataset, args.latency_runs, MEMORY_FORMAT),
                "latency_ms_batch1_nchw": latency_ms(
                    arch, dataset, args.latency_runs, torch.contiguous_format
                ),
            }
            rows.append(row)
            print(summary_line(row), flush=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report = {
        "benchmark": "train_throughput",
        "dataset": args.dataset,
        "threads": threads,
        "settings": settings,
        "machine": machine(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
