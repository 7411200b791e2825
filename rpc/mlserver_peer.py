"""Start Seldon MLServer as a subprocess serving one stage of a design, on 127.0.0.1.

Used by the interoperability tests and ``benchmarks/serve_throughput.py``. MLServer runs in
its own process because it and tritonclient cannot share one (duplicate ``inference.*``
protobuf descriptors), and it may be installed in a venv of its own (MLServer 1.7 needs
protobuf < 7): set ``$ACNN_MLSERVER`` to that venv's ``mlserver``. In ONNX Runtime (the
default) that venv needs only ``mlserver`` and ``onnxruntime``: the stage's ONNX file is
written here, by acnn. Only the process started here is ever stopped, by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rpc.client import CloudClient


def mlserver_executable() -> str | None:
    """The ``mlserver`` command in $ACNN_MLSERVER, next to this Python, or on PATH."""
    candidates = [os.environ.get("ACNN_MLSERVER"), str(Path(sys.executable).parent / "mlserver")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return shutil.which("mlserver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MLServerProcess:
    """A running MLServer: its gRPC address, process and log file."""

    process: subprocess.Popen
    grpc_port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def start_mlserver(
    run_dir: str | Path,
    workdir: str | Path,
    *,
    stage: str = "cloud",
    max_batch_size: int = 32,
    max_batch_time_s: float = 0.002,
    threads: int = 1,
    runtime: str = "onnxruntime",
    startup_timeout_s: float = 90.0,
) -> MLServerProcess:
    """Write MLServer settings under ``workdir``, start it, wait until the model is ready.

    Args:
        run_dir: the design run folder; ``stage``: the stage served (as model ``stage``).
        workdir: where settings, the ONNX file and ``mlserver.log`` are written.
        max_batch_size, max_batch_time_s: MLServer's adaptive batching (images, s).
        threads: the runtime's intra-op threads.
        runtime: ``onnxruntime`` (the stage exported to ONNX as acnn serve's session
            runs it), ``torchscript`` or ``torch`` (the MLServer venv then needs torch).
        startup_timeout_s: longest wait for the model to be ready.

    Raises:
        FileNotFoundError: no ``mlserver`` command is installed.
        RuntimeError: it exited or did not become ready within ``startup_timeout_s``.
    """
    exe = mlserver_executable()
    if exe is None:
        raise FileNotFoundError("mlserver is not installed (pip install mlserver)")
    work = Path(workdir)
    model_dir = work / "models" / stage
    model_dir.mkdir(parents=True, exist_ok=True)
    grpc_port = free_port()
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": free_port(),
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "model_repository_root": str(work / "models"),
    }
    (work / "models" / "settings.json").write_text(json.dumps(settings))
    uri = Path(run_dir).resolve()
    if runtime == "onnxruntime":
        uri = model_dir / "model.onnx"
        uri.write_bytes(_onnx_file(run_dir, stage))
    model = {
        "name": stage,
        "implementation": "rpc.mlserver_runtime.AcnnStageRuntime",
        "max_batch_size": max_batch_size,
        "max_batch_time": max_batch_time_s,
        "parameters": {
            "uri": str(uri),
            "version": "1",
            "extra": {"stage": stage, "threads": threads, "runtime": runtime},
        },
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model))
    log_path = work / "mlserver.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [exe, "start", str(work / "models")], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    server = MLServerProcess(process, grpc_port, log_path)
    _wait_ready(server, stage, startup_timeout_s)
    return server


def _onnx_file(run_dir: str | Path, stage: str) -> bytes:
    """The stage as ONNX: the bytes ``acnn serve``'s session is built from (the same
    export, names and example input as :func:`adaptive_cnn.stage.stage_runner`)."""
    from adaptive_cnn.run_folder import load_run
    from adaptive_cnn.stage import example_input, load_stage_model
    from rpc.export import stage_file

    run = load_run(run_dir)
    return stage_file(load_stage_model(run, stage), example_input(run), "onnx")


def _wait_ready(server: MLServerProcess, stage: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with CloudClient(server.address, model=stage) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            if client.ready(timeout_s=1.0) and client.model_ready(timeout_s=1.0):
                return
            time.sleep(0.3)
    server.stop()
    tail = server.log_path.read_text()[-2000:]
    raise RuntimeError(f"MLServer did not become ready in {timeout_s:.0f} s:\n{tail}")
