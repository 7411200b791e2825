"""Inference runtimes of acnn: torch eager, TorchScript and ONNX Runtime.

One set of names (:data:`RUNTIMES`) and one implementation for the whole project: the
profiler times layers and networks in a runtime (:func:`prepare`), and the server, the
on-device client and ``acnn export`` run or write stages in it (:func:`compile_runner`,
:func:`torchscript_bytes`, :func:`onnx_bytes`, through :mod:`adaptive_cnn.stage`).

A profile and its predictor belong to one runtime: at batch 1 the runtime's fixed per-call
overheads dominate small networks, so the runtime the device will use is the one timed.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from energy_models.devices import RUNTIMES  # declared torch-free, for device files and CLIs
from energy_models.errors import EnergyModelError

TOLERANCE = 1e-5  # largest |output difference| an optimised TorchScript module may show

Runner = Callable[[np.ndarray], np.ndarray]
"""Maps a float32 batch (N, ...) to the module's float32 output (N, ...)."""


def available_runtimes() -> list[str]:
    """The runtimes usable here (all three where acnn's dependencies are installed; ONNX
    Runtime is missing only from an environment that lacks ``onnx`` or ``onnxruntime``)."""
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    has_onnx = importlib.util.find_spec("onnx") is not None
    return [r for r in RUNTIMES if r != "onnxruntime" or (has_ort and has_onnx)]


def check_runtime(runtime: str) -> None:
    """Raise a clear error for an unknown or uninstalled runtime."""
    if runtime not in RUNTIMES:
        raise EnergyModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime not in available_runtimes():
        raise EnergyModelError(
            "runtime onnxruntime needs the onnx and onnxruntime packages, core dependencies "
            "of acnn that are missing from this environment: reinstall acnn (pip install "
            "-e .) or pip install onnx onnxruntime"
        )


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads (inter-op stays at torch's default)."""
    if threads < 1:
        raise EnergyModelError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


# --- the runtimes' building blocks -----------------------------------------------------


def run_torch(module: nn.Module, x: np.ndarray, channels_last: bool = False) -> np.ndarray:
    """``module`` (eager or TorchScript) on a float32 batch, under inference mode; with
    ``channels_last`` an image batch is handed to it in channels-last memory format."""
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if channels_last:
        tensor = _channels_last(tensor)
    # A new thread's OpenMP pool takes torch's thread count only once torch is asked for it;
    # oneDNN kernels (optimised TorchScript) do not ask, so a server's first batch on its
    # batcher thread would run on every core and round differently from the next ones.
    torch.get_num_threads()
    if torch.is_inference_mode_enabled():  # a caller entered it once for many calls
        return module(tensor).numpy()
    with torch.inference_mode():
        return module(tensor).numpy()


def trace(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], *, freeze: bool = False
) -> torch.jit.ScriptModule:
    """``module`` traced on ``inputs`` (and frozen: parameters folded in as constants)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream, still supported
        traced = torch.jit.trace(module, inputs)
        return torch.jit.freeze(traced.eval()) if freeze else traced


def torchscript_bytes(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    """Trace ``module`` and serialise it (portable: :func:`load_torchscript` reads it)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(trace(module, inputs), buffer)
    return buffer.getvalue()


def load_torchscript(data: bytes) -> torch.jit.ScriptModule:
    """A serialised TorchScript module on the CPU, in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


def optimise_torchscript(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], tolerance: float = TOLERANCE
) -> nn.Module:
    """``module`` traced, frozen and optimised for inference (batch norms folded into
    convolutions, the whole forward in one call that holds the GIL once, not per layer).

    A compiled module is returned only where its output on ``inputs`` equals eager torch's
    within ``tolerance``: optimised first, then frozen only, else ``module`` itself.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = module(*inputs)
        for optimise in (True, False):
            # optimize_for_inference rewrites its argument in place: trace afresh each time
            candidate = trace(module, inputs, freeze=True)
            if optimise:
                candidate = torch.jit.optimize_for_inference(candidate)
            got = candidate(*inputs)
            if got.shape == expected.shape and (got - expected).abs().max() <= tolerance:
                return candidate
    return module


def onnx_bytes(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    *,
    dynamic_batch: bool = False,
) -> bytes:
    """Export ``module`` to ONNX in memory (TorchScript-based exporter, opset by torch).

    Args:
        module, inputs: what to export and example inputs to trace it with.
        input_names: one per input (default ``input0``, ``input1``..).
        output_names: one per output (default: the exporter's).
        dynamic_batch: make dimension 0 of every named input and output variable.
    """
    names = list(input_names or (f"input{i}" for i in range(len(inputs))))
    outputs = list(output_names) if output_names else None
    axes = None
    if dynamic_batch:
        axes = {name: {0: "batch"} for name in [*names, *(outputs or [])]}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(
            module,
            inputs,
            buffer,
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            dynamo=False,
        )
    return buffer.getvalue()


ORT_SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
"""Session config entries of every ONNX Runtime session acnn makes (profiler, client,
server). Spinning is off: each session owns a thread pool, and a cascade's stages take
turns, so an idle stage's pool spinning for work steals the cores from the stage running.
Measured here at 2 threads, alternating two stages per image: with spinning the p99
latency was 4.1-4.6 ms against a median of 0.08-0.36 ms (mean 1.6-2.0x the median);
without it p99 0.12-0.42 ms, mean 1.01-1.08x the median, and one session alone as fast."""

ORT_SESSION_TAG = "nospin"  # names ORT_SESSION_CONFIG in a predictor's cache name


def ort_options(threads: int = 1) -> Any:
    """The ONNX Runtime session options acnn runs and times with: ``threads`` intra-op
    threads, one inter-op thread, :data:`ORT_SESSION_CONFIG`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in ORT_SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return options


def ort_session(data: bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session over a serialised model (:func:`ort_options`)."""
    import onnxruntime as ort

    return ort.InferenceSession(data, ort_options(threads), providers=["CPUExecutionProvider"])


def onnx_runner(data: bytes, threads: int = 1) -> Runner:
    """A runner over a one-input, one-output ONNX model (``data``) in ONNX Runtime."""
    session = ort_session(data, threads)
    feed, fetch = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run([fetch], {feed: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run


def compile_runner(
    module: nn.Module,
    example: torch.Tensor,
    runtime: str,
    *,
    threads: int = 1,
    optimise: bool = False,
    names: tuple[str, str] = ("input", "output"),
) -> Runner:
    """``module`` (one input, one output) as a runner of any batch size in ``runtime``.

    Args:
        module: the eager module, in eval mode.
        example: an input batch to trace with (batch size free at run time).
        runtime: ``torch`` (eager), ``torchscript`` or ``onnxruntime``.
        threads: ONNX Runtime's intra-op threads (torch's are the process's).
        optimise: TorchScript only: run :func:`optimise_torchscript`'s module (what a
            server runs) instead of the portable traced one :func:`torchscript_bytes`
            serialises (what ``acnn export`` writes and a device runs).
        names: ONNX input and output names (those of an exported file).
    """
    check_runtime(runtime)
    if runtime == "onnxruntime":
        data = onnx_bytes(module, (example,), names[:1], names[1:], dynamic_batch=True)
        return onnx_runner(data, threads)
    if runtime == "torchscript":
        if optimise:
            module = optimise_torchscript(module, (example,))
        else:  # round-tripped through bytes: the exported file is what runs
            module = load_torchscript(torchscript_bytes(module, (example,)))
        return lambda x: run_torch(module, x)
    # eager torch runs channels-last, as the profiler times it (:func:`prepare`): run in
    # NCHW, the reference large network took 1.89 ms per image against 1.54 ms
    module = module.to(memory_format=torch.channels_last)
    return lambda x: run_torch(module, x, channels_last=True)


# --- the profiler's timed callables ----------------------------------------------------


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t


def prepare(
    module: nn.Module, inputs: Sequence[torch.Tensor], runtime: str, threads: int
) -> Callable[[], Any]:
    """A zero-argument callable that runs ``module`` on ``inputs`` in ``runtime``.

    torch eager runs in channels-last memory format (what the trainer and client use; it is
    faster here at batch 1). TorchScript traces and freezes the module. Callers run the
    callable under ``torch.inference_mode()`` (entered once, outside any timing loop: its
    enter/exit costs microseconds, as much as a small layer). ONNX Runtime exports it
    (TorchScript-based exporter) and runs the CPU provider with ``threads`` threads.

    Args:
        module: the layer or network (put in eval mode here).
        inputs: batch-1 example inputs.
        runtime: one of :data:`RUNTIMES`.
        threads: intra-op threads.
    """
    check_runtime(runtime)
    module = module.eval()
    if runtime == "onnxruntime":
        return _prepare_onnxruntime(module, tuple(inputs), threads)
    set_threads(threads)
    module = module.to(memory_format=torch.channels_last)
    args = tuple(_channels_last(t) for t in inputs)
    if runtime == "torchscript":
        module = trace(module, args, freeze=True)

    def run() -> Any:
        return module(*args)

    return run


def _prepare_onnxruntime(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
) -> Callable[[], Any]:
    session = ort_session(onnx_bytes(module, inputs), threads)
    feeds = {f"input{i}": t.detach().numpy() for i, t in enumerate(inputs)}

    def run() -> Any:
        return session.run(None, feeds)

    return run


def ort_node_times(
    data: bytes, feeds: dict[str, np.ndarray], threads: int, calls: int = 100, warmup: int = 20
) -> list[Any]:
    """The nodes of ONNX Runtime's optimised graph of ``data``, in execution order, each
    with its median time per call from the runtime's own profiler (``enable_profiling``).

    The profiler adds a few microseconds per node, so these times rank and split a
    network's cost between its kernels; the network's latency is timed without it.

    Returns:
        :class:`energy_models.kernels.OrtNode` objects.
    """
    import json
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    from energy_models.kernels import OrtNode

    with tempfile.TemporaryDirectory(prefix="acnn-ort-") as tmp:
        options = ort_options(threads)
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        for _ in range(warmup + calls):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(options.optimized_model_filepath).graph
    durations: dict[str, list[float]] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            durations.setdefault(event["name"].removesuffix("_kernel_time"), []).append(
                float(event["dur"])
            )
    nodes = []
    for node in graph.node:
        times = durations.get(node.name, [])[warmup:]
        nodes.append(
            OrtNode(
                name=node.name,
                op=node.op_type,
                blocked=node.domain == "com.microsoft.nchwc",
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                latency_ms=float(np.median(times)) / 1e3 if times else 0.0,
            )
        )
    return nodes


@functools.lru_cache(maxsize=1)
def nchwc_block() -> int:
    """The NCHWc block (channels) of this host's ONNX Runtime: 8 on AVX2, 16 on AVX-512.

    Read off the optimised graph of one probe convolution with 8 input channels: with a
    block of 8 the runtime reorders its input into the blocked layout first; with 16 the
    blocked kernel reads the 8-channel NCHW tensor directly (fewer channels than a block).
    A host whose runtime blocks nothing (no NCHWc kernels) gets the AVX2 rules' block, whose
    layout rules then never apply to it: the profile's own graphs still map node by node.
    """
    from energy_models.kernels import DEFAULT_NCHWC_BLOCK, NCHWC_BLOCKS

    with torch.random.fork_rng():  # the caller's random stream stays as it was
        torch.manual_seed(0)
        probe = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.ReLU()).eval()
        x = torch.randn(1, 8, 8, 8)
    nodes = ort_node_times(onnx_bytes(probe, (x,)), {"input0": x.numpy()}, 1, calls=1, warmup=0)
    if not any(node.blocked for node in nodes):
        return DEFAULT_NCHWC_BLOCK
    return NCHWC_BLOCKS[0] if any(node.op == "ReorderInput" for node in nodes) else NCHWC_BLOCKS[1]
