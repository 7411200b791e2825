"""Tests of the memory model against hand-counted bytes."""

from __future__ import annotations

import torch
from torch import nn

from energy_models import Add, describe_network, network_cost
from energy_models.memory import MemoryEstimate, memory_estimate


def _small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 4*9 + 4 = 40 params; (1,8,8) -> (4,8,8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> (4,4,4)
        nn.Flatten(),  # -> (64,)
        nn.Linear(64, 10),  # 64*10 + 10 = 650 params
    )


def test_memory_of_a_small_sequential_by_hand() -> None:
    memory = memory_estimate(describe_network(_small_net(), (1, 8, 8)), (1, 8, 8))
    # inputs + output elements per layer: conv 64 + 256, relu 256 + 256, pool 256 + 64,
    # flatten 64 + 64, linear 64 + 10; the relu's 512 is the peak
    assert memory == MemoryEstimate(
        params=690,
        weight_bytes_fp32=4 * 690,
        weight_bytes_int8=690,
        peak_activation_bytes_fp32=4 * 512,
        peak_activation_bytes_int8=512,
    )
    assert memory.total_bytes() == memory.total_bytes("fp32") == 4 * 690 + 4 * 512
    assert memory.total_bytes("int8") == 690 + 512


def test_peak_agrees_with_network_cost() -> None:
    layers = describe_network(_small_net(), (1, 8, 8))
    cost = network_cost(_small_net(), (1, 8, 8))
    memory = memory_estimate(layers, (1, 8, 8))
    assert memory.peak_activation_bytes_fp32 == cost.peak_activation_bytes
    assert memory.params == cost.params


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1, bias=False)  # 16 params
        self.add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add(x, self.conv(x))


def test_add_counts_both_inputs() -> None:
    memory = memory_estimate(describe_network(_Residual(), (4, 6, 6)), (4, 6, 6))
    # conv: 144 + 144; add: 2 * 144 + 144 = 432
    assert memory.peak_activation_bytes_int8 == 432
    assert memory.peak_activation_bytes_fp32 == 4 * 432
    assert memory.params == 16


def test_explicit_params_override_the_layer_sum() -> None:
    layers = describe_network(_small_net(), (1, 8, 8))
    memory = memory_estimate(layers, (1, 8, 8), params=1000)
    assert (memory.params, memory.weight_bytes_fp32, memory.weight_bytes_int8) == (1000, 4000, 1000)


def test_no_layers_holds_the_input() -> None:
    memory = memory_estimate((), (3, 5, 5))
    assert (memory.params, memory.peak_activation_bytes_int8) == (0, 75)
    assert memory.peak_activation_bytes_fp32 == 300


def test_to_dict_adds_totals() -> None:
    memory = MemoryEstimate(10, 40, 10, 800, 200)
    assert memory.to_dict() == {
        "params": 10,
        "weight_bytes_fp32": 40,
        "weight_bytes_int8": 10,
        "peak_activation_bytes_fp32": 800,
        "peak_activation_bytes_int8": 200,
        "total_bytes_fp32": 840,
        "total_bytes_int8": 210,
    }
