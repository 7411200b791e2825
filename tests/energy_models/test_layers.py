"""Tests of layer descriptors and network cost against hand-computed closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adaptive_cnn.networks import create_network, get_family, list_networks
from energy_models import (
    Add,
    EnergyModelError,
    UnsupportedLayerError,
    describe_network,
    network_cost,
)


def _small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),  # 0
        nn.ReLU(),  # 1
        nn.MaxPool2d(2),  # 2
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # 3: depthwise
        nn.BatchNorm2d(8),  # 4
        nn.Flatten(),  # 5
        nn.Linear(8 * 14 * 14, 10),  # 6
    )


def test_descriptors_of_a_small_net() -> None:
    layers = describe_network(_small_net(), (1, 28, 28))
    assert [d.kind for d in layers] == [
        "conv2d",
        "relu",
        "maxpool2d",
        "conv2d",
        "batchnorm2d",
        "flatten",
        "linear",
    ]
    assert [d.name for d in layers] == [str(i) for i in range(7)]
    conv, _, pool, depthwise, bn, flatten, linear = layers
    assert (conv.in_shape, conv.out_shape) == ((1, 28, 28), (8, 28, 28))
    assert (conv.kernel, conv.stride, conv.padding, conv.groups) == (3, 1, 1, 1)
    assert conv.macs == 28 * 28 * 8 * 1 * 9 == 56448
    assert conv.params == 8 * 9 + 8 == 80
    assert (pool.kernel, pool.stride, pool.out_shape, pool.macs) == (2, 2, (8, 14, 14), 0)
    assert depthwise.groups == 8 and depthwise.in_channels == depthwise.out_channels == 8
    assert depthwise.macs == 14 * 14 * 8 * (8 // 8) * 9
    assert depthwise.params == 8 * 1 * 9 + 8
    assert (bn.params, bn.macs, bn.elements) == (2 * 8, 0, 8 * 14 * 14)
    assert flatten.out_shape == (1568,) and flatten.out_channels == 1568
    assert (linear.in_channels, linear.out_channels) == (1568, 10)
    assert linear.macs == 1568 * 10 and linear.params == 1568 * 10 + 10


def test_network_cost_of_a_small_net() -> None:
    net = _small_net()
    cost = network_cost(net, (1, 28, 28))
    assert cost.macs == 56448 + 14 * 14 * 8 * 9 + 1568 * 10
    assert cost.params == sum(p.numel() for p in net.parameters()) == 80 + 80 + 16 + 15690
    # The ReLU holds the largest input + output: 2 * 8*28*28 fp32 values.
    assert cost.peak_activation_bytes == 2 * 8 * 28 * 28 * 4


@pytest.mark.parametrize("name", list_networks())
def test_layer_params_sum_to_module_params(name: str) -> None:
    family = get_family(name)
    for arch in family.references().values():
        net = create_network(arch, (1, 28, 28), 10)
        layers = describe_network(net, (1, 28, 28))
        assert sum(d.params for d in layers) == sum(p.numel() for p in net.parameters())
        assert network_cost(net, (1, 28, 28)).params == sum(p.numel() for p in net.parameters())


def test_residual_add_appears_in_an_mbconv_net() -> None:
    # stem8-m8k3e1-head16 on 1x4x4, 2 classes (convs have no bias; BN has 2 params/channel):
    # stem 3x3 1->8: 4*4*8*9 = 1152 MACs, 72 + 16 params;
    # depthwise 3x3 on 8: 4*4*8*1*9 = 1152 MACs, 72 + 16 params;
    # project 1x1 8->8: 4*4*8*8 = 1024 MACs, 64 + 16 params; then the residual add;
    # head 1x1 8->16: 4*4*16*8 = 2048 MACs, 128 + 32 params; linear 16->2: 32 MACs, 34 params.
    net = create_network("stem8-m8k3e1-head16", (1, 4, 4), 2)
    layers = describe_network(net, (1, 4, 4))
    adds = [d for d in layers if d.kind == "add"]
    assert len(adds) == 1
    assert (adds[0].in_shape, adds[0].out_shape, adds[0].n_inputs) == ((8, 4, 4), (8, 4, 4), 2)
    assert [d.kind for d in layers] == [
        *("conv2d", "batchnorm2d", "relu6"),  # stem
        *("conv2d", "batchnorm2d", "relu6"),  # depthwise (no expand conv at e1)
        *("conv2d", "batchnorm2d", "add"),  # project, then the residual
        *("conv2d", "batchnorm2d", "relu6"),  # head
        *("adaptiveavgpool2d", "flatten", "linear"),
    ]
    cost = network_cost(net, (1, 4, 4))
    assert cost.macs == 1152 + 1152 + 1024 + 2048 + 32
    assert cost.params == 88 + 88 + 80 + 160 + 34


def test_no_add_without_a_residual() -> None:
    # A strided layer and a layer that changes the channels have no residual.
    net = create_network("stem8-m8k3e3s2-m16k3e3", (1, 8, 8), 2)
    assert "add" not in [d.kind for d in describe_network(net, (1, 8, 8))]


def test_skip_slot_is_an_identity_layer() -> None:
    net = create_network("stem8-skip", (1, 8, 8), 2)
    identity = [d for d in describe_network(net, (1, 8, 8)) if d.kind == "identity"]
    assert len(identity) == 1 and identity[0].macs == 0 and identity[0].elements == 8 * 8 * 8


def test_add_module_adds() -> None:
    a, b = torch.ones(2, 3), torch.full((2, 3), 2.0)
    assert torch.equal(Add()(a, b), torch.full((2, 3), 3.0))


def test_unsupported_layer_is_named() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.Softplus()))
    with pytest.raises(UnsupportedLayerError, match=r"'1\.0'.*Softplus"):
        describe_network(net, (1, 8, 8))


class _ScaledConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale


@pytest.mark.parametrize(
    "net",
    [
        _ScaledConv(),
        nn.Conv2d(1, 2, (3, 1)),
        nn.Conv2d(1, 2, 3, dilation=2),
    ],
)
def test_hidden_or_unsupported_geometry_is_an_error(net: nn.Module) -> None:
    with pytest.raises(UnsupportedLayerError):
        describe_network(net, (1, 8, 8))


def test_training_mode_is_restored_and_running_stats_untouched() -> None:
    net = _small_net().train()
    net[3].eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in net.named_modules()}
    describe_network(net, (1, 28, 28))
    assert {name: m.training for name, m in net.named_modules()} == before
    assert int(net[4].num_batches_tracked) == 0


def test_a_module_called_twice_appears_twice() -> None:
    relu = nn.ReLU()
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), relu, nn.Conv2d(2, 2, 1), relu)
    layers = describe_network(net, (1, 5, 5))
    assert [d.name for d in layers] == ["0", "1", "2", "1"]


def test_same_padding_is_recorded_as_an_integer() -> None:
    (layer,) = describe_network(nn.Conv2d(1, 2, 5, padding="same"), (1, 6, 6))
    assert layer.padding == 2 and layer.out_shape == (2, 6, 6)


def test_wrong_input_shape_is_an_energy_model_error() -> None:
    with pytest.raises(EnergyModelError, match="input shape"):
        describe_network(_small_net(), (3, 28, 28))
