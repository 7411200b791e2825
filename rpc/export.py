"""``acnn export``: a design's stages as TorchScript or ONNX files, and their manifest.

An exported stage is the whole :class:`~adaptive_cnn.stage.StageModel`: native-scale
float32 pixels (N, C, H, W) in (input ``input``, any N), probabilities (N, K) out (output
``probabilities``), so a device needs no acnn code to run it. The bytes come from
:mod:`energy_models.runtimes`, the same functions that build the on-device client's
runners, so what is tested is what runs. By default a run is written for the runtime its
design was priced for (:func:`default_format`): ONNX for ``onnxruntime``, TorchScript for
``torchscript`` and eager ``torch`` (which has no file of its own); the manifest records
the pricing, and ``priced for X, run in Y`` where the files are for another runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from adaptive_cnn.run_folder import RunFolder
from adaptive_cnn.stage import INPUT_NAME, OUTPUT_NAME, StageModel, example_input, load_stage_model
from energy_models.runtimes import onnx_bytes, torchscript_bytes
from rpc.errors import RunFolderError

FORMATS = ("torchscript", "onnx")  # file formats; the runtimes are energy_models.RUNTIMES
SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}
RUNTIME_OF = {"torchscript": "torchscript", "onnx": "onnxruntime"}  # what runs the file
FORMAT_FOR = {"onnxruntime": "onnx", "torchscript": "torchscript", "torch": "torchscript"}


def default_format(run: RunFolder) -> str:
    """The file format of the runtime ``run``'s design was priced for."""
    return FORMAT_FOR[run.runtime]


def stage_file(model: StageModel, example: torch.Tensor, fmt: str) -> bytes:
    """The bytes of one exported stage in ``fmt`` (variable batch dimension)."""
    check_format(fmt)
    if fmt == "torchscript":
        return torchscript_bytes(model, (example,))
    return onnx_bytes(model, (example,), [INPUT_NAME], [OUTPUT_NAME], dynamic_batch=True)


def export_run(
    run: RunFolder, fmt: str | None = None, out_dir: str | Path | None = None
) -> list[Path]:
    """Write every stage of ``run`` in ``fmt`` and a manifest; return the written files.

    Args:
        run: the design run folder.
        fmt: ``torchscript`` or ``onnx``; None: :func:`default_format`.
        out_dir: target folder (default ``RUN_DIR/export``).
    """
    fmt = fmt or default_format(run)
    check_format(fmt)
    out = Path(out_dir) if out_dir is not None else run.path / "export"
    example = example_input(run)
    # every stage is loaded (and its weights checked) before anything is written, so a
    # run folder with a bad stage leaves no half-written export behind
    files = {
        stage.name: stage_file(load_stage_model(run, stage), example, fmt) for stage in run.stages
    }
    out.mkdir(parents=True, exist_ok=True)
    written, manifest = [], {}
    for stage in run.stages:
        path = out / f"{stage.name}{SUFFIX[fmt]}"
        path.write_bytes(files[stage.name])
        written.append(path)
        manifest[stage.name] = {
            "file": path.name,
            "arch": stage.arch,
            "where": stage.where,
            "energy_mj": stage.energy_mj,
        }
    spec = {
        "format": fmt,
        "runtime": RUNTIME_OF[fmt],
        "pricing": run.pricing.to_dict(),
        "energy_label": export_label(run, fmt),
        "input": {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *run.input.shape]},
        "output": {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, run.input.num_classes]},
        "preprocessing": "inside the model: ((x / pixel_max) - mean) / std, then softmax",
        "stages": manifest,
    }
    manifest_path = out / f"manifest-{fmt}.json"
    manifest_path.write_text(json.dumps(spec, indent=1) + "\n")
    return [*written, manifest_path]


def export_label(run: RunFolder, fmt: str) -> str:
    """``priced for X, run in Y`` where ``fmt``'s runtime is not the one ``run`` was priced
    for, else ``""``."""
    return run.pricing.label(RUNTIME_OF[fmt])


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise RunFolderError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
