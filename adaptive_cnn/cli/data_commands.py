"""``acnn datasets`` and ``acnn networks``: what can be used here."""

from __future__ import annotations

import argparse
import json

from adaptive_cnn import flag_values as values
from adaptive_cnn.tables import format_table, human_count

MAX_CHANNELS = 64
MAX_SIDE = 4096  # pixels; 64 x 4096 x 4096 fp32 is already 4 GiB for the input alone
SHAPE_LIMITS = f"C <= {MAX_CHANNELS}, H and W <= {MAX_SIDE}"
NUM_CLASSES = values.int_in(2, 100_000)


def add_datasets_parser(commands) -> None:
    parser = commands.add_parser(
        "datasets",
        help="list the datasets acnn can read and whether they are available here",
        description="List datasets, where acnn looks for them, and their sizes (images).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per dataset")
    parser.set_defaults(run=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from adaptive_cnn.data import list_datasets

    statuses = list_datasets()
    if args.json:
        for status in statuses:
            print(json.dumps(_status_dict(status)))
        return 0
    rows = [
        (
            s.name,
            "yes" if s.available else "no",
            s.num_train,
            s.num_test,
            "x".join(map(str, s.input_shape)) if s.input_shape else None,
            s.num_classes,
            s.location,
        )
        for s in statuses
    ]
    headers = ("dataset", "available", "train imgs", "test imgs", "C x H x W", "classes", "where")
    print(format_table(headers, rows))
    for status in statuses:
        if not status.available:
            print(f"  {status.name}: {status.how_to_get}")
    return 0


def _status_dict(status) -> dict:
    return {
        "name": status.name,
        "available": status.available,
        "num_train": status.num_train,
        "num_test": status.num_test,
        "input_shape": list(status.input_shape) if status.input_shape else None,
        "num_classes": status.num_classes,
        "location": status.location,
        "description": status.description,
        "how_to_get": status.how_to_get,
    }


def add_networks_parser(commands) -> None:
    parser = commands.add_parser(
        "networks",
        help="list the network families and their reference architectures",
        description=(
            "List registered network families, their reference architectures with params "
            "and MACs per image (multiply-accumulates) for an input shape, and the number "
            "of optimiser dimensions of each family's search space."
        ),
    )
    parser.add_argument(
        "--input-shape",
        default="1x28x28",
        metavar="CxHxW",
        help=f"C x H x W of one image (default: 1x28x28; {SHAPE_LIMITS})",
    )
    parser.add_argument(
        "--classes",
        type=NUM_CLASSES,
        default=10,
        metavar="N",
        help="number of classes, 2..100000 (default: 10)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    parser.set_defaults(run=run_networks)


def run_networks(args: argparse.Namespace) -> int:
    from adaptive_cnn.networks import arch_cost, get_family, list_networks

    shape = parse_shape(args.input_shape)
    rows = []
    for name in list_networks():
        family = get_family(name)
        for size, arch in family.references().items():
            cost = arch_cost(arch, shape, args.classes)
            rows.append((name, size, str(arch), cost.params, cost.macs, len(family.dimensions())))
    if args.json:
        keys = ("family", "reference", "arch", "params", "macs", "dimensions")
        for row in rows:
            print(json.dumps(dict(zip(keys, row, strict=True))))
        return 0
    table_rows = [(f, s, a, human_count(p), human_count(m), d) for f, s, a, p, m, d in rows]
    headers = ("family", "reference", "arch", "params", "MACs/image", "search dims")
    print(format_table(headers, table_rows))
    return 0


def parse_shape(text: str) -> tuple[int, int, int]:
    """'3x32x32' -> (3, 32, 32); anything else, or a shape over :data:`SHAPE_LIMITS`
    (checked before anything is allocated for it), is a ConfigError."""
    from adaptive_cnn.errors import ConfigError

    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"input shape must be CxHxW with positive integers, got {text!r}")
    c, h, w = (int(p) for p in parts)
    if c > MAX_CHANNELS or h > MAX_SIDE or w > MAX_SIDE:
        raise ConfigError(f"input shape {c}x{h}x{w} is too large: {SHAPE_LIMITS}")
    return c, h, w
