"""``acnn train``: train and evaluate one network, through the training cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from adaptive_cnn import flag_values as values
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
        "--epochs",
        type=values.positive_float,
        metavar="N",
        help="training epochs, fractions allowed (default: 3)",
    )
    parser.add_argument(
        "--subset",
        type=values.positive_int,
        metavar="IMAGES",
        help="train on this many training images (default: all)",
    )
    parser.add_argument(
        "--batch-size",
        type=values.positive_int,
        metavar="IMAGES",
        help="images per step (default: 128)",
    )
    parser.add_argument(
        "--lr",
        type=values.positive_float,
        metavar="RATE",
        help="peak AdamW learning rate, > 0 (default: 0.002)",
    )
    parser.add_argument(
        "--weight-decay",
        type=values.non_negative_float,
        metavar="COEF",
        help="AdamW weight decay, >= 0 (default: 0.0001)",
    )
    parser.add_argument(
        "--seed",
        type=values.seed,
        metavar="N",
        default=0,
        help="seed of init, subset and batch order (default: 0)",
    )
    parser.add_argument(
        "--split-seed",
        type=values.seed,
        metavar="N",
        default=0,
        help="seed of the validation split (default: 0)",
    )
    parser.add_argument(
        "--val-fraction",
        type=values.fraction_or_count,
        default=0.1,
        metavar="F",
        help="validation share of the training images, a fraction in (0, 1) or an image "
        "count (default: 0.1)",
    )
    parser.add_argument(
        "--threads",
        type=values.threads,
        metavar="N",
        help="torch CPU threads, 1..1024 (default: torch's choice)",
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
    dataset = load_dataset(
        args.dataset, data_dir=args.data_dir, seed=args.split_seed, val_fraction=args.val_fraction
    )
    batch = min(config.batch_size, config.subset or len(dataset.train))
    check_fits_memory(arch, dataset.input_shape, dataset.num_classes, batch)
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


def check_fits_memory(
    arch, input_shape: tuple[int, int, int], num_classes: int, batch: int
) -> None:
    """Refuse, before it is built, a network whose training needs more than the local
    device profile's memory limit (``acnn devices``): at least its fp32 weights four times
    (weights, gradients, AdamW's two moments) plus ``batch`` x its peak activations."""
    from adaptive_cnn.networks import describe_arch
    from energy_models.devices import load_device
    from energy_models.memory import memory_estimate
    from energy_models.units import format_bytes

    limit = load_device("local").memory_limit_bytes
    try:
        memory = memory_estimate(describe_arch(arch, input_shape, num_classes), input_shape)
    except (RuntimeError, MemoryError) as exc:  # its weights could not even be allocated
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{arch} is too large to build here: {first}") from None
    needed = 4 * memory.weight_bytes_fp32 + batch * memory.peak_activation_bytes_fp32
    if needed > limit:
        raise ConfigError(
            f"{arch} needs at least {format_bytes(needed)} to train at batch {batch} "
            f"({human_count(memory.params)} params: 4 x {format_bytes(memory.weight_bytes_fp32)}"
            f" of fp32 weights, gradients and AdamW moments + {batch} x "
            f"{format_bytes(memory.peak_activation_bytes_fp32)} of peak activations), over the "
            f"local device's memory limit of {format_bytes(limit)} (acnn devices)"
        )


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
