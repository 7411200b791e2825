"""``acnn train``: train and evaluate one network, through the training cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from adaptive_cnn.errors import ConfigError
from adaptive_cnn.progress import ProgressLine
from adaptive_cnn.tables import human_count

_CONFIG_FLAGS = ("epochs", "subset", "batch_size", "lr", "weight_decay")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train and evaluate one network (cached: a repeat request trains nothing)",
        description=(
            "Train one network on a dataset's training split, report validation and test "
            "accuracy, params and MACs per image. Results are cached by content, so the "
            "same request again is answered from the cache."
        ),
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--arch", help="architecture string, e.g. 'bn-c32k3p-c64k3p-fc128'")
    what.add_argument(
        "--family", help="train this family's reference architecture (see 'acnn networks')"
    )
    parser.add_argument("--reference", help="named reference of --family: small, medium or large")
    parser.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="dataset name (default: fashion-mnist; see 'acnn datasets')",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="folder holding the dataset's files"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file of training settings; flags override it",
    )
    parser.add_argument(
        "--epochs", type=float, metavar="N", help="training epochs, fractions allowed (default: 3)"
    )
    parser.add_argument(
        "--subset",
        type=int,
        metavar="IMAGES",
        help="train on this many training images (default: all)",
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="IMAGES", help="images per step (default: 128)"
    )
    parser.add_argument(
        "--lr", type=float, metavar="RATE", help="peak AdamW learning rate (default: 0.002)"
    )
    parser.add_argument(
        "--weight-decay", type=float, metavar="COEF", help="AdamW weight decay (default: 0.0001)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        default=0,
        help="seed of init, subset and batch order (default: 0)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        metavar="N",
        default=0,
        help="seed of the validation split (default: 0)",
    )
    parser.add_argument(
        "--val-fraction",
        type=fraction_or_count,
        default=0.1,
        metavar="F",
        help="validation share of the training images, a fraction in (0, 1) or an image "
        "count (default: 0.1)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="training cache folder (default: $ACNN_CACHE_DIR or ~/.cache/acnn)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="train even if cached, store nothing"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write train.json, weights.pt and probabilities here",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the table"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.training import TrainingCache, default_cache_dir, train

    config = resolve_config(args)
    arch = resolve_arch(args)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    dataset = load_dataset(
        args.dataset, data_dir=args.data_dir, seed=args.split_seed, val_fraction=args.val_fraction
    )
    cache = None if args.no_cache else TrainingCache(args.cache_dir or default_cache_dir())
    line = ProgressLine(f"train {arch}", enabled=not args.quiet)
    result = train(
        arch,
        dataset,
        config,
        args.seed,
        threads=args.threads,
        cache=cache,
        progress=lambda p: line.update(
            p.step,
            p.total_steps,
            f"epoch {p.epoch:.2f} loss {p.loss:.4f} {p.images_per_s:.0f} img/s",
        ),
    )
    line.close()
    record = {**result.summary(), "split": _split_record(dataset, args), "command": sys.argv[1:]}
    if args.out:
        write_outputs(args.out, result, record)
    print(json.dumps(record) if args.json else describe(result, dataset))
    return 0


def fraction_or_count(text: str) -> float | int:
    """'0.1' -> 0.1 (a share), '500' -> 500 (an image count)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def resolve_config(args: argparse.Namespace):
    """Training settings: defaults, then the --config file, then explicit flags."""
    from adaptive_cnn.training import TrainConfig

    values: dict = {}
    if args.config is not None:
        values.update(_read_yaml_mapping(args.config))
    for name in _CONFIG_FLAGS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return TrainConfig.from_dict(values)


def _read_yaml_mapping(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of training settings")
    return data


def resolve_arch(args: argparse.Namespace):
    from adaptive_cnn.networks import get_family, parse_arch

    if args.arch is not None:
        if args.reference:
            raise ConfigError("--reference goes with --family, not --arch")
        return parse_arch(args.arch)
    family = get_family(args.family)
    if not args.reference:
        return family.reference()
    references = family.references()
    if args.reference not in references:
        raise ConfigError(
            f"family {family.name!r} has no reference {args.reference!r}; "
            f"known: {', '.join(references)}"
        )
    return references[args.reference]


def _split_record(dataset, args: argparse.Namespace) -> dict:
    return {
        "split_seed": dataset.split_seed,
        "val_fraction": args.val_fraction,
        "num_train": len(dataset.train),
        "num_val": len(dataset.val),
        "num_test": len(dataset.test),
        "source": dataset.source,
    }


def write_outputs(folder: Path, result, record: dict) -> None:
    """Write the record, weights and held-out probabilities into ``folder``."""
    import numpy as np
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(result.state_dict, folder / "weights.pt")
    np.save(folder / "val_probs.npy", result.val_probs, allow_pickle=False)
    np.save(folder / "test_probs.npy", result.test_probs, allow_pickle=False)
    tmp = folder / "train.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, folder / "train.json")


def describe(result, dataset) -> str:
    trained = f"{result.train_seconds:.1f} s"
    if result.cache_hit:
        trained = f"cache hit (originally trained in {result.train_seconds:.1f} s)"
    rows = [
        ("arch", result.arch),
        (
            "dataset",
            f"{dataset.name} (train {len(dataset.train)} / val {len(dataset.val)}"
            f" / test {len(dataset.test)})",
        ),
        ("val accuracy", f"{result.val_accuracy * 100:.2f}%"),
        ("test accuracy", f"{result.test_accuracy * 100:.2f}%"),
        ("params", f"{result.params} ({human_count(result.params)})"),
        ("MACs/image", f"{result.macs} ({human_count(result.macs)})"),
        (
            "training",
            f"{trained}, {result.config.epochs:g} epochs, seed {result.seed},"
            f" {result.threads} threads",
        ),
    ]
    return "\n".join(f"{k:<14} {v}" for k, v in rows)
