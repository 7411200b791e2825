"""The module a server runs: compiled TorchScript that answers what eager torch does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.networks import create_network
from adaptive_cnn.stage import StageModel
from energy_models.errors import EnergyModelError
from energy_models.runtimes import compile_runner, optimise_torchscript, run_torch
from rpc.errors import ServerConfigError
from rpc.server import ServerConfig

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
