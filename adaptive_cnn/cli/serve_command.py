"""``acnn serve``: the design's stages over the Open Inference Protocol (gRPC)."""

from __future__ import annotations

import argparse
import logging


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
            "auth. Input 'input': FP32 (N, C, H, W) in the dataset's native pixel scale "
            "(UINT8 also accepted); output 'probabilities': FP32 (N, K). SIGTERM drains."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by acnn design")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port (default 8001; 0: any)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="images per model call")
    parser.add_argument(
        "--max-queue-delay-ms", type=float, default=2.0, help="wait for a batch to fill, ms"
    )
    parser.add_argument(
        "--max-queue-size", type=int, default=256, help="queued requests per model before refusal"
    )
    parser.add_argument("--workers", type=int, default=64, help="calls handled at once")
    parser.add_argument(
        "--max-message-mb", type=float, default=16.0, help="largest message, MiB (default 16)"
    )
    parser.add_argument("--drain-s", type=float, default=10.0, help="grace period on SIGTERM, s")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--runtime",
        default="torchscript",
        choices=RUNTIMES,
        help="how models run: torchscript (traced, frozen, batch norms folded; checked "
        "against eager torch within 1e-5), torch (eager) or onnxruntime (default "
        "torchscript)",
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
        help="debug: one JSON line per call",
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
    )
    serve(load_run(args.run_dir), config, announce=lambda line: print(line, flush=True))
    return 0
