"""The cloud server over real gRPC on 127.0.0.1: protocol, validation, limits, security."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpc.auth import bearer, channel_credentials
from rpc.client import protocol_calls
from rpc.generated import acnn_oip_pb2 as pb
from rpc.protocol import infer_request, response_outputs

TIMEOUT = 10.0  # every call has a deadline: a broken server fails a test, never hangs it


def calls(address, credentials=None):
    channel = (
        grpc.secure_channel(address, credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    return protocol_calls(channel), channel


def infer(stub, model, images, metadata=None, **kw):
    request = infer_request(model, {"input": images}, **kw)
    reply = stub["ModelInfer"](request, timeout=TIMEOUT, metadata=metadata)
    return response_outputs(reply)["probabilities"]


def status_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def hold(server, model):
    """Make ``model`` wait for the returned event before each batch (a slow server)."""
    batcher = server.repository.models[model].batcher
    real, gate, entered = batcher.fn, threading.Event(), threading.Event()

    def slow(x):
        entered.set()
        gate.wait(TIMEOUT)
        return real(x)

    batcher.fn = slow
    return gate, entered


def test_liveness_readiness_and_metadata(run, serve):
    server = serve(run)
    stub, _ = calls(server.address)
    assert stub["ServerLive"](pb.ServerLiveRequest(), timeout=TIMEOUT).live
    assert stub["ServerReady"](pb.ServerReadyRequest(), timeout=TIMEOUT).ready
    assert stub["ServerMetadata"](pb.ServerMetadataRequest(), timeout=TIMEOUT).name == "acnn"
    for name in ("stage1", "stage2", "cloud"):
        assert stub["ModelReady"](pb.ModelReadyRequest(name=name, version="1"), timeout=TIMEOUT)
        meta = stub["ModelMetadata"](pb.ModelMetadataRequest(name=name), timeout=TIMEOUT)
        assert list(meta.versions) == ["1"]
        assert (meta.inputs[0].name, meta.inputs[0].datatype) == ("input", "FP32")
        assert list(meta.inputs[0].shape) == [-1, 1, 8, 8]
        assert list(meta.outputs[0].shape) == [-1, 10]
    request = pb.ModelMetadataRequest(name="nope")
    assert status_of(stub["ModelMetadata"], request, timeout=TIMEOUT) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("runtime", ["torchscript", "torch", "onnxruntime"])
def test_every_stage_answers_what_torch_computes(runtime, run, serve, digits_test, reference_probs):
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime")
    server = serve(run, runtime=runtime)
    stub, _ = calls(server.address)
    images = digits_test[0][:5]
    for name in ("stage1", "stage2", "cloud"):
        expected = reference_probs(run, name, images)
        fp32 = infer(stub, name, images.astype(np.float32))
        uint8 = infer(stub, name, images.astype(np.uint8))
        np.testing.assert_allclose(fp32, expected, atol=1e-5)
        np.testing.assert_array_equal(uint8, fp32)  # same pixels, 4x fewer bytes


def _valid():
    return infer_request("cloud", {"input": np.zeros((2, 1, 8, 8), np.float32)})


def _set(field, value):
    def mutate(r):
        target = r.inputs[0]
        if field == "shape":
            del target.shape[:]
            target.shape.extend(value)
        else:
            setattr(target, field, value)

    return mutate


MALFORMED = {
    "unknown model": (lambda r: setattr(r, "model_name", "nope"), "NOT_FOUND"),
    "unknown version": (lambda r: setattr(r, "model_version", "7"), "NOT_FOUND"),
    "wrong datatype": (_set("datatype", "FP64"), "INVALID_ARGUMENT"),
    "bogus datatype": (_set("datatype", "IMAGE"), "INVALID_ARGUMENT"),
    "wrong input name": (_set("name", "pixels"), "INVALID_ARGUMENT"),
    "wrong image shape": (_set("shape", [2, 1, 8, 9]), "INVALID_ARGUMENT"),
    "missing batch axis": (_set("shape", [1, 8, 8]), "INVALID_ARGUMENT"),
    "huge dimensions": (_set("shape", [2**62, 1, 8, 8]), "INVALID_ARGUMENT"),
    "negative dimension": (_set("shape", [-2, 1, 8, 8]), "INVALID_ARGUMENT"),
    "byte size mismatch": (_set("shape", [1, 1, 8, 8]), "INVALID_ARGUMENT"),
    "truncated raw contents": (
        lambda r: r.raw_input_contents.__setitem__(0, r.raw_input_contents[0][:-3]),
        "INVALID_ARGUMENT",
    ),
    "missing inputs": (
        lambda r: (r.ClearField("inputs"), r.ClearField("raw_input_contents")),
        "INVALID_ARGUMENT",
    ),
    "missing raw contents": (lambda r: r.ClearField("raw_input_contents"), "INVALID_ARGUMENT"),
    "unknown output": (lambda r: r.outputs.add(name="logits"), "INVALID_ARGUMENT"),
    "NaN pixels": (
        lambda r: r.raw_input_contents.__setitem__(
            0, np.full((2, 1, 8, 8), np.nan, np.float32).tobytes()
        ),
        "INVALID_ARGUMENT",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_get_the_right_status(run, serve, case):
    server = serve(run, models=("cloud",), max_batch_size=4)
    stub, _ = calls(server.address)
    mutate, code = MALFORMED[case]
    request = _valid()
    mutate(request)
    assert status_of(stub["ModelInfer"], request, timeout=TIMEOUT).name == code
    assert stub["ServerLive"](pb.ServerLiveRequest(), timeout=TIMEOUT).live


@pytest.fixture(scope="module")
def fuzz_server(runtime_run_dir):
    from adaptive_cnn.run_folder import load_run
    from rpc.server import ServerConfig, make_server

    server = make_server(
        load_run(runtime_run_dir), ServerConfig(port=0, max_batch_size=4), ("cloud",)
    ).start()
    yield server
    server.drain(grace_s=1.0)


DATATYPES = st.sampled_from(["FP32", "UINT8", "FP64", "INT8", "BYTES", "", "fp32", "\x00"])
DIMS = st.lists(
    st.one_of(st.integers(-3, 10), st.sampled_from([2**31, 2**62, 2**63 - 1])), max_size=6
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(["cloud", "stage9", ""]),
    datatype=DATATYPES,
    shape=DIMS,
    raw=st.binary(max_size=600),
    n_raw=st.integers(0, 2),
)
def test_hostile_requests_are_refused_and_the_server_stays_up(
    fuzz_server, model, datatype, shape, raw, n_raw
):
    stub, channel = calls(fuzz_server.address)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="input", datatype=datatype, shape=shape)
    request.raw_input_contents.extend([raw] * n_raw)
    valid = (
        model == "cloud"
        and datatype in ("FP32", "UINT8")
        and len(shape) == 4
        and shape[1:] == [1, 8, 8]
        and 1 <= shape[0] <= 4
        and n_raw == 1
        and len(raw) == shape[0] * 64 * (4 if datatype == "FP32" else 1)
        and (datatype == "UINT8" or np.isfinite(np.frombuffer(raw, "<f4")).all())
    )
    code = status_of(stub["ModelInfer"], request, timeout=TIMEOUT)
    expected = "OK" if valid else ("NOT_FOUND" if model != "cloud" else "INVALID_ARGUMENT")
    assert code.name == expected
    assert stub["ServerLive"](pb.ServerLiveRequest(), timeout=TIMEOUT).live
    channel.close()


def test_an_overloaded_queue_answers_resource_exhausted_at_once(run, serve):
    server = serve(run, models=("cloud",), max_batch_size=1, max_queue_size=1)
    stub, _ = calls(server.address)
    gate, entered = hold(server, "cloud")
    image = np.zeros((1, 1, 8, 8), np.float32)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(infer, stub, "cloud", image)
        assert entered.wait(TIMEOUT)  # one batch computing
        queued = pool.submit(infer, stub, "cloud", image)
        while not server.repository.models["cloud"].batcher._queue:  # one request queued
            threading.Event().wait(0.01)
        # the queue is full: refused while the other two still wait for the gate
        refused = status_of(infer, stub, "cloud", image)
        assert refused == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not running.done()
        gate.set()
        assert running.result(TIMEOUT).shape == (1, 10)
        assert queued.result(TIMEOUT).shape == (1, 10)


def test_the_deadline_is_honoured(run, serve):
    server = serve(run, models=("cloud",))
    stub, _ = calls(server.address)
    gate, _ = hold(server, "cloud")
    request = infer_request("cloud", {"input": np.zeros((1, 1, 8, 8), np.float32)})
    try:
        code = status_of(stub["ModelInfer"], request, timeout=0.2)
    finally:
        gate.set()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_messages_over_the_size_limit_are_refused(run, serve):
    server = serve(run, models=("cloud",), max_message_bytes=1024, max_batch_size=64)
    stub, _ = calls(server.address)
    small = np.zeros((1, 1, 8, 8), np.float32)
    assert infer(stub, "cloud", small).shape == (1, 10)
    big = np.zeros((8, 1, 8, 8), np.float32)  # 2 KiB of pixels
    assert status_of(infer, stub, "cloud", big) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_bearer_token_is_required(run, serve, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-of-the-test\n")
    server = serve(run, models=("cloud",), token_file=str(token_file))
    stub, channel = calls(server.address)
    image = np.zeros((1, 1, 8, 8), np.float32)
    assert status_of(infer, stub, "cloud", image) == grpc.StatusCode.UNAUTHENTICATED
    wrong = bearer("s3cret-token-of-the-tesT")
    assert status_of(infer, stub, "cloud", image, metadata=wrong) == grpc.StatusCode.UNAUTHENTICATED
    live = pb.ServerLiveRequest()
    assert status_of(stub["ServerLive"], live, timeout=TIMEOUT) == grpc.StatusCode.UNAUTHENTICATED
    good = bearer("s3cret-token-of-the-test")
    request = infer_request("cloud", {"input": image})
    assert stub["ModelInfer"](request, timeout=TIMEOUT, metadata=good).outputs[0].name
    # health probes need no token
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_with_a_generated_certificate(run, serve, tls_files):
    server = serve(
        run,
        models=("cloud",),
        tls_cert=str(tls_files["server_cert"]),
        tls_key=str(tls_files["server_key"]),
    )
    image = np.zeros((1, 1, 8, 8), np.float32)
    stub, _ = calls(server.address, channel_credentials(tls_files["ca"]))
    assert infer(stub, "cloud", image).shape == (1, 10)
    plain, _ = calls(server.address)
    assert status_of(infer, plain, "cloud", image) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_clients_without_a_certificate(run, serve, tls_files):
    server = serve(
        run,
        models=("cloud",),
        tls_cert=str(tls_files["server_cert"]),
        tls_key=str(tls_files["server_key"]),
        tls_client_ca=str(tls_files["ca"]),
    )
    image = np.zeros((1, 1, 8, 8), np.float32)
    with_cert = channel_credentials(
        tls_files["ca"], tls_files["client_cert"], tls_files["client_key"]
    )
    stub, _ = calls(server.address, with_cert)
    assert infer(stub, "cloud", image).shape == (1, 10)
    anonymous, _ = calls(server.address, channel_credentials(tls_files["ca"]))
    assert status_of(infer, anonymous, "cloud", image) == grpc.StatusCode.UNAVAILABLE


def test_health_and_drain_finish_calls_in_flight_and_refuse_new_ones(run, serve):
    server = serve(run, models=("cloud",))
    stub, channel = calls(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    check = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
    assert health.Check(check, timeout=TIMEOUT).status == health_pb2.HealthCheckResponse.SERVING
    gate, entered = hold(server, "cloud")
    image = np.zeros((1, 1, 8, 8), np.float32)
    with ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(infer, stub, "cloud", image)
        assert entered.wait(TIMEOUT)
        draining = pool.submit(server.drain, 5.0)
        while server.state.ready:
            threading.Event().wait(0.01)
        gate.set()
        assert in_flight.result(TIMEOUT).shape == (1, 10)  # finished, not dropped
        draining.result(TIMEOUT)
    assert status_of(infer, stub, "cloud", image) == grpc.StatusCode.UNAVAILABLE


def test_model_stream_infer_answers_each_request_in_order(run, serve):
    server = serve(run, models=("cloud",))
    _, channel = calls(server.address)
    stream = channel.stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelStreamInferResponse.FromString,
    )
    good = infer_request("cloud", {"input": np.zeros((1, 1, 8, 8), np.float32)}, request_id="a")
    bad = infer_request("cloud", {"input": np.zeros((1, 1, 8, 7), np.float32)}, request_id="b")
    replies = list(stream(iter([good, bad, good]), timeout=TIMEOUT))
    assert [r.infer_response.id for r in replies] == ["a", "", "a"]
    assert replies[1].error_message.startswith("INVALID_ARGUMENT")


def test_one_structured_debug_line_per_request(run, serve, caplog):
    server = serve(run, models=("cloud",))
    stub, _ = calls(server.address)
    with caplog.at_level(logging.DEBUG, logger="acnn.rpc.server"):
        infer(stub, "cloud", np.zeros((2, 1, 8, 8), np.float32), parameters={"acnn.stage": 1})
        status_of(infer, stub, "nope", np.zeros((1, 1, 8, 8), np.float32))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "acnn.rpc.server"]
    assert [(x["method"], x["code"]) for x in lines] == [
        ("ModelInfer", "OK"),
        ("ModelInfer", "NOT_FOUND"),
    ]
    assert lines[0]["images"] == 2 and lines[0]["params"] == {"acnn.stage": 1}


def test_sixteen_concurrent_clients_get_no_errors(run, serve, digits_test, reference_probs):
    server = serve(run, models=("cloud",))
    images = digits_test[0][:16].astype(np.float32)
    expected = reference_probs(run, "cloud", images)

    def client(i):
        stub, channel = calls(server.address)
        try:
            return [infer(stub, "cloud", images[i : i + 1]) for _ in range(10)]
        finally:
            channel.close()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client, range(16)))
    for i, answers in enumerate(results):
        assert len(answers) == 10
        for probs in answers:
            np.testing.assert_allclose(probs[0], expected[i], atol=1e-5)
