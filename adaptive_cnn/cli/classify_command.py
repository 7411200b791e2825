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
            "estimates. Beside them, each local stage is timed per image in the runtime it "
            "runs, and its latency x the device's power is the measured-latency energy "
            "('measured' where a power sensor is read, else 'estimated from latency x "
            "declared power'). The stages run in the runtime the design was priced for "
            "unless --runtime names another; every energy then says 'priced for X, run in Y'."
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
    parser.add_argument(
        "--budget",
        type=values.energy_mj,
        default=None,
        metavar="ENERGY",
        help="run the design's frontier point that is most accurate within this device "
        "energy per image (e.g. 1.5mJ; a bare number is mJ; chosen on validation, "
        "estimated) instead of the design: a cheaper point without re-designing "
        "(default: the design itself)",
    )
    parser.add_argument("--labels", metavar="FILE", help="true labels (IDX or .npy): accuracy")
    parser.add_argument("--json", action="store_true", help="one JSON object per image + summary")
    parser.add_argument(
        "--runtime",
        default=None,
        choices=RUNTIMES,
        help="how the local stages run: onnxruntime, torchscript (the files acnn export "
        "writes) or torch (eager). Default: the runtime the design was priced for; another "
        "is run on request and its energies are labelled 'priced for X, run in Y'",
    )
    parser.add_argument(
        "--batch-size",
        type=values.int_in(1, 65536),
        default=1,
        metavar="IMAGES",
        help="images per local batch, 1..65536 (default 1: images one at a time, as a "
        "device meets them and as the design priced them; a larger batch shares each "
        "call's measured time among its images)",
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
        default=None,
        metavar="N",
        help="intra-op threads of the local stages, 1..1024 (default: the threads the "
        "design was priced for, else its device profile's)",
    )
    parser.set_defaults(run=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    import torch

    from adaptive_cnn.energy_check import deployed_threads
    from adaptive_cnn.run_folder import load_run
    from adaptive_cnn.stage import deployed_runtime
    from rpc.edge import EdgeClassifier
    from rpc.inputs import load_inputs, load_labels

    if args.cloud:
        from rpc.client import parse_target

        parse_target(args.cloud)  # an unusable address is an error before anything runs
    run = load_run(args.run_dir)
    if args.budget is not None:
        run = run.at_budget(args.budget)
        stages = " -> ".join(s.arch for s in run.local_stages)
        print(f"frontier point within {args.budget:g} mJ: {stages}", file=sys.stderr)
    if args.runtime is None:
        deployed_runtime(run)  # the priced runtime must be usable here, before any image
    torch.set_num_threads(deployed_threads(run, args.threads))
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
        threads=args.threads,
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

    headers = (
        "input", "label", "conf", "stage", "mJ (est.)", "mJ (latency)", "bytes", "ms", "note"
    )  # fmt: skip
    rows = [
        (
            a.source or str(a.index),
            a.class_name,
            f"{a.confidence:.3f}",
            a.stage,
            f"{a.energy_mj:.3g}",
            f"{a.measured_energy_mj:.3g}" if a.measured_energy_mj is not None else "-",
            str(a.bytes_sent),
            f"{a.latency_ms:.1f}",
            "degraded: " + (a.error or "") if a.degraded else "",
        )
        for a in answers
    ]
    if summary.energy_label:
        print(f"energies {summary.energy_label}")
    print(format_table(headers, rows))
    accuracy = "n/a (no --labels)" if summary.accuracy is None else f"{summary.accuracy:.2%}"
    tags = [t for t in ("estimated" * summary.energy_estimated, summary.energy_label) if t]
    print(
        f"\n{summary.images} images: accuracy {accuracy}; energy "
        f"{summary.energy_mj_per_image:.3g} mJ/image"
        + (f" ({', '.join(tags)})" if tags else "")
        + f"; offload rate {_percent(summary.offload_rate)}; degraded {summary.degraded}; "
        f"{summary.bytes_sent} bytes sent; exits {summary.exits}"
    )
    print(compute_line(summary))


def compute_line(summary) -> str:
    """The local compute energy per image, predicted and from measured latency."""
    priced = f"; {summary.energy_label}" if summary.energy_label else ""
    ratio = summary.measured_over_predicted
    return (
        f"local compute in {summary.runtime} ({summary.threads} thread(s)): predicted "
        f"{summary.predicted_compute_mj_per_image:.3g} mJ/image, from measured latency "
        f"{summary.measured_energy_mj_per_image:.3g} mJ/image ({summary.measured_energy_label}"
        f" at {summary.power_w:.3g} W{priced}); measured/predicted "
        + ("n/a" if ratio is None else f"{ratio:.2f}")
    )
