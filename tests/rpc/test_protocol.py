"""The generated protocol code: up to date, wire-compatible with Triton's, no clash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rpc.generated import acnn_oip_pb2 as pb
from rpc.protocol import (
    get_parameters,
    infer_request,
    infer_response,
    response_outputs,
    set_parameters,
    typed_contents,
)
from rpc.tensors import TensorError

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "rpc" / "proto" / "acnn_oip.proto"


def test_generated_code_matches_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    command = PROTO.read_text().splitlines()[1].lstrip("/ ").split()
    assert command[1:3] == ["-m", "grpc_tools.protoc"]  # the documented command, run as is
    args = [a.replace("rpc/generated", str(tmp_path)) for a in command[3:]]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", *args], cwd=ROOT, check=True)
    text = (tmp_path / "acnn_oip_pb2.py").read_text()
    committed = (ROOT / "rpc" / "generated" / "acnn_oip_pb2.py").read_text()
    # the serialized file descriptor is what defines the messages; compare it exactly
    assert _descriptor_blob(text) == _descriptor_blob(committed)


def _descriptor_blob(source: str) -> str:
    line = next(x for x in source.splitlines() if "AddSerializedFile(" in x)
    return line.split("AddSerializedFile(", 1)[1]


def _fields(descriptor):
    return {f.name: (f.number, f.type, f.is_repeated) for f in descriptor.fields}


def _messages(file_descriptor):
    out = {}

    def walk(prefix, message):
        out[prefix + message.name] = message
        for nested in message.nested_types:
            walk(prefix + message.name + ".", nested)

    for message in file_descriptor.message_types_by_name.values():
        walk("", message)
    return out


def test_every_message_matches_tritons_field_for_field():
    # tritonclient's own inference.* descriptors, imported in this same process: no clash
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    ours = _messages(pb.DESCRIPTOR)
    theirs = _messages(service_pb2.DESCRIPTOR)
    assert service_pb2.DESCRIPTOR.package == "inference" and pb.DESCRIPTOR.package == "acnn.oip"
    assert len(ours) >= 20
    for name, message in ours.items():
        assert name in theirs, name
        mine, triton = _fields(message), _fields(theirs[name])
        # every field of ours has Triton's number, type and cardinality
        assert {k: triton.get(k) for k in mine} == mine, name
    ours_service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    triton_service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in ours_service.methods:
        twin = triton_service.methods_by_name[method.name]
        assert method.input_type.name == twin.input_type.name
        assert method.output_type.name == twin.output_type.name
        assert (method.client_streaming, method.server_streaming) == (
            twin.client_streaming,
            twin.server_streaming,
        )


def test_a_request_parses_as_tritons_and_back():
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    images = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    ours = infer_request("cloud", {"input": images}, parameters={"acnn.stage": 2, "x": 0.5})
    theirs = service_pb2.ModelInferRequest.FromString(ours.SerializeToString())
    assert theirs.model_name == "cloud" and list(theirs.inputs[0].shape) == [2, 1, 8, 8]
    assert theirs.parameters["acnn.stage"].int64_param == 2
    assert theirs.raw_input_contents[0] == images.astype("<f4").tobytes()
    assert pb.ModelInferRequest.FromString(theirs.SerializeToString()) == ours


def test_parameters_round_trip_plain_values():
    request = pb.ModelInferRequest()
    values = {"b": True, "i": -3, "f": 2.5, "s": "stage1"}
    set_parameters(request.parameters, values)
    assert get_parameters(request.parameters) == values
    assert request.parameters["b"].WhichOneof("parameter_choice") == "bool_param"


def test_outputs_decode_from_raw_or_typed_contents():
    probs = np.array([[0.25, 0.75]], dtype=np.float32)
    raw = infer_response(pb.ModelInferRequest(model_name="m"), "1", {"probabilities": probs})
    assert np.array_equal(response_outputs(raw)["probabilities"], probs)
    typed = pb.ModelInferResponse()
    typed.outputs.add(name="probabilities", datatype="FP32", shape=[1, 2])
    typed.outputs[0].contents.fp32_contents.extend([0.25, 0.75])
    assert np.array_equal(response_outputs(typed)["probabilities"], probs)
    with pytest.raises(TensorError, match="needs 4 values"):
        typed_contents("FP32", [2, 2], typed.outputs[0].contents)
    raw.raw_output_contents.append(b"extra")
    with pytest.raises(TensorError, match="raw contents"):
        response_outputs(raw)
