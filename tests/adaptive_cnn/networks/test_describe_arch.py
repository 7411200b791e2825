"""Tests of :func:`describe_arch`: layers memoised per piece equal the built network's.

The reference is the second, independent path: build the whole network and describe it
with :func:`energy_models.describe_network`. Parametrised over ``list_networks()``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from torch import nn

import adaptive_cnn.networks.cost as cost_module
import adaptive_cnn.networks.registry as registry_module
from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks import (
    ConvArch,
    NetworkFamily,
    Part,
    PlainConvFamily,
    arch_cost,
    describe_arch,
    get_family,
    list_networks,
    parse_arch,
)
from adaptive_cnn.networks.cost import clear_describe_cache
from adaptive_cnn.networks.registry import network_parts
from energy_models import describe_network, network_cost

FAMILIES = list_networks()
# Every sampled architecture of the built-in families builds and runs on these shapes
# (test_networks checks the forward pass), so no architecture is skipped.
INPUT_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]
N_ARCHS = 30
NUM_CLASSES = 10


def _archs(name: str, seed: int = 0) -> list:
    family, rng = get_family(name), np.random.default_rng(seed)
    return [family.sample(rng) for _ in range(N_ARCHS)]


@pytest.mark.parametrize("input_shape", INPUT_SHAPES)
@pytest.mark.parametrize("name", FAMILIES)
def test_describe_arch_equals_describing_the_built_network(
    name: str, input_shape: tuple[int, int, int]
) -> None:
    family = get_family(name)
    for arch in _archs(name):
        net = family.build(arch, input_shape, NUM_CLASSES)
        expected = describe_network(net, input_shape)
        got = describe_arch(arch.to_str(), input_shape, NUM_CLASSES)
        assert [layer.name for layer in got] == [layer.name for layer in expected], arch
        assert got == expected, arch
        assert describe_arch(arch, input_shape, NUM_CLASSES) == expected, arch
        assert arch_cost(arch, input_shape, NUM_CLASSES) == network_cost(net, input_shape), arch


@pytest.mark.parametrize("name", FAMILIES)
def test_a_second_call_is_served_from_the_cache(name: str, monkeypatch) -> None:
    arch, shape = get_family(name).reference(), (3, 17, 23)
    keys = {part.key for part in network_parts(arch, shape, NUM_CLASSES)}
    calls: list[str] = []

    def counting(module: nn.Module, input_shape, **kwargs):
        calls.append(type(module).__name__)
        return describe_network(module, input_shape, **kwargs)

    clear_describe_cache()
    monkeypatch.setattr(cost_module, "describe_network", counting)
    first = describe_arch(arch, shape, NUM_CLASSES)
    assert len(calls) == len(keys)

    def failing(module: nn.Module, input_shape, **kwargs):
        raise AssertionError("describe_network called for a memoised piece")

    monkeypatch.setattr(cost_module, "describe_network", failing)
    assert describe_arch(arch.to_str(), shape, NUM_CLASSES) == first


def test_architectures_sharing_pieces_describe_only_the_new_ones(monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []

    def counting(module: nn.Module, input_shape, **kwargs):
        calls.append(tuple(input_shape))
        return describe_network(module, input_shape, **kwargs)

    clear_describe_cache()
    monkeypatch.setattr(cost_module, "describe_network", counting)
    describe_arch("c16k3p-c32k3-fc64", (1, 28, 28), NUM_CLASSES)
    assert len(calls) == 5  # two blocks, flatten, fc64, classifier
    calls.clear()
    # Same blocks and flatten; a new hidden linear and a classifier on 32 features.
    describe_arch("c16k3p-c32k3-fc32", (1, 28, 28), NUM_CLASSES)
    assert calls == [(32 * 14 * 14,), (32,)]
    calls.clear()
    # On another input shape every piece up to the hidden linear is new; the classifier
    # still sees 32 features, so it is shared.
    describe_arch("c16k3p-c32k3-fc32", (1, 8, 8), NUM_CLASSES)
    assert calls == [(1, 8, 8), (16, 4, 4), (32, 4, 4), (32 * 4 * 4,)]


def test_keys_identify_structure_and_input_shape() -> None:
    def keys(arch: str, shape=(1, 28, 28), num_classes=NUM_CLASSES) -> list[str]:
        return [part.key for part in network_parts(arch, shape, num_classes)]

    a, b = keys("stem16-m16k3e1-m24k3e6s2-head128"), keys("stem16-m16k3e1-m24k5e6s2-head128")
    assert a[:2] == b[:2] and a[2] != b[2]
    # The head sees the same 24x14x14 input, so its key is shared too.
    assert a[3] == b[3]
    assert keys("c16k3p-fc64", num_classes=3)[:-1] == keys("c16k3p-fc64")[:-1]
    assert keys("c16k3p-fc64", num_classes=3)[-1] != keys("c16k3p-fc64")[-1]
    assert keys("c16k3p", (1, 28, 28))[0] != keys("c16k3p", (1, 27, 28))[0]
    assert keys("c16k3p")[0] != keys("bn-c16k3p")[0]
    assert len({k for name in FAMILIES for k in keys(get_family(name).reference())}) == sum(
        len(keys(get_family(name).reference())) for name in FAMILIES
    )


def test_part_layer_names() -> None:
    run = Part("k", (1,), nn.Identity, "features", offset=3)
    assert run.layer_name("0") == "features.3" and run.layer_name("1") == "features.4"
    block = Part("k", (1,), nn.Identity, "blocks.2")
    assert block.layer_name("expand.0") == "blocks.2.expand.0"
    assert block.layer_name("") == "blocks.2"
    assert Part("k", (1,), nn.Identity).layer_name("pool") == "pool"


def test_describe_arch_is_thread_safe() -> None:
    archs = [a.to_str() for name in FAMILIES for a in _archs(name, seed=5)[:8]]
    expected = [describe_arch(a, (1, 12, 12), NUM_CLASSES) for a in archs]
    clear_describe_cache()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda a: describe_arch(a, (1, 12, 12), NUM_CLASSES), archs))
    assert got == expected


class _WholeConvArch(ConvArch):
    family = "conv-whole"


class _WholeConvFamily(PlainConvFamily):
    """A third-party family that does not split its network: the generic single piece."""

    name = "conv-whole"
    arch_type = _WholeConvArch
    _parts = NetworkFamily._parts


class _BrokenConvFamily(PlainConvFamily):
    """Pieces that do not chain: the second conv block is missing."""

    name = "conv-whole"
    arch_type = _WholeConvArch

    def _parts(self, arch, input_shape, num_classes) -> list[Part]:
        parts = super()._parts(arch, input_shape, num_classes)
        return parts[:1] + parts[2:]


def test_a_family_without_parts_is_described_whole(monkeypatch) -> None:
    conv = parse_arch("bn-c8k3p-c16k5a-fc32")  # before registering a second conv grammar
    monkeypatch.setitem(registry_module._FAMILIES, "conv-whole", _WholeConvFamily())
    arch = _WholeConvArch(conv.blocks, conv.fc_units, conv.batch_norm)
    assert len(network_parts(arch, (1, 28, 28), NUM_CLASSES)) == 1
    expected = describe_network(get_family("conv").build(conv, (1, 28, 28), 10), (1, 28, 28))
    assert describe_arch(arch, (1, 28, 28), NUM_CLASSES) == expected


def test_pieces_that_do_not_chain_are_an_error(monkeypatch) -> None:
    conv = parse_arch("c8k3p-c16k3p")
    monkeypatch.setitem(registry_module._FAMILIES, "conv-whole", _BrokenConvFamily())
    arch = _WholeConvArch(conv.blocks, conv.fc_units, conv.batch_norm)
    with pytest.raises(ArchitectureError, match="parts are wrong"):
        describe_arch(arch, (1, 8, 8), NUM_CLASSES)
