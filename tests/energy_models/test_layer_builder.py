"""Tests of rebuilding single layers from descriptors, and of the descriptor's dict form."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from adaptive_cnn.networks import describe_arch, get_family, list_networks
from energy_models import (
    Add,
    EnergyModelError,
    LayerDescriptor,
    UnsupportedLayerError,
    describe_network,
)
from energy_models.layer_builder import build_layer, descriptor_from_dict, descriptor_to_dict
from energy_models.ops import Mul

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add(x, self.conv(x))


class _Gate(nn.Module):
    """Squeeze-and-excitation style gate: x * sigmoid(mean over H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool, self.act, self.mul = nn.AdaptiveAvgPool2d(1), nn.Sigmoid(), Mul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mul(x, self.act(self.pool(x)))


ACTIVATIONS = [
    nn.ReLU(),
    nn.ReLU6(),
    nn.LeakyReLU(0.2),
    nn.SiLU(),
    nn.Sigmoid(),
    nn.Hardswish(),
    nn.Hardsigmoid(),
    nn.Tanh(),
    nn.GELU(),
]
CASES = [  # (id, module, input shape, kind of the layer to rebuild)
    ("conv", nn.Conv2d(3, 8, 3), (3, 10, 10), "conv2d"),
    ("conv-no-bias-stride-pad", nn.Conv2d(3, 8, 5, 2, 2, bias=False), (3, 11, 11), "conv2d"),
    ("conv-same", nn.Conv2d(3, 4, 3, padding="same"), (3, 7, 7), "conv2d"),
    ("conv-valid", nn.Conv2d(3, 4, 3, padding="valid"), (3, 7, 7), "conv2d"),
    ("depthwise", nn.Conv2d(8, 8, 3, padding=1, groups=8), (8, 7, 7), "conv2d"),
    ("depthwise-x2", nn.Conv2d(4, 8, 3, groups=4, bias=False), (4, 6, 6), "conv2d"),
    ("grouped", nn.Conv2d(8, 12, 1, groups=4), (8, 5, 5), "conv2d"),
    ("linear", nn.Linear(20, 7), (20,), "linear"),
    ("linear-no-bias", nn.Linear(20, 7, bias=False), (20,), "linear"),
    ("linear-3d", nn.Linear(5, 3), (2, 4, 5), "linear"),
    ("bn", nn.BatchNorm2d(6), (6, 5, 5), "batchnorm2d"),
    *[(type(m).__name__, m, (3, 4, 4), type(m).__name__.lower()) for m in ACTIVATIONS],
    ("identity", nn.Identity(), (3, 4, 4), "identity"),
    ("dropout", nn.Dropout(0.3), (3, 4, 4), "dropout"),
    ("flatten", nn.Flatten(), (3, 4, 4), "flatten"),
    ("maxpool", nn.MaxPool2d(2), (3, 8, 8), "maxpool2d"),
    ("maxpool-ceil", nn.MaxPool2d(3, 2, ceil_mode=True), (3, 8, 8), "maxpool2d"),
    ("avgpool-pad-ceil", nn.AvgPool2d(3, 2, 1, ceil_mode=True), (3, 8, 8), "avgpool2d"),
    ("avgpool", nn.AvgPool2d(2, 1), (3, 5, 5), "avgpool2d"),
    ("adaptive-avg", nn.AdaptiveAvgPool2d(1), (3, 6, 6), "adaptiveavgpool2d"),
    ("adaptive-max", nn.AdaptiveMaxPool2d((2, 3)), (3, 6, 6), "adaptivemaxpool2d"),
    ("add", _Residual(), (4, 5, 5), "add"),
    ("mul", _Gate(), (4, 5, 5), "mul"),
]


def _descriptor(module: nn.Module, in_shape: tuple[int, ...], kind: str) -> LayerDescriptor:
    return next(d for d in describe_network(nn.Sequential(module), in_shape) if d.kind == kind)


@pytest.mark.parametrize(
    ("module", "in_shape", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_build_layer_runs_like_the_original(module, in_shape, kind) -> None:
    layer = _descriptor(module, in_shape, kind)
    rebuilt, inputs = build_layer(layer)
    assert not rebuilt.training
    assert tuple(inputs[0].shape) == (1, *layer.in_shape)
    assert len(inputs) == layer.n_inputs
    assert sum(p.numel() for p in rebuilt.parameters()) == layer.params
    with torch.no_grad():
        out = rebuilt(*inputs)
    assert tuple(out.shape) == (1, *layer.out_shape)


@pytest.mark.parametrize(
    ("module", "in_shape", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_descriptor_dict_round_trip(module, in_shape, kind) -> None:
    layer = _descriptor(module, in_shape, kind)
    d = descriptor_to_dict(layer)
    assert isinstance(d["in_shape"], list) and isinstance(d["out_shape"], list)
    assert descriptor_from_dict(d) == layer
    assert descriptor_from_dict(json.loads(json.dumps(d))) == layer


def test_rebuilt_types_match_the_originals() -> None:
    conv = _descriptor(nn.Conv2d(4, 4, 3, groups=4), (4, 5, 5), "conv2d")
    assert type(build_layer(conv)[0]) is nn.Conv2d
    assert type(build_layer(_descriptor(_Gate(), (4, 5, 5), "mul"))[0]) is Mul
    assert type(build_layer(_descriptor(_Residual(), (4, 5, 5), "add"))[0]) is Add
    pool = build_layer(_descriptor(nn.MaxPool2d(3, 2, ceil_mode=True), (3, 8, 8), "maxpool2d"))[0]
    assert isinstance(pool, nn.MaxPool2d) and pool.ceil_mode


def test_mul_gate_is_one_value_per_channel() -> None:
    _, inputs = build_layer(_descriptor(_Gate(), (4, 5, 5), "mul"))
    assert [tuple(t.shape) for t in inputs] == [(1, 4, 5, 5), (1, 4, 1, 1)]


def test_unknown_descriptor_keys_are_an_error() -> None:
    d = {**descriptor_to_dict(_descriptor(nn.ReLU(), (3, 4, 4), "relu")), "dilation": 2, "zz": 0}
    with pytest.raises(EnergyModelError, match="unknown layer descriptor keys: dilation, zz"):
        descriptor_from_dict(d)


def test_unknown_kind_cannot_be_rebuilt() -> None:
    layer = dataclasses.replace(_descriptor(nn.ReLU(), (3, 4, 4), "relu"), kind="softplus")
    with pytest.raises(EnergyModelError, match="cannot rebuild a layer of kind 'softplus'"):
        build_layer(layer)


def test_a_descriptor_the_module_does_not_match_is_an_error() -> None:
    layer = _descriptor(nn.Conv2d(3, 8, 3), (3, 10, 10), "conv2d")
    with pytest.raises(EnergyModelError, match="does not match its descriptor"):
        build_layer(dataclasses.replace(layer, macs=layer.macs + 1))


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2, 4]),
    per_group_in=st.integers(1, 3),
    per_group_out=st.integers(1, 3),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 3),
    extra=st.integers(0, 4),
    bias=st.booleans(),
    data=st.data(),
)
def test_random_convs_rebuild(
    groups, per_group_in, per_group_out, kernel, stride, extra, bias, data
) -> None:
    padding = data.draw(st.integers(0, kernel // 2))
    conv = nn.Conv2d(
        groups * per_group_in,
        groups * per_group_out,
        kernel,
        stride,
        padding,
        groups=groups,
        bias=bias,
    )
    size = kernel + extra
    layer = _descriptor(conv, (conv.in_channels, size, size + 1), "conv2d")
    assert descriptor_from_dict(descriptor_to_dict(layer)) == layer
    rebuilt, inputs = build_layer(layer)
    with torch.no_grad():
        assert tuple(rebuilt(*inputs).shape[1:]) == layer.out_shape


@pytest.mark.parametrize("name", list_networks())
def test_every_layer_of_sampled_archs_rebuilds(name: str) -> None:
    rng = np.random.default_rng(0)
    family = get_family(name)
    layers = {
        dataclasses.replace(d, name="")  # the same configuration is rebuilt once
        for _ in range(5)
        for d in describe_arch(family.sample(rng), (1, 16, 16), 10)
    }
    for layer in layers:
        assert descriptor_from_dict(descriptor_to_dict(layer)) == layer
        rebuilt, inputs = build_layer(layer)
        with torch.no_grad():
            assert tuple(rebuilt(*inputs).shape[1:]) == layer.out_shape, layer


def test_a_descriptor_missing_a_key_is_a_clear_error() -> None:
    d = descriptor_to_dict(describe_network(nn.ReLU(), (2, 3, 3))[0])
    del d["out_shape"]
    with pytest.raises(EnergyModelError, match="malformed layer descriptor"):
        descriptor_from_dict(d)


def test_batch_norm_without_affine_parameters_rebuilds() -> None:
    layer = describe_network(nn.BatchNorm2d(4, affine=False), (4, 5, 5))[0]
    module, _ = build_layer(layer)
    assert sum(p.numel() for p in module.parameters()) == 0


@pytest.mark.parametrize(
    "module",
    [nn.Conv2d(2, 2, 2, padding="same"), nn.MaxPool2d(2, dilation=2), nn.Flatten(2)],
    ids=["same-even", "dilated-pool", "flatten-2"],
)
def test_imprecise_geometry_is_refused(module: nn.Module) -> None:
    with pytest.raises(UnsupportedLayerError):
        describe_network(module, (2, 8, 8))
