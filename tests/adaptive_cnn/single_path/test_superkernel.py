"""The superkernel layer against plain MBConv layers, and its straight-through indicators."""

from __future__ import annotations

import itertools

import pytest
import torch

from adaptive_cnn.networks.mbconv import MBLayer
from adaptive_cnn.networks.mbconv_blocks import InvertedResidual
from adaptive_cnn.single_path import SuperkernelMBConv, indicator
from adaptive_cnn.single_path.inherit import layer_state

CHOICES = list(itertools.product((3, 5), (3, 6), (False, True)))


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights and batch-norm statistics, so that every copied entry matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            values = torch.rand(tensor.shape, generator=g)
            tensor.copy_(values + 0.5 if name.endswith("running_var") else values - 0.5)


@pytest.mark.parametrize("shape", [(8, 8, 1), (8, 16, 2)], ids=["residual", "strided"])
@pytest.mark.parametrize(("kernel", "expansion", "se"), CHOICES)
def test_forced_superkernel_equals_the_plain_layer(shape, kernel, expansion, se) -> None:
    in_ch, out_ch, stride = shape
    torch.manual_seed(0)
    sk = SuperkernelMBConv(in_ch, out_ch, stride, skippable=stride == 1)
    _randomise(sk, 1)
    plain = InvertedResidual(in_ch, out_ch, kernel, expansion, stride, se)
    layer = MBLayer(out_ch, kernel, expansion, stride, se=se)
    plain.load_state_dict(layer_state(sk, layer))  # strict: every weight comes from sk
    sk.force(kernel=kernel, expansion=expansion, se=se, skip=False)
    sk.eval(), plain.eval()
    x = torch.randn(3, in_ch, 7, 7, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = plain(x), sk(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert sk.choice().to_str() == f"m{out_ch}k{kernel}e{expansion}" + (
        f"s{stride}" if stride > 1 else ""
    ) + ("se" if se else "")


def test_a_skipped_superkernel_is_the_identity() -> None:
    sk = SuperkernelMBConv(8, 8, 1, skippable=True)
    _randomise(sk, 3)
    sk.force(kernel=5, expansion=6, se=True, skip=True)
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(sk.eval()(x), x)
    assert sk.choice() is None


def test_only_residual_slots_can_be_skipped() -> None:
    with pytest.raises(ValueError, match="skipped"):
        SuperkernelMBConv(8, 16, 2, skippable=True)
    sk = SuperkernelMBConv(8, 16, 2)
    with pytest.raises(ValueError, match="cannot be skipped"):
        sk.force(skip=True)
    with pytest.raises(ValueError, match="kernel"):
        sk.force(kernel=7)
    assert set(sk.thresholds()) == {"k5", "e6", "se"}


def test_indicator_is_hard_forward_and_sigmoid_backward() -> None:
    temperature = 0.1
    size = torch.tensor(0.3, requires_grad=True)
    for t0, expected in ((0.2, 1.0), (0.4, 0.0)):
        t = torch.tensor(t0, requires_grad=True)
        value = indicator(size, t, temperature)
        assert value.item() == expected
        value.backward()
        s = torch.sigmoid(torch.tensor((0.3 - t0) / temperature))
        slope = (s * (1 - s) / temperature).item()  # d sigmoid((size - t) / T) / d size
        assert t.grad.item() == pytest.approx(-slope, rel=1e-5)
        size.grad = None


def test_thresholds_select_the_choice() -> None:
    sk = SuperkernelMBConv(8, 8, 1, skippable=True)
    assert sk.choice().to_str() == "m8k5e6se"  # thresholds start at 0: every option on
    with torch.no_grad():
        sizes = sk.group_sizes()
        sk.t_k5.fill_(sizes["k5"].item() + 1e-3)
        sk.t_se.fill_(sizes["se"].item() + 1e-3)
    assert sk.choice().to_str() == "m8k3e6"
    with torch.no_grad():
        sk.t_skip.fill_(sizes["skip"].item() + 1e-3)
    assert sk.choice() is None
