"""The models a cloud server serves, and validation of everything a request declares.

Requests are checked before any byte is decoded: model and version, exactly one input
named ``input``, its datatype (FP32 or UINT8, native pixel scale), its shape
(N, C, H, W) with 1 <= N <= max batch size, then its byte size and finiteness. Problems
raise :class:`RequestError` with the gRPC status name a servicer should answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from adaptive_cnn.run_folder import RunFolder, StageSpec
from adaptive_cnn.stage import INPUT_NAME, OUTPUT_NAME, stage_runner
from rpc.batching import DynamicBatcher
from rpc.generated import acnn_oip_pb2 as pb
from rpc.tensors import TensorError, decode_raw

VERSION = "1"
INPUT_DATATYPES = ("FP32", "UINT8")  # FP32 is advertised; UINT8 saves 4x the bytes
# ModelMetadata's platform per runtime: Triton's names where Triton has one
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "torchscript": "pytorch_libtorch"}
PLATFORM = "acnn_pytorch"  # eager torch
DEFAULT_RUNTIME = "onnxruntime"  # what a run folder that records no runtime is served in


def serving_runtime(run: RunFolder, requested: str | None = None) -> str:
    """The runtime to serve ``run`` in: ``requested``, else the runtime the design was
    priced for (where the run folder records one), else :data:`DEFAULT_RUNTIME`."""
    return requested or priced_runtime(run) or DEFAULT_RUNTIME


def priced_runtime(run: RunFolder) -> str | None:
    """The runtime ``run``'s energies were priced for, or None where it is not recorded."""
    return getattr(run, "runtime", None)  # run folders before issue 22 record none


class RequestError(Exception):
    """A request the server refuses; ``code`` names a ``grpc.StatusCode`` member."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ServedModel:
    """One served stage: its spec, tensor metadata, batcher and the runtime it runs in."""

    name: str
    stage: StageSpec
    input_shape: tuple[int, int, int]
    num_classes: int
    batcher: DynamicBatcher
    runtime: str

    def metadata(self) -> pb.ModelMetadataResponse:
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=self.name,
            versions=[VERSION],
            platform=PLATFORMS.get(self.runtime, PLATFORM),
            inputs=[tensor(name=INPUT_NAME, datatype="FP32", shape=[-1, *self.input_shape])],
            outputs=[tensor(name=OUTPUT_NAME, datatype="FP32", shape=[-1, self.num_classes])],
        )


class ModelRepository:
    """The stages of one design run, each behind its own dynamic batcher.

    Args:
        run: the design run folder.
        max_batch_size, max_queue_delay_ms, max_queue_size: batcher settings per model.
        names: stage names to serve (default: all, the cloud model as ``cloud``).
        runtime: how each stage runs: ``onnxruntime`` (one session per stage, dynamic
            batch axis), ``torchscript`` (traced, frozen and optimised, checked against
            eager torch) or ``torch`` (eager); None: :func:`serving_runtime`'s choice.
        instances: batches of one stage computed at once (batcher worker threads).
        threads: intra-op threads of each ONNX Runtime session; None: torch's thread
            count (what ``acnn serve --threads`` set) over ``instances``. The torch
            runtimes use the process's torch threads.
    """

    def __init__(
        self,
        run: RunFolder,
        *,
        max_batch_size: int,
        max_queue_delay_ms: float,
        max_queue_size: int,
        names: Sequence[str] | None = None,
        runtime: str | None = None,
        instances: int = 1,
        threads: int | None = None,
    ) -> None:
        self.run, self.max_batch_size = run, max_batch_size
        self.runtime = serving_runtime(run, runtime)
        if threads is None:  # instances share the cores rather than oversubscribe them
            threads = max(1, torch.get_num_threads() // instances)
        self.threads, self.instances = threads, instances
        self.models: dict[str, ServedModel] = {}
        for stage in run.stages:
            if names is not None and stage.name not in names:
                continue
            runner = stage_runner(run, stage, self.runtime, threads=threads, optimise=True)
            self.models[stage.name] = ServedModel(
                name=stage.name,
                stage=stage,
                input_shape=run.input.shape,
                num_classes=run.input.num_classes,
                batcher=DynamicBatcher(
                    runner,
                    max_batch_size=max_batch_size,
                    max_queue_delay_ms=max_queue_delay_ms,
                    max_queue_size=max_queue_size,
                    instances=instances,
                ),
                runtime=self.runtime,
            )

    def get(self, name: str, version: str = "") -> ServedModel:
        """The model ``name`` at ``version`` ("" or "1"); NOT_FOUND otherwise."""
        model = self.models.get(name)
        if model is None:
            served = ", ".join(self.models)
            raise RequestError("NOT_FOUND", f"unknown model {name!r}; served: {served}")
        if version not in ("", VERSION):
            raise RequestError("NOT_FOUND", f"model {name!r} has no version {version!r}")
        return model

    def decode(self, request: pb.ModelInferRequest) -> tuple[ServedModel, np.ndarray]:
        """Validate a ModelInfer request; return its model and float32 images (N, C, H, W)."""
        model = self.get(request.model_name, request.model_version)
        if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
            names = [t.name for t in request.inputs]
            raise RequestError(
                "INVALID_ARGUMENT", f"{model.name} takes one input {INPUT_NAME!r}, got {names}"
            )
        for out in request.outputs:
            if out.name != OUTPUT_NAME:
                message = f"{model.name} has one output {OUTPUT_NAME!r}, not {out.name!r}"
                raise RequestError("INVALID_ARGUMENT", message)
        tensor = request.inputs[0]
        if tensor.datatype not in INPUT_DATATYPES:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"input datatype {tensor.datatype!r}; use {' or '.join(INPUT_DATATYPES)}",
            )
        shape = self._check_shape(model, list(tensor.shape))
        if len(request.raw_input_contents) != 1:
            raise RequestError(
                "INVALID_ARGUMENT",
                "send the input in raw_input_contents (one entry, little-endian, row-major)",
            )
        try:
            array = decode_raw(tensor.datatype, shape, request.raw_input_contents[0])
        except TensorError as exc:
            raise RequestError("INVALID_ARGUMENT", str(exc)) from None
        images = array.astype(np.float32, copy=False)
        if not np.isfinite(images).all():
            raise RequestError("INVALID_ARGUMENT", "input holds NaN or infinite pixels")
        return model, images

    def _check_shape(self, model: ServedModel, shape: list[int]) -> list[int]:
        wanted = [-1, *model.input_shape]
        if len(shape) != 4 or shape[1:] != list(model.input_shape):
            raise RequestError("INVALID_ARGUMENT", f"input shape {shape}; expected {wanted}")
        if not 1 <= shape[0] <= self.max_batch_size:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"batch of {shape[0]} images; send 1 to {self.max_batch_size} per request",
            )
        return shape

    def max_request_bytes(self) -> int:
        """Largest valid raw input: a full batch of FP32 images."""
        return self.max_batch_size * 4 * math.prod(self.run.input.shape)

    def close(self, timeout: float | None = None) -> None:
        for model in self.models.values():
            model.batcher.close(timeout)
