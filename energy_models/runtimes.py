"""Inference runtimes the profiler times: torch eager, TorchScript and ONNX Runtime.

A profile and its predictor belong to one runtime: at batch 1 the runtime's fixed per-call
overheads dominate small networks, so the runtime the device will use is the one timed.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from energy_models.errors import EnergyModelError

RUNTIMES = ("torch", "torchscript", "onnxruntime")


def available_runtimes() -> list[str]:
    """The runtimes usable here (ONNX Runtime only where ``onnxruntime`` is installed)."""
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    has_onnx = importlib.util.find_spec("onnx") is not None
    return [r for r in RUNTIMES if r != "onnxruntime" or (has_ort and has_onnx)]


def check_runtime(runtime: str) -> None:
    """Raise a clear error for an unknown or uninstalled runtime."""
    if runtime not in RUNTIMES:
        raise EnergyModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime not in available_runtimes():
        raise EnergyModelError(
            "runtime onnxruntime needs the onnx and onnxruntime packages: "
            "pip install 'acnn[onnx]' (or pip install onnx onnxruntime)"
        )


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads (inter-op stays at torch's default)."""
    if threads < 1:
        raise EnergyModelError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


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
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.freeze(torch.jit.trace(module, args))

    def run() -> Any:
        return module(*args)

    return run


def export_onnx_bytes(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    """Serialise ``module`` to ONNX in memory (opset chosen by torch)."""
    buffer = io.BytesIO()
    names = [f"input{i}" for i in range(len(inputs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, buffer, input_names=names, dynamo=False)
    return buffer.getvalue()


def _prepare_onnxruntime(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
) -> Callable[[], Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        export_onnx_bytes(module, inputs), options, providers=["CPUExecutionProvider"]
    )
    feeds = {f"input{i}": t.detach().numpy() for i, t in enumerate(inputs)}

    def run() -> Any:
        return session.run(None, feeds)

    return run
