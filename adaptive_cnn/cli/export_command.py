"""``acnn export``: a design's stages as TorchScript or ONNX files."""

from __future__ import annotations

import argparse


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="write a design's stages as TorchScript or ONNX files",
        description=(
            "Export every stage of an `acnn design` run folder (preprocessing and softmax "
            "included: FP32 native-scale pixels (N, C, H, W) in as 'input', probabilities "
            "(N, K) out as 'probabilities') and a manifest, to RUN_DIR/export by default."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument(
        "--format", required=True, choices=("torchscript", "onnx"), help="file format (required)"
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="target folder (default RUN_DIR/export)"
    )
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from adaptive_cnn.run_folder import load_run
    from rpc.export import export_run

    for path in export_run(load_run(args.run_dir), args.format, args.out):
        print(path)
    return 0
