"""``acnn classify``: run a design's cascade on this device, with the cloud behind it."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from adaptive_cnn import flag_values as values


def add_parser(commands) -> None:
    from energy_models.devices import RUNTIMES  # torch-free, unlike energy_models.runtimes

    parser = commands.add_parser(
        "classify",
        help="classify images with a design's cascade (local stages, then the cloud)",
        description=(
            "Run the local stages of an `acnn design` run folder on this device, exit where "
            "the design's thresholds say, and forward the rest to the cloud model "
            "(--cloud HOST:PORT, any Open Inference Protocol server: acnn serve, Triton, "
            "MLServer). When the cloud fails, the most confident local answer is given, "
            "marked degraded. Inputs: PNG/JPEG files (or folders of them), IDX files, .npy "
            "arrays (N x H x W or N x C x H x W) in the dataset's native pixel scale. "
            "Energies are the design's predictions plus the link model's radio energy: "
            "estimates."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument("paths", metavar="PATHS", nargs="+", help="images, IDX or .npy files")
    parser.add_argument(
        "--cloud",
        metavar="HOST:PORT",
        help="the cloud model's server (default: none, the last local stage answers all)",
    )
    parser.add_argument(
        "--model", default="cloud", help="model name on the cloud server (default cloud)"
    )
    parser.add_argument("--link", default=None, help="link to charge (default: the design's)")
    parser.add_argument("--labels", metavar="FILE", help="true labels (IDX or .npy): accuracy")
    parser.add_argument("--json", action="store_true", help="one JSON object per image + summary")
    parser.add_argument(
        "--runtime",
        default="torchscript",
        choices=RUNTIMES,
        help="how the local stages run: torchscript (the module acnn export writes), "
        "onnxruntime or torch (eager); default torchscript",
    )
    parser.add_argument(
        "--batch-size",
        type=values.int_in(1, 65536),
        default=32,
        metavar="IMAGES",
        help="images per local batch, 1..65536 (default 32)",
    )
    parser.add_argument(
        "--deadline-ms",
        type=values.float_in(maximum=3_600_000.0, above=0.0),
        default=2000.0,
        metavar="MS",
        help="deadline of each cloud attempt, ms, > 0 (default 2000)",
    )
    parser.add_argument(
        "--retries",
        type=values.int_in(0, 100),
        default=2,
        metavar="N",
        help="retries of a cloud call that is unavailable or busy, 0..100 (default 2)",
    )
    parser.add_argument("--token-file", metavar="FILE", help="bearer token for the cloud")
    parser.add_argument("--tls-ca", metavar="PEM", help="use TLS, trusting this CA")
    parser.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", metavar="PEM", help="client key (mutual TLS)")
    parser.add_argument(
        "--wire-dtype",
        default="auto",
        choices=("auto", "fp32", "uint8"),
        help="pixels on the wire (auto: uint8 for 8-bit whole pixels, else fp32; default auto)",
    )
    parser.add_argument(
        "--threads",
        type=values.threads,
        default=1,
        metavar="N",
        help="torch intra-op threads, 1..1024 (default 1)",
    )
    parser.set_defaults(run=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    import torch

    from adaptive_cnn.run_folder import load_run
    from rpc.edge import EdgeClassifier
    from rpc.inputs import load_inputs, load_labels

    if args.cloud:
        from rpc.client import parse_target

        parse_target(args.cloud)  # an unusable address is an error before anything runs
    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    images, sources = load_inputs(args.paths, run.input)
    labels = load_labels(args.labels, len(images)) if args.labels else None
    cloud = _cloud(args)
    if cloud is not None:
        try:
            # a server that answers must serve the model; one that does not answer now is
            # not an input error: its images are answered degraded (and counted below)
            cloud.check_model(timeout_s=args.deadline_ms / 1e3)
        except Exception:
            cloud.close()
            raise
    classifier = EdgeClassifier(
        run,
        cloud,
        link=args.link,
        runtime=args.runtime,
        batch_size=args.batch_size,
    )
    try:
        answers, summary = classifier.classify(images, labels, sources)
    finally:
        classifier.close()
    if cloud is not None and summary.degraded:
        print(f"acnn: warning: {cloud_warning(args.cloud, answers)}", file=sys.stderr)
    if args.json:
        for a in answers:
            print(json.dumps(a.to_dict()))
        print(json.dumps(summary.to_dict()))
        return 0
    _print_table(answers, summary)
    return 0


def _cloud(args: argparse.Namespace):
    if not args.cloud:
        return None
    from rpc.auth import channel_credentials, read_token
    from rpc.client import CloudClient, RetryPolicy

    tls = args.tls_ca or args.tls_cert
    return CloudClient(
        args.cloud,
        model=args.model,
        deadline_s=args.deadline_ms / 1e3,
        retry=RetryPolicy(attempts=1 + args.retries),
        token=read_token(args.token_file) if args.token_file else None,
        credentials=channel_credentials(args.tls_ca, args.tls_cert, args.tls_key) if tls else None,
        wire_datatype=args.wire_dtype,
    )


def cloud_warning(target: str, answers) -> str:
    """One line on the degraded answers of a run with a cloud: how many, and why."""
    degraded = [a for a in answers if a.degraded]
    codes = Counter((a.error or "").partition(":")[0] or "UNKNOWN" for a in degraded)
    sent = sum(a.bytes_sent for a in degraded)
    if set(codes) == {"UNAVAILABLE"}:
        what = "was unreachable"
    else:
        what = "did not answer (" + ", ".join(f"{c} x{n}" for c, n in codes.most_common()) + ")"
    images, them = ("image", "it") if len(degraded) == 1 else ("images", "them")
    return (
        f"the cloud at {target} {what}; {len(degraded)} {images} answered by the most "
        f"confident local stage (degraded); {sent} bytes sent for {them}"
    )


def _percent(rate: float) -> str:
    """``0%``, ``12.5%``, ``100%``: a share with at most one decimal."""
    text = f"{100 * rate:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def _print_table(answers, summary) -> None:
    from adaptive_cnn.tables import format_table

    headers = ("input", "label", "conf", "stage", "mJ (est.)", "bytes", "ms", "note")
    rows = [
        (
            a.source or str(a.index),
            a.class_name,
            f"{a.confidence:.3f}",
            a.stage,
            f"{a.energy_mj:.3g}",
            str(a.bytes_sent),
            f"{a.latency_ms:.1f}",
            "degraded: " + (a.error or "") if a.degraded else "",
        )
        for a in answers
    ]
    print(format_table(headers, rows))
    accuracy = "n/a (no --labels)" if summary.accuracy is None else f"{summary.accuracy:.2%}"
    print(
        f"\n{summary.images} images: accuracy {accuracy}; energy "
        f"{summary.energy_mj_per_image:.3g} mJ/image"
        + (" (estimated)" if summary.energy_estimated else "")
        + f"; offload rate {_percent(summary.offload_rate)}; degraded {summary.degraded}; "
        f"{summary.bytes_sent} bytes sent; exits {summary.exits}"
    )
