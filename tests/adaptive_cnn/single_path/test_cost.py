"""The supernet's differentiable energy against the predictor's energy of plain networks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from adaptive_cnn.networks import create_network, parse_arch
from adaptive_cnn.networks.mbconv import MBConvArch, MBLayer
from adaptive_cnn.single_path import SinglePathSupernet, supernet_costs
from energy_models.estimate import predict

SHAPE = (1, 8, 8)
CHOICES = list(itertools.product((3, 5), (3, 6), (False, True)))


def _force(net: SinglePathSupernet, arch: MBConvArch) -> None:
    for block, layer in zip(net.blocks, arch.layers, strict=True):
        if layer is None:
            block.force(skip=True)
        else:
            block.force(layer.kernel, layer.expansion, layer.se, skip=False)


def _archs(net: SinglePathSupernet, rng: np.random.Generator) -> list[MBConvArch]:
    """Every uniform corner, plus mixed architectures with skips."""
    uniform = [
        [(k, e, se, False)] * len(net.blocks) for k, e, se in CHOICES
    ]  # fmt: skip
    mixed = [
        [
            (int(rng.choice((3, 5))), int(rng.choice((3, 6))), bool(rng.integers(2)),
             bool(rng.integers(2)) and block.skippable)
            for block in net.blocks
        ]
        for _ in range(4)
    ]  # fmt: skip
    archs = []
    for choice in uniform + mixed:
        layers = tuple(
            None if skip else MBLayer(b.out_channels, k, e, b.stride, se)
            for b, (k, e, se, skip) in zip(net.blocks, choice, strict=True)
        )
        archs.append(MBConvArch(net.stem_channels, layers, net.head_channels))
    return archs


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_cost_at_corners_equals_the_predicted_energy_of_the_plain_network(predictor, width) -> None:
    costs = supernet_costs(predictor, SHAPE, 10, width)
    net = SinglePathSupernet(SHAPE, 10, width)
    for arch in _archs(net, np.random.default_rng(0)):
        # a second implementation: describe the built registry network and predict it
        expected = predict(create_network(arch, SHAPE, 10), SHAPE, predictor).energy_mj
        assert costs.energy_mj(arch) == pytest.approx(expected, rel=1e-9)
        _force(net, arch)
        assert net.derive_arch() == arch
        got = costs.expected_energy_mj(net).item()
        assert got == pytest.approx(expected, rel=1e-6)  # float32 result
    assert costs.cheapest_mj() < costs.energy_mj(_archs(net, np.random.default_rng(1))[0])


def test_gradients_reach_every_threshold(predictor, digits) -> None:
    torch.manual_seed(0)
    costs = supernet_costs(predictor, digits.input_shape, 10, 0.5)
    net = SinglePathSupernet(digits.input_shape, 10, 0.5)
    x = torch.from_numpy(digits.train.images[:16]).float() / 16.0
    y = torch.from_numpy(digits.train.labels[:16].astype("int64"))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss = loss + 0.5 * torch.log(costs.expected_energy_mj(net))
    loss.backward()
    thresholds = net.threshold_parameters()
    assert len(thresholds) == 3 * 7 + 3  # k5, e6, se per slot; skip where not first
    for t in thresholds:
        assert t.grad is not None and t.grad.item() != 0.0


def test_forced_indicators_pass_no_gradient(predictor) -> None:
    costs = supernet_costs(predictor, SHAPE, 10, 0.5)
    net = SinglePathSupernet(SHAPE, 10, 0.5, search_se=False)
    costs.expected_energy_mj(net).backward()
    assert all(b.t_se.grad is None for b in net.blocks)
    assert all(b.t_k5.grad.item() < 0 for b in net.blocks)  # raising t lowers the energy
    assert "se" not in parse_arch(f"mbconv:{net.derive_arch().to_str()}").to_str()
