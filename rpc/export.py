"""``acnn export``: stages as TorchScript or ONNX files, and the on-device stage runners.

An exported stage is the whole :class:`~rpc.models.StageModel`: native-scale float32
pixels (N, C, H, W) in (input ``input``, any N), probabilities (N, K) out (output
``probabilities``), so a device needs no acnn code to run it. The same functions build
the runners the on-device client uses, so what is tested is what runs.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rpc.errors import RunFolderError
from rpc.models import INPUT_NAME, OUTPUT_NAME, StageModel, load_stage_model, run_torch
from rpc.run_folder import RunFolder

FORMATS = ("torchscript", "onnx")
SERVING_RUNTIMES = ("torchscript", "eager")
SERVING_TOLERANCE = 1e-5  # largest |probability difference| a compiled stage may show
SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}

Runner = Callable[[np.ndarray], np.ndarray]
"""Maps (N, C, H, W) native-scale images to (N, K) float32 probabilities."""


def example_input(run: RunFolder, batch: int = 2) -> torch.Tensor:
    """A deterministic native-scale batch to trace with (values in [0, pixel_max])."""
    generator = torch.Generator().manual_seed(0)
    pixel_max = run.input.preprocessing.pixel_max
    return torch.rand((batch, *run.input.shape), generator=generator) * pixel_max


def torchscript_bytes(model: StageModel, example: torch.Tensor) -> bytes:
    """Trace ``model`` and serialise it (``torch.jit.load`` reads it back)."""
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream, still supported
        torch.jit.save(torch.jit.trace(model, example), buffer)
    return buffer.getvalue()


def serving_module(model: StageModel, example: torch.Tensor, runtime: str) -> torch.nn.Module:
    """The module a server runs for ``model``: ``eager``, or ``torchscript`` (traced,
    frozen and optimised for inference: batch norms folded into convolutions, the whole
    forward in one call that holds the GIL once instead of once per layer).

    A compiled module is used only where its probabilities on ``example`` equal eager
    torch's within :data:`SERVING_TOLERANCE`; otherwise the eager module serves.
    """
    if runtime not in SERVING_RUNTIMES:
        raise ValueError(f"serving runtime {runtime!r}; use {' or '.join(SERVING_RUNTIMES)}")
    if runtime == "eager":
        return model
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream, still supported
        expected = model(example)
        for optimise in (True, False):  # optimised first, then frozen only
            # optimize_for_inference rewrites its argument in place: trace afresh each time
            candidate = torch.jit.freeze(torch.jit.trace(model, example).eval())
            if optimise:
                candidate = torch.jit.optimize_for_inference(candidate)
            got = candidate(example)
            if got.shape == expected.shape and (got - expected).abs().max() <= SERVING_TOLERANCE:
                return candidate
    return model


def onnx_bytes(model: StageModel, example: torch.Tensor) -> bytes:
    """Export ``model`` to ONNX in memory with a variable batch dimension."""
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(
            model,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
        )
    return buffer.getvalue()


def export_run(run: RunFolder, fmt: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write every stage of ``run`` in ``fmt`` and a manifest; return the written files.

    Args:
        run: the design run folder.
        fmt: ``torchscript`` or ``onnx``.
        out_dir: target folder (default ``RUN_DIR/export``).
    """
    check_format(fmt)
    out = Path(out_dir) if out_dir is not None else run.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    example = example_input(run)
    written, manifest = [], {}
    for stage in run.stages:
        model = load_stage_model(run, stage)
        serialise = torchscript_bytes if fmt == "torchscript" else onnx_bytes
        data = serialise(model, example)
        path = out / f"{stage.name}{SUFFIX[fmt]}"
        path.write_bytes(data)
        written.append(path)
        manifest[stage.name] = {"file": path.name, "arch": stage.arch, "where": stage.where}
    spec = {
        "format": fmt,
        "input": {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *run.input.shape]},
        "output": {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, run.input.num_classes]},
        "preprocessing": "inside the model: ((x / pixel_max) - mean) / std, then softmax",
        "stages": manifest,
    }
    manifest_path = out / f"manifest-{fmt}.json"
    manifest_path.write_text(json.dumps(spec, indent=1) + "\n")
    return [*written, manifest_path]


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise RunFolderError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_torchscript(data: bytes) -> Runner:
    """A runner over serialised TorchScript."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    return lambda images: run_torch(module, images)


def load_onnx(data: bytes, threads: int = 1) -> Runner:
    """A runner over an ONNX model with ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(images, dtype=np.float32)
        return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    return run


def local_runner(run: RunFolder, stage_name: str, runtime: str = "torchscript") -> Runner:
    """The on-device runner of one stage: ``torch``, ``torchscript`` or ``onnx``."""
    model = load_stage_model(run, stage_name)
    if runtime == "torch":
        return lambda images: run_torch(model, images)
    check_format(runtime)
    example = example_input(run)
    if runtime == "onnx":
        if not onnxruntime_available():
            raise RunFolderError("--runtime onnx needs onnxruntime: pip install 'acnn[onnx]'")
        return load_onnx(onnx_bytes(model, example))
    return load_torchscript(torchscript_bytes(model, example))
