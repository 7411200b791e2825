"""Squeeze-and-excitation in the mbconv grammar: round trip, modules, energy, BO encoding."""

from __future__ import annotations

import pytest
import torch

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks import create_network, describe_arch, get_family, parse_arch
from adaptive_cnn.networks.mbconv import MBLayer, parse_mbconv
from energy_models.estimate import estimate_layers, predict

SE_ARCH = "stem16-m16k3e1se-m24k5e6s2se-m24k3e3-skip-m40k5e6s2-head128"


def test_se_suffix_round_trips_and_plain_strings_are_unchanged() -> None:
    arch = parse_mbconv(SE_ARCH)
    assert arch.to_str() == SE_ARCH
    assert arch.layers[1] == MBLayer(24, 5, 6, 2, se=True)
    assert arch.layers[2] == MBLayer(24, 3, 3)  # se defaults to off
    plain = get_family("mbconv").reference().to_str()
    assert "se" not in plain.replace("stem", "") and parse_mbconv(plain).to_str() == plain
    for bad in ("stem16-m16k3e1ses", "stem16-m16k3e1s", "stem16-m16k3e1sse"):
        with pytest.raises(ArchitectureError, match="bad token"):
            parse_mbconv(bad)
    with pytest.raises(ArchitectureError, match="se must be a bool"):
        MBLayer(8, 3, 1, se=1)


def test_se_layer_is_made_of_described_modules(predictor) -> None:
    shape = (1, 28, 28)
    net = create_network(f"mbconv:{SE_ARCH}", shape, 10)
    assert net(torch.zeros(2, *shape)).shape == (2, 10)
    layers = describe_arch(f"mbconv:{SE_ARCH}", shape, 10)
    se = [layer for layer in layers if layer.name.startswith("blocks.1.se.")]
    assert [layer.kind for layer in se] == [
        "adaptiveavgpool2d", "conv2d", "relu", "conv2d", "sigmoid", "mul",
    ]  # fmt: skip
    hidden = 16 * 6
    assert se[1].out_channels == hidden // 4 and se[3].out_channels == hidden
    assert se[5].in_shape == (hidden, 14, 14)
    # first layer: expansion 1, 16 channels -> a bottleneck of at least 8
    assert [la.out_channels for la in layers if la.name == "blocks.0.se.reduce"] == [8]
    with_se = predict(net, shape, predictor).energy_mj
    assert with_se == pytest.approx(estimate_layers(layers, shape, predictor).energy_mj)
    without = predict(create_network(f"mbconv:{SE_ARCH.replace('se', '')}", shape, 10),
                      shape, predictor).energy_mj  # fmt: skip
    assert with_se > without


def test_bo_encoding_refuses_se_layers() -> None:
    family = get_family("mbconv")
    arch = family.reference()
    assert len(family.encode(arch)) == 18
    layers = (MBLayer(16, 3, 1, se=True), *arch.layers[1:])
    with pytest.raises(ArchitectureError, match="squeeze-and-excitation"):
        family.encode(type(arch)(arch.stem, layers, arch.head))
    assert parse_arch(f"mbconv:{SE_ARCH}").to_str() == SE_ARCH
