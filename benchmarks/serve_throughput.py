"""Serving throughput of acnn serve against MLServer, and the client's routing overhead.

1. Throughput: the same cloud model, served by ``acnn serve`` and by Seldon MLServer (with
   the runtime of ``rpc/mlserver_runtime.py``), each in its own process on 127.0.0.1 with
   one intra-op thread, the same model runtime (``--runtime``, default ONNX Runtime, acnn
   serve's default: both servers run the same ONNX file in an ONNX Runtime session, so the
   ratio compares servers) and the same batching settings (max batch 32; one
   server process per ``--max-queue-delay-ms``, default 0 and 2 ms; each level takes each
   server's best:
   at 0 acnn batches whatever queued while the model ran, MLServer does not batch), called
   by the same client: tritonclient's gRPC client, N threads each sending batch-1 FP32 requests
   for a fixed time, both servers up at once and timed in interleaved rounds (order
   alternating). Reported per server and concurrency: requests/s, p50 and p99 latency of
   the median round, the server process's CPU time per request (which shows where the
   ratio comes from when client and servers share the cores), and the median of the
   per-round acnn/MLServer ratios. MLServer is found by
   :func:`rpc.mlserver_peer.mlserver_executable` (``$ACNN_MLSERVER``, next to this Python,
   or on PATH); it may live in a venv of its own with only ``mlserver`` and
   ``onnxruntime``: ``python3 -m venv /tmp/mls && /tmp/mls/bin/pip install mlserver
   onnxruntime``, then ``ACNN_MLSERVER=/tmp/mls/bin/mlserver``.
2. Routing overhead: ``EdgeClassifier`` (the on-device client, torch runtime, no cloud
   forwarding) against the same local stages run directly with torch and the same exit
   rule, on the same images, in interleaved pairs of 250-image runs (15 passes over the
   images): the median over pairs of the client's
   time over the direct time, minus 1.

With ``--run-dir`` the design's own models are served and routed, on its dataset's test
images. Without it a run folder is written by hand in ``acnn design``'s format:
digits-shaped input, the conv family's reference networks (small, medium local; large in
the cloud), untrained weights (speed does not depend on them), stage-1 threshold at the
median confidence so that about half the images go on to stage 2.

    python benchmarks/serve_throughput.py [--run-dir RUN] [--seconds 4] [--rounds 3]
        [--runtime onnxruntime] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from adaptive_cnn.data import load_dataset
from adaptive_cnn.networks import create_network, get_family
from adaptive_cnn.run_folder import load_run
from adaptive_cnn.stage import load_stage_model
from energy_models.devices import RUNTIMES
from rpc.edge import EdgeClassifier
from rpc.mlserver_peer import mlserver_executable, start_mlserver
from selector import confidence

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 15  # passes over the routing images; each pass times every chunk both ways
ROUTING_CHUNK = 250  # images per timed (direct, client) pair


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None, help="an acnn design run folder")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument(
        "--max-queue-delay-ms",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        metavar="MS",
        help="batching delays each server runs with, ms; each level reports each server's "
        "best (default 0 2; at 0 acnn batches what queued while the model ran, MLServer "
        "does not batch)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnxruntime",
        help="how both servers run the model (acnn serve --runtime; the MLServer runtime "
        "gets the same): onnxruntime (the same ONNX file in both; default), torchscript "
        "(traced, frozen, batch norms folded; MLServer's venv then needs torch) or torch "
        "(eager)",
    )
    parser.add_argument(
        "--no-throughput", action="store_true", help="measure only the routing overhead"
    )
    parser.add_argument("--routing-images", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/serve_throughput.json"))
    return parser.parse_args(argv)


def write_hand_run(folder: Path, images: np.ndarray) -> Path:
    """A run folder in acnn design's format with untrained reference networks."""
    refs = {k: v.to_str() for k, v in get_family("conv").references().items()}
    torch.manual_seed(0)
    stages = []
    for name, ref, where in (
        ("stage1.pt", refs["small"], "device"),
        ("stage2.pt", refs["medium"], "device"),
        ("cloud.pt", refs["large"], "cloud over wifi"),
    ):
        network = create_network(f"conv:{ref}", (1, 8, 8), 10)
        torch.save(network.state_dict(), folder / name)
        stages.append({"arch": f"conv:{ref}", "where": where, "weights": name, "energy_mj": 0.0})
    summary = {
        "stages": stages,
        "policy": {"thresholds": [0.0, 0.0], "metric": "margin"},
        "input": {
            "dataset": "digits",
            "shape": [1, 8, 8],
            "num_classes": 10,
            "class_names": [str(i) for i in range(10)],
            "preprocessing": {"pixel_max": 16.0, "mean": [0.3], "std": [0.38]},
        },
        "link": "wifi",
        "device": "local",
        "energy_source": "estimated",
        "config": {"cloud_latency_ms": 5.0},
    }
    (folder / "result.json").write_text(json.dumps(summary))
    run = load_run(folder)
    with torch.inference_mode():
        p1 = _run(_direct_models(run)[0], images[:500])
    summary["policy"]["thresholds"][0] = float(np.median(confidence(p1, "margin")))
    (folder / "result.json").write_text(json.dumps(summary))
    return folder


def _direct_models(run):
    return [load_stage_model(run, s) for s in run.local_stages]


class Load:
    """N client threads, each with its own tritonclient, sending batch-1 requests."""

    def __init__(self, address: str, model: str, images: np.ndarray, pid: int) -> None:
        import tritonclient.grpc as grpcclient

        self.grpcclient, self.address, self.model, self.images = grpcclient, address, model, images
        self.server = psutil.Process(pid)

    def run(self, concurrency: int, seconds: float) -> dict:
        latencies: list[list[float]] = [[] for _ in range(concurrency)]
        errors, answered = [0] * concurrency, [0] * concurrency
        start_at, stop_at = time.perf_counter() + 1.0, time.perf_counter() + 1.0 + seconds
        threads = [
            threading.Thread(
                target=self._worker, args=(i, start_at, stop_at, latencies, errors, answered)
            )
            for i in range(concurrency)
        ]
        cpu_before = _cpu_seconds(self.server)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu_s = _cpu_seconds(self.server) - cpu_before
        all_ms = sorted(x for per in latencies for x in per)
        return {
            "concurrency": concurrency,
            "requests": len(all_ms),
            "errors": sum(errors),
            "requests_per_s": len(all_ms) / seconds,
            "p50_ms": _percentile(all_ms, 50),
            "p99_ms": _percentile(all_ms, 99),
            # the server process's CPU time (all threads, warm-up second included) per answer
            "server_cpu_us_per_request": cpu_s / max(1, sum(answered)) * 1e6,
        }

    def _worker(self, i, start_at, stop_at, latencies, errors, answered) -> None:
        client = self.grpcclient.InferenceServerClient(self.address)
        image = self.images[i % len(self.images)][None]
        tensor = self.grpcclient.InferInput("input", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image)
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                client.infer(self.model, [tensor], client_timeout=10)
            except Exception:
                errors[i] += 1
                continue
            t1 = time.perf_counter()
            answered[i] += 1
            if t0 >= start_at and t1 <= stop_at:  # warm-up second not counted
                latencies[i].append((t1 - t0) * 1e3)
        client.close()


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` and its children."""
    with process.oneshot():
        t = process.cpu_times()
        return t.user + t.system + t.children_user + t.children_system


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return float(np.percentile(np.asarray(sorted_ms), q))


def start_acnn_serve(run_dir: Path, delay_ms: float, runtime: str) -> tuple[subprocess.Popen, str]:
    acnn = str(Path(sys.executable).parent / "acnn")
    process = subprocess.Popen(
        [acnn, "serve", str(run_dir), "--port", "0", "--threads", "1", "--instances", "1"]
        + ["--max-queue-delay-ms", str(delay_ms), "--runtime", runtime],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if " on " not in line:
        process.kill()
        raise RuntimeError(f"acnn serve did not start: {line!r}")
    return process, line.split(" on ")[1].strip()


def throughput(
    run_dir: Path, images, levels, seconds, rounds, delays_ms, runtime: str, work: Path
) -> dict:
    """Every server and batching delay up at once; per round and level, one timed run each,
    order alternating.

    Interleaving puts drift on a shared machine on every server. Each level reports, per
    server, the median round of its best delay (the setting a user would pick), and the
    acnn/MLServer ratio is the median of the per-round ratios of those two settings.
    """
    processes, mlservers, loads = [], [], {}
    try:
        for delay in delays_ms:
            process, address = start_acnn_serve(run_dir, delay, runtime)
            processes.append(process)
            loads[("acnn", delay)] = Load(address, "cloud", images, process.pid)
        if mlserver_executable() is not None:
            for delay in delays_ms:
                server = start_mlserver(
                    run_dir,
                    work / f"mlserver-{delay:g}ms",
                    threads=1,
                    max_batch_time_s=delay / 1e3,
                    runtime=runtime,
                )
                mlservers.append(server)
                loads[("mlserver", delay)] = Load(
                    server.address, "cloud", images, server.process.pid
                )
        runs: dict = {k: {c: [] for c in levels} for k in loads}
        for r in range(rounds):
            for c in levels:
                for key in list(loads)[:: 1 if r % 2 == 0 else -1]:
                    runs[key][c].append(loads[key].run(c, seconds))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        for server in mlservers:
            server.stop()
    results: dict = {"by_delay": {}}
    best: dict = {}  # (server, level) -> the delay of the best median round
    for name in ("acnn", "mlserver"):
        delays = [d for n, d in runs if n == name]
        if not delays:
            results[name] = "skipped: MLServer is not installed (set $ACNN_MLSERVER)"
            continue
        medians = {
            d: [_median_round(runs[(name, d)][c]) | {"max_queue_delay_ms": d} for c in levels]
            for d in delays
        }
        results["by_delay"][name] = {f"{d:g}": rows for d, rows in medians.items()}
        results[name] = []
        for i, c in enumerate(levels):
            d = max(delays, key=lambda d: medians[d][i]["requests_per_s"])
            best[(name, c)] = d
            results[name].append(medians[d][i])
    if ("mlserver", levels[0]) not in best:
        return results
    results["ratios"] = []
    for c in levels:
        acnn, mlserver = (
            runs[("acnn", best[("acnn", c)])][c],
            runs[("mlserver", best[("mlserver", c)])][c],
        )
        ratios = [
            a["requests_per_s"] / m["requests_per_s"] for a, m in zip(acnn, mlserver, strict=True)
        ]
        rows = {name: results[name][levels.index(c)] for name in ("acnn", "mlserver")}
        results["ratios"].append(
            {
                "concurrency": c,
                "median": statistics.median(ratios),
                "per_round": ratios,
                "delays_ms": {"acnn": best[("acnn", c)], "mlserver": best[("mlserver", c)]},
                # of each server's reported (median) round at its best delay
                "server_cpu_us_per_request": {
                    name: row["server_cpu_us_per_request"] for name, row in rows.items()
                },
            }
        )
    return results


def _median_round(rows: list[dict]) -> dict:
    """The round of median throughput, with every round's requests/s beside it."""
    ordered = sorted(rows, key=lambda r: r["requests_per_s"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["rounds"] = len(rows)
    row["requests_per_s_rounds"] = [r["requests_per_s"] for r in rows]
    row["errors"] = sum(r["errors"] for r in rows)
    return row


@torch.inference_mode()
def direct_cascade(run, models, images: np.ndarray, batch: int) -> float:
    """Seconds to run the local stages with plain torch and the exit rule, no bookkeeping."""
    if batch == 1:
        return _direct_single(run, models, images)
    started = time.perf_counter()
    for s in range(0, len(images), batch):
        x = torch.from_numpy(images[s : s + batch])
        for k, model in enumerate(models):
            probs = model(x).numpy()
            stay = ~run.policy.should_exit(k, probs)
            if not stay.any():
                break
            x = x[torch.from_numpy(stay)]
    return time.perf_counter() - started


def _direct_single(run, models, images: np.ndarray) -> float:
    """The batch-1 plain loop, exit rule on Python scalars (numpy per image costs more)."""
    thresholds = run.policy.thresholds
    started = time.perf_counter()
    for s in range(len(images)):
        x = torch.from_numpy(images[s : s + 1])
        for k, model in enumerate(models):
            row = model(x).numpy()[0].tolist()
            top2 = sorted(row)[-2:]
            if k >= len(thresholds) or top2[1] - top2[0] >= thresholds[k]:
                break
    return time.perf_counter() - started


def routing_overhead(run_dir: Path, images: np.ndarray) -> list[dict]:
    import json as _json

    summary = _json.loads((run_dir / "result.json").read_text())
    local_run = Path(tempfile.mkdtemp()) / "local"
    local_run.mkdir()
    for stage in summary["stages"]:
        (local_run / stage["weights"]).write_bytes((run_dir / stage["weights"]).read_bytes())
    summary["policy"]["thresholds"][-1] = 0.0  # the last local stage answers: no forwarding
    (local_run / "result.json").write_text(_json.dumps(summary))
    run = load_run(local_run)
    models = _direct_models(run)
    rows = []
    chunks = [images[s : s + ROUTING_CHUNK] for s in range(0, len(images), ROUTING_CHUNK)]
    for batch in (1, 32):
        classifier = EdgeClassifier(run, None, runtime="torch", batch_size=batch)
        direct, client = [], []
        # interleaved pairs of short runs: drift on a shared machine hits both sides of a
        # pair, and the order alternates, so running second is no systematic edge
        for i in range(REPEATS):
            for j, chunk in enumerate(chunks):
                if (i + j) % 2:
                    client.append(_timed(classifier.classify, chunk))
                    direct.append(direct_cascade(run, models, chunk, batch))
                else:
                    direct.append(direct_cascade(run, models, chunk, batch))
                    client.append(_timed(classifier.classify, chunk))
        classifier.close()
        d, c = statistics.median(direct), statistics.median(client)
        ratios = [ci / di for ci, di in zip(client, direct, strict=True)]
        rows.append(
            {
                "batch_size": batch,
                "repeats": len(ratios),
                "images_per_run": len(chunks[0]),
                "direct_ms_per_image": d / len(chunks[0]) * 1e3,
                "client_ms_per_image": c / len(chunks[0]) * 1e3,
                "overhead": statistics.median(ratios) - 1,  # median of the paired ratios
                "overhead_min_max": [min(ratios) - 1, max(ratios) - 1],
            }
        )
    return rows


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _run(model, x: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    # the run's own dataset (test split, native pixel scale); digits for the hand-made run
    dataset = load_run(Path(args.run_dir)).input.dataset if args.run_dir else "digits"
    data = load_dataset(dataset, seed=0)
    repeats = -(-args.routing_images // len(data.test.images))
    images = np.concatenate([data.test.images] * repeats).astype(np.float32)
    images = images[: args.routing_images]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.run_dir:
            run_dir = Path(args.run_dir)
        else:
            run_dir = work / "run"
            run_dir.mkdir()
            write_hand_run(run_dir, images)
        # routing first: on a quiet machine, before any server process exists
        routing = routing_overhead(run_dir, images)
        served = {}
        if not args.no_throughput:
            served = throughput(
                run_dir,
                images,
                args.concurrency,
                args.seconds,
                args.rounds,
                args.max_queue_delay_ms,
                args.runtime,
                work,
            )
    report = {
        "throughput": served,
        "routing_overhead": routing,
        "settings": vars(args),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    _print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def _print(report: dict) -> None:
    print("server    conc  delay ms  req/s    p50 ms  p99 ms  server CPU us/req  errors")
    for server, rows in report["throughput"].items():
        if server in ("ratios", "by_delay"):
            continue
        if isinstance(rows, str):
            print(f"{server:<9} {rows}")
            continue
        for r in rows:
            print(
                f"{server:<9} {r['concurrency']:>4}  {r['max_queue_delay_ms']:>8g}  "
                f"{r['requests_per_s']:>7.1f}  "
                f"{r['p50_ms']:>6.2f}  {r['p99_ms']:>6.2f}  "
                f"{r['server_cpu_us_per_request']:>17.0f}  {r['errors']}"
            )
    runtime = report["settings"]["runtime"]
    for r in report["throughput"].get("ratios", []):
        delays, cpu = r["delays_ms"], r["server_cpu_us_per_request"]
        print(
            f"concurrency {r['concurrency']}: acnn ({delays['acnn']:g} ms) / MLServer "
            f"({delays['mlserver']:g} ms) throughput = {r['median']:.2f}x "
            f"(median of {len(r['per_round'])} interleaved rounds; "
            f"range {min(r['per_round']):.2f}-{max(r['per_round']):.2f}x); "
            f"server CPU us/request acnn {cpu['acnn']:.0f}, MLServer {cpu['mlserver']:.0f} "
            f"(both in {runtime})"
        )
    for r in report["routing_overhead"]:
        print(
            f"routing overhead at batch {r['batch_size']}: {r['overhead']:+.1%} median of "
            f"{r['repeats']} paired runs (range {r['overhead_min_max'][0]:+.1%} to "
            f"{r['overhead_min_max'][1]:+.1%}; medians {r['client_ms_per_image']:.3f} vs "
            f"{r['direct_ms_per_image']:.3f} ms/image)"
        )


if __name__ == "__main__":
    sys.exit(main())
