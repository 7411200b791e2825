"""A found network inherits the supernet's weights: same function as the forced supernet."""

from __future__ import annotations

import pytest
import torch

from adaptive_cnn.networks.mbconv import MBConvArch, MBLayer, build_mbconv
from adaptive_cnn.single_path import SinglePathSupernet
from adaptive_cnn.single_path.inherit import inherited_state, layer_state


def _randomised_supernet(seed: int) -> SinglePathSupernet:
    torch.manual_seed(seed)
    net = SinglePathSupernet((1, 16, 16), 10, width=0.5)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if "running_var" in name:
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif "running_mean" in name:
                tensor.copy_(torch.rand(tensor.shape, generator=g) - 0.5)
    return net.eval()


def _force(net: SinglePathSupernet, arch) -> None:
    for block, layer in zip(net.blocks, arch.layers, strict=True):
        if layer is None:
            block.force(skip=True)
        else:
            block.force(kernel=layer.kernel, expansion=layer.expansion, se=layer.se, skip=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_derived_network_computes_what_the_forced_supernet_computes(seed) -> None:
    net = _randomised_supernet(seed)
    g = torch.Generator().manual_seed(seed)
    layers = []
    for block in net.blocks:  # a random choice per slot, skips where allowed
        if block.skippable and torch.rand((), generator=g) < 0.3:
            layers.append(None)
            continue
        k, e, se = (int(torch.randint(0, 2, (), generator=g)) for _ in range(3))
        layers.append(MBLayer(block.out_channels, (3, 5)[k], (3, 6)[e], block.stride, se=bool(se)))
    arch = MBConvArch(net.stem_channels, tuple(layers), net.head_channels)
    _force(net, arch)
    assert net.derive_arch() == arch
    plain = build_mbconv(arch, (1, 16, 16), 10).eval()
    plain.load_state_dict(inherited_state(net))  # strict: every key, nothing extra
    x = torch.randn(4, 1, 16, 16, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net(x), atol=1e-5, rtol=1e-5)


def test_a_network_outside_the_supernet_space_is_refused() -> None:
    net = _randomised_supernet(0)
    other = MBConvArch(net.stem_channels * 2, net.derive_arch().layers, net.head_channels)
    with pytest.raises(ValueError, match="not in this supernet's space"):
        inherited_state(net, other)
    block = net.blocks[0]
    with pytest.raises(ValueError, match="not a choice of this slot"):
        layer_state(block, MBLayer(block.out_channels, 3, 1, block.stride))
