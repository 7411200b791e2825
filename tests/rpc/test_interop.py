"""Peers nobody here wrote: tritonclient calls our server; MLServer serves our client.

tritonclient is imported in this process (its ``inference.*`` descriptors live beside
ours); MLServer runs as a subprocess on 127.0.0.1 with the small runtime in
``rpc/mlserver_runtime.py``. A peer that is not installed is skipped with the reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rpc.client import CloudClient
from rpc.edge import EdgeClassifier
from rpc.mlserver_peer import mlserver_executable, start_mlserver


def test_tritonclient_calls_our_server(run, serve, digits_test, reference_probs):
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] missing")
    server = serve(run)
    client = grpcclient.InferenceServerClient(server.address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cloud", "1") and client.is_model_ready("stage2")
    meta = client.get_model_metadata("cloud", as_json=True)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "1", "8", "8"]}]
    assert meta["outputs"][0]["name"] == "probabilities"
    assert client.get_server_metadata().name == "acnn"
    images = digits_test[0][:7].astype(np.float32)
    for model in ("stage1", "cloud"):
        tensor = grpcclient.InferInput("input", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        result = client.infer(
            model, [tensor], outputs=[grpcclient.InferRequestedOutput("probabilities")]
        )
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), reference_probs(run, model, images), atol=1e-5
        )
    bad = grpcclient.InferInput("input", [1, 1, 8, 8], "INT32")
    bad.set_data_from_numpy(np.zeros((1, 1, 8, 8), np.int32))
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        client.infer("cloud", [bad])
    client.close()


@pytest.fixture(scope="module")
def mlserver(runtime_run_dir, tmp_path_factory):
    if mlserver_executable() is None:
        pytest.skip("MLServer is not installed (pip install mlserver); interop not tested")
    server = start_mlserver(runtime_run_dir, tmp_path_factory.mktemp("mlserver"))
    yield server
    server.stop()


@pytest.mark.slow
def test_our_client_uses_mlserver_as_its_cloud(
    mlserver, run_with_thresholds, digits_test, reference_probs
):
    run = run_with_thresholds(math.inf, math.inf)  # everything goes to the cloud
    images = digits_test[0][:6].astype(np.float32)
    expected = reference_probs(run, "cloud", images)
    for wire in ("fp32", "uint8"):
        with CloudClient(mlserver.address, deadline_s=10, wire_datatype=wire) as client:
            np.testing.assert_allclose(client.infer(images).probs, expected, atol=1e-5)
    classifier = EdgeClassifier(run, CloudClient(mlserver.address, deadline_s=10))
    try:
        answers, summary = classifier.classify(images)
    finally:
        classifier.close()
    assert [a.stage for a in answers] == ["cloud"] * 6 and summary.degraded == 0
    assert [a.label for a in answers] == list(expected.argmax(1))
