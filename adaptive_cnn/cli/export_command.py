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
            "(N, K) out as 'probabilities') and a manifest, to RUN_DIR/export by default. "
            "The files are for the runtime the design was priced for (ONNX for onnxruntime, "
            "TorchScript for torchscript and eager torch) unless --format asks for another; "
            "the manifest then says 'priced for X, run in Y'."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument(
        "--format",
        default=None,
        choices=("torchscript", "onnx"),
        help="file format (default: the one of the runtime the design was priced for)",
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="target folder (default RUN_DIR/export)"
    )
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    import sys

    from adaptive_cnn.run_folder import load_run
    from rpc.export import default_format, export_label, export_run

    run = load_run(args.run_dir)
    fmt = args.format or default_format(run)
    for path in export_run(run, fmt, args.out):
        print(path)
    label = export_label(run, fmt)
    if label:  # on stderr: stdout lists the written files only
        print(f"acnn export: stage energies {label} (see the manifest)", file=sys.stderr)
    return 0
