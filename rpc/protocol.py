"""The Open Inference Protocol on the wire: service name, methods, tensors and parameters.

Messages come from ``rpc/generated`` (proto package ``acnn.oip``, wire-compatible with
KServe's and Triton's ``inference`` package); the service is registered under the
protocol's own name, ``inference.GRPCInferenceService``, so tritonclient, KServe and
MLServer peers call it and are called by it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rpc.generated import acnn_oip_pb2 as pb
from rpc.tensors import DATATYPES, TensorError, decode_raw, encode_raw

SERVICE = "inference.GRPCInferenceService"
HEALTH_SERVICE = "grpc.health.v1.Health"

# method -> (request type, response type); all unary but ModelStreamInfer.
UNARY_METHODS: dict[str, tuple[type, type]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}
STREAM_METHOD = "ModelStreamInfer"

# Typed contents field of each datatype, for peers that do not send raw contents.
_TYPED_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def method_path(method: str) -> str:
    """The gRPC path of a protocol method, e.g. ``/inference.GRPCInferenceService/ModelInfer``."""
    return f"/{SERVICE}/{method}"


def set_parameters(target: Any, values: Mapping[str, bool | int | float | str]) -> None:
    """Write plain values into a protocol ``map<string, InferParameter>``."""
    for key, value in values.items():
        param = target[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, (int, np.integer)):
            param.int64_param = int(value)
        elif isinstance(value, (float, np.floating)):
            param.double_param = float(value)
        else:
            param.string_param = str(value)


def get_parameters(source: Any) -> dict[str, bool | int | float | str]:
    """Read a protocol parameter map into plain values (unset entries are skipped)."""
    out: dict[str, bool | int | float | str] = {}
    for key, param in source.items():
        field = param.WhichOneof("parameter_choice")
        if field is not None:
            out[key] = getattr(param, field)
    return out


def infer_request(
    model: str,
    inputs: Mapping[str, np.ndarray],
    *,
    version: str = "",
    request_id: str = "",
    outputs: tuple[str, ...] = (),
    parameters: Mapping[str, bool | int | float | str] | None = None,
) -> pb.ModelInferRequest:
    """A ModelInfer request carrying ``inputs`` in ``raw_input_contents``."""
    request = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, array in inputs.items():
        datatype, shape, raw = encode_raw(array)
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(raw)
    for name in outputs:
        request.outputs.add(name=name)
    set_parameters(request.parameters, parameters or {})
    return request


def infer_response(
    request: pb.ModelInferRequest, version: str, outputs: Mapping[str, np.ndarray]
) -> pb.ModelInferResponse:
    """A ModelInfer response carrying ``outputs`` in ``raw_output_contents``."""
    response = pb.ModelInferResponse(
        model_name=request.model_name, model_version=version, id=request.id
    )
    for name, array in outputs.items():
        datatype, shape, raw = encode_raw(array)
        response.outputs.add(name=name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(raw)
    return response


def response_outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Arrays of a ModelInfer response, from raw contents or, failing that, typed contents.

    Raises:
        TensorError: an output's datatype, shape or size is inconsistent.
    """
    raw = list(response.raw_output_contents)
    if raw and len(raw) != len(response.outputs):
        raise TensorError(f"{len(response.outputs)} outputs but {len(raw)} raw contents")
    arrays = {}
    for i, tensor in enumerate(response.outputs):
        shape = list(tensor.shape)
        if raw:
            arrays[tensor.name] = decode_raw(tensor.datatype, shape, raw[i])
        else:
            arrays[tensor.name] = typed_contents(tensor.datatype, shape, tensor.contents)
    return arrays


def typed_contents(datatype: str, shape: list[int], contents: Any) -> np.ndarray:
    """An array from a tensor's typed ``contents`` (as MLServer and KServe peers send)."""
    if datatype not in _TYPED_FIELDS:
        raise TensorError(f"datatype {datatype!r} has no typed contents; send raw contents")
    values = np.asarray(getattr(contents, _TYPED_FIELDS[datatype]), dtype=DATATYPES[datatype])
    count = int(np.prod(shape)) if all(d >= 0 for d in shape) else -1
    if values.size != count:
        raise TensorError(f"shape {shape} needs {count} values, got {values.size}")
    return values.reshape(shape)
