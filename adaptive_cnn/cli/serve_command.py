"""``acnn serve``: the design's stages over the Open Inference Protocol (gRPC)."""

from __future__ import annotations

import argparse
import logging

from adaptive_cnn import flag_values as values

MAX_MESSAGE_MIB = 2047  # gRPC's message size is a signed 32-bit byte count


def add_parser(commands) -> None:
    from energy_models.devices import RUNTIMES  # torch-free, unlike energy_models.runtimes

    parser = commands.add_parser(
        "serve",
        help="serve a design's cloud model and local stages over gRPC (Open Inference Protocol)",
        description=(
            "Serve the cloud model of an `acnn design` run folder as 'cloud' and its local "
            "stages as 'stage1'..'stageN' (version 1) over the KServe v2 Open Inference "
            "Protocol on gRPC, with dynamic batching, a bounded queue (overload answers "
            "RESOURCE_EXHAUSTED), the gRPC health service, optional TLS and bearer-token "
            "auth, in ONNX Runtime unless the design was priced for another runtime. "
            "Input 'input': FP32 (N, C, H, W) in the dataset's native pixel scale "
            "(UINT8 also accepted); output 'probabilities': FP32 (N, K). SIGTERM drains."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=values.port,
        default=8001,
        metavar="PORT",
        help="TCP port, 1..65535; 0: any free port, printed when serving (default 8001)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=values.int_in(1, 65536),
        default=32,
        metavar="IMAGES",
        help="most images per model call, 1..65536 (default 32)",
    )
    parser.add_argument(
        "--max-queue-delay-ms",
        type=values.float_in(0.0, 60_000.0),
        default=2.0,
        metavar="MS",
        help="longest wait for a batch to fill, ms, 0..60000 (default 2)",
    )
    parser.add_argument(
        "--max-queue-size",
        type=values.int_in(1, 1_000_000),
        default=256,
        metavar="REQUESTS",
        help="queued requests per model before RESOURCE_EXHAUSTED, 1..1000000 (default 256)",
    )
    parser.add_argument(
        "--workers",
        type=values.int_in(1, 4096),
        default=64,
        metavar="N",
        help="gRPC calls handled at once (server threads), 1..4096 (default 64)",
    )
    parser.add_argument(
        "--max-message-mb",
        type=values.float_in(maximum=MAX_MESSAGE_MIB, above=0.0),
        default=16.0,
        metavar="MIB",
        help=f"largest request or response, MiB, at most {MAX_MESSAGE_MIB} (gRPC's limit; "
        "default 16)",
    )
    parser.add_argument(
        "--drain-s",
        type=values.float_in(0.0, 3600.0),
        default=10.0,
        metavar="S",
        help="grace period for calls in flight on SIGTERM, s, 0..3600 (default 10)",
    )
    parser.add_argument(
        "--threads",
        type=values.threads,
        default=None,
        metavar="N",
        help="intra-op threads per model call, 1..1024: each ONNX Runtime session's, and "
        "torch's for the torch runtimes (default: torch's choice, all cores; ONNX Runtime "
        "divides them among --instances)",
    )
    parser.add_argument(
        "--instances",
        type=values.int_in(1, 256),
        default=1,
        metavar="N",
        help="batches of one model computed at once, each on its own thread (the runtimes "
        "release the GIL while a model runs), 1..256 (default 1)",
    )
    parser.add_argument(
        "--runtime",
        default=None,
        choices=RUNTIMES,
        help="how models run: onnxruntime (one session per model, any batch size), "
        "torchscript (traced, frozen, batch norms folded; checked against eager torch "
        "within 1e-5) or torch (eager). Default: the runtime the design was priced for, "
        "where the run folder records one, else onnxruntime; another one is announced as "
        "'priced for X, run in Y'",
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="server certificate chain (TLS)")
    parser.add_argument("--tls-key", metavar="PEM", help="server private key (TLS)")
    parser.add_argument(
        "--tls-client-ca", metavar="PEM", help="require client certificates signed by this CA"
    )
    parser.add_argument(
        "--token-file", metavar="FILE", help="require 'authorization: Bearer <token in FILE>'"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning"),
        help="debug: one JSON line per call (default info)",
    )
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import torch

    from adaptive_cnn.run_folder import load_run
    from rpc.server import ServerConfig, serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        max_queue_delay_ms=args.max_queue_delay_ms,
        max_queue_size=args.max_queue_size,
        workers=args.workers,
        max_message_bytes=int(args.max_message_mb * 2**20),
        drain_grace_s=args.drain_s,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        token_file=args.token_file,
        runtime=args.runtime,
        instances=args.instances,
        threads=args.threads,
    )
    serve(load_run(args.run_dir), config, announce=lambda line: print(line, flush=True))
    return 0
