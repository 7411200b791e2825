"""The runtime a server runs: ONNX Runtime by default (or the one the design was priced
for), batching any batch size, and compiled TorchScript that answers what eager torch does."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.networks import create_network
from adaptive_cnn.stage import StageModel
from energy_models.errors import EnergyModelError
from energy_models.runtimes import compile_runner, optimise_torchscript, run_torch
from rpc.errors import ServerConfigError
from rpc.repository import serving_runtime
from rpc.server import ServerConfig, runtime_note

PRE = Preprocessing(pixel_max=255.0, mean=(0.3,), std=(0.35,))


def stage(arch: str) -> StageModel:
    torch.manual_seed(0)
    network = create_network(arch, (1, 28, 28), 10)
    for module in network.modules():  # non-trivial batch-norm statistics to fold
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return StageModel(network, PRE)


def pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 1, 28, 28)).astype(np.float32)


@pytest.mark.parametrize(
    "arch",
    [
        "conv:bn-c32k3-c32k3p-c64k3p-fc128",
        "mbconv:stem8-m8k3e1-m16k5e6s2se-m16k3e3-m24k3e3s2se-head64",
    ],
)
def test_compiled_module_answers_what_eager_torch_does(arch):
    model = stage(arch)
    compiled = optimise_torchscript(model, (torch.from_numpy(pixels(2, 0)),))
    assert isinstance(compiled, torch.jit.ScriptModule)
    for n in (1, 7, 32):  # batch sizes it was never traced with
        images = pixels(n, n)
        got, expected = run_torch(compiled, images), run_torch(model, images)
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_torch_runtime_serves_the_model_itself():
    model = stage("conv:c8k3p-fc32")
    runner = compile_runner(model, torch.from_numpy(pixels(2, 0)), "torch", optimise=True)
    images = pixels(5, 1)
    np.testing.assert_array_equal(runner(images), run_torch(model, images))


def test_a_compiled_module_that_disagrees_is_not_served():
    model = stage("conv:c8k3p-fc32")
    example = (torch.from_numpy(pixels(2, 0)),)
    assert optimise_torchscript(model, example, tolerance=-1.0) is model  # nothing can agree


def test_unknown_runtimes_are_refused():
    with pytest.raises(EnergyModelError, match="unknown runtime 'onnx'"):
        compile_runner(stage("conv:c8k3p-fc32"), torch.zeros(2, 1, 28, 28), "onnx")
    with pytest.raises(ServerConfigError, match="runtime 'tensorrt'"):
        ServerConfig(runtime="tensorrt")
    with pytest.raises(ServerConfigError, match="runtime 'eager'; use torch, torchscript"):
        ServerConfig(runtime="eager")  # the old name of torch


class PricedFor:
    """``run`` as a run folder that records the runtime its design was priced for."""

    def __init__(self, run, runtime: str) -> None:
        self._run, self.runtime = run, runtime

    def __getattr__(self, name: str):
        return getattr(self._run, name)


def _ort_batch_sizes(monkeypatch) -> list[int]:
    """Record the batch size of every ONNX Runtime session call in this process."""
    ort = pytest.importorskip("onnxruntime")
    sizes: list[int] = []
    real = ort.InferenceSession.run

    def run(session, output_names, feeds, *args, **kwargs):
        sizes.append(len(next(iter(feeds.values()))))
        return real(session, output_names, feeds, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "run", run)
    return sizes


def test_the_server_runs_onnx_runtime_by_default_and_batches_any_size(
    run, serve, digits_test, reference_probs, monkeypatch
):
    sizes = _ort_batch_sizes(monkeypatch)
    server = serve(run, models=("cloud",), max_batch_size=16, max_queue_delay_ms=0)
    model = server.repository.models["cloud"]
    assert server.repository.runtime == "onnxruntime"  # the runtime the run was priced for
    assert model.metadata().platform == "onnxruntime_onnx"
    real, gate, entered = model.batcher.fn, threading.Event(), threading.Event()

    def held(x):  # the first batch waits, so the next requests queue and share one call
        entered.set()
        assert gate.wait(10)
        return real(x)

    model.batcher.fn = held
    requests = [digits_test[0][i : i + n].astype(np.float32) for i, n in ((0, 1), (1, 3), (4, 5))]
    first = model.batcher.submit(requests[0])
    assert entered.wait(10)
    queued = [model.batcher.submit(images) for images in requests[1:]]
    gate.set()
    for images, future in zip(requests, [first, *queued], strict=True):
        np.testing.assert_allclose(
            future.result(10), reference_probs(run, "cloud", images), atol=1e-5, rtol=0
        )
    assert sizes == [1, 8]  # the session took a batch it was never exported with


def test_the_runtime_a_design_was_priced_for_is_served_unless_another_is_asked(run, serve):
    assert serving_runtime(run) == "onnxruntime"
    assert serving_runtime(PricedFor(run, "torch")) == "torch"
    assert serving_runtime(PricedFor(run, "torch"), "onnxruntime") == "onnxruntime"
    priced = serve(PricedFor(run, "torch"), models=("stage1",))
    assert priced.repository.runtime == "torch"
    assert priced.repository.models["stage1"].metadata().platform == "acnn_pytorch"
    assert runtime_note(priced.repository).startswith("torch, 1 instance(s)")
    other = serve(PricedFor(run, "torch"), models=("stage1",), runtime="onnxruntime", threads=1)
    note = runtime_note(other.repository)
    assert note == "priced for torch, run in onnxruntime, 1 instance(s) x 1 intra-op thread(s)"
    # the designer records the runtime it priced for (the test predictor's: onnxruntime);
    # a run folder from before it did reads as priced for eager torch (run_folder's
    # HISTORICAL_RUNTIME), so no run is unrecorded any more
    recorded = runtime_note(serve(run, models=("stage1",), threads=1).repository)
    assert run.runtime == "onnxruntime" and recorded.startswith("onnxruntime, 1 instance(s)")


def test_intra_op_threads_default_to_torchs_shared_among_instances(run, serve):
    torch.set_num_threads(4)  # the autouse fixture restores it
    assert serve(run, models=("stage1",), instances=2).repository.threads == 2
    assert serve(run, models=("stage1",), instances=8).repository.threads == 1
    assert serve(run, models=("stage1",), instances=2, threads=3).repository.threads == 3
    with pytest.raises(ServerConfigError, match="instances must be >= 1"):
        ServerConfig(instances=0)
    with pytest.raises(ServerConfigError, match="threads must be >= 1"):
        ServerConfig(threads=0)
