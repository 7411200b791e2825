"""Rebuild a single torch layer from its descriptor, so the profiler can time it alone.

The inverse of :func:`energy_models.layers.describe_network` for one layer: the module is
checked by describing it again, so a builder that drifts from the descriptor fails loudly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from energy_models.errors import EnergyModelError
from energy_models.layers import SUPPORTED_KINDS, LayerDescriptor, describe_network
from energy_models.ops import Add, Mul

_MODULE_OF_KIND = {kind: cls for cls, kind in SUPPORTED_KINDS.items()}
_NO_ARGS = {"relu", "relu6", "leakyrelu", "silu", "sigmoid", "hardswish", "hardsigmoid"}
_NO_ARGS |= {"tanh", "gelu", "identity", "dropout", "flatten", "add", "mul"}


def descriptor_to_dict(layer: LayerDescriptor) -> dict[str, Any]:
    """JSON-able form of a descriptor (tuples become lists)."""
    d = dataclasses.asdict(layer)
    d["in_shape"], d["out_shape"] = list(layer.in_shape), list(layer.out_shape)
    return d


def descriptor_from_dict(d: Mapping[str, Any]) -> LayerDescriptor:
    """Inverse of :func:`descriptor_to_dict`; unknown keys are an error."""
    known = {f.name for f in dataclasses.fields(LayerDescriptor)}
    unknown = set(d) - known
    if unknown:
        raise EnergyModelError(f"unknown layer descriptor keys: {', '.join(sorted(unknown))}")
    try:
        values = dict(d)
        values["in_shape"] = tuple(int(v) for v in d["in_shape"])
        values["out_shape"] = tuple(int(v) for v in d["out_shape"])
        return LayerDescriptor(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise EnergyModelError(f"malformed layer descriptor ({type(exc).__name__}: {exc})") from exc


def _conv(layer: LayerDescriptor) -> nn.Module:
    return nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel,
        layer.stride,
        layer.padding,
        groups=layer.groups,
        bias=layer.bias,
    )


def _pool(layer: LayerDescriptor) -> nn.Module:
    cls = nn.MaxPool2d if layer.kind == "maxpool2d" else nn.AvgPool2d
    return cls(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)


_BUILDERS: dict[str, Callable[[LayerDescriptor], nn.Module]] = {
    "conv2d": _conv,
    "linear": lambda d: nn.Linear(d.in_channels, d.out_channels, bias=d.bias),
    "batchnorm2d": lambda d: nn.BatchNorm2d(d.in_channels, affine=d.params > 0),
    "maxpool2d": _pool,
    "avgpool2d": _pool,
    "adaptiveavgpool2d": lambda d: nn.AdaptiveAvgPool2d(tuple(d.out_shape[1:])),
    "adaptivemaxpool2d": lambda d: nn.AdaptiveMaxPool2d(tuple(d.out_shape[1:])),
}


def build_layer(layer: LayerDescriptor) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A fresh module in eval mode and random batch-1 inputs matching ``layer``.

    Args:
        layer: the descriptor to rebuild.

    Returns:
        (module, inputs); ``module(*inputs)`` runs the layer as it ran in its network.

    Raises:
        EnergyModelError: the kind cannot be rebuilt or the rebuilt layer does not match.
    """
    if layer.kind in _BUILDERS:
        module = _BUILDERS[layer.kind](layer)
    elif layer.kind in _NO_ARGS:
        module = _MODULE_OF_KIND[layer.kind]()
    else:
        raise EnergyModelError(f"cannot rebuild a layer of kind {layer.kind!r}")
    generator = torch.Generator().manual_seed(0)
    first = torch.randn((1, *layer.in_shape), generator=generator)
    inputs: tuple[torch.Tensor, ...] = (first,)
    if layer.kind in ("add", "mul"):
        second_shape = layer.in_shape if layer.kind == "add" else (layer.in_shape[0], 1, 1)
        inputs += (torch.randn((1, *second_shape), generator=generator),)
    module.eval()
    _check(layer, module, inputs)
    return module, inputs


def _check(layer: LayerDescriptor, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    wrapper = _Wrap(module, len(inputs))
    described = describe_network(wrapper, layer.in_shape)
    if len(described) != 1:
        raise EnergyModelError(f"rebuilt {layer.kind} layer describes as {len(described)} layers")
    got = dataclasses.replace(described[0], name=layer.name)
    if layer.kind == "mul":  # the gate's shape is not in the descriptor; compare the rest
        got = dataclasses.replace(got, n_inputs=layer.n_inputs)
    if got != layer:
        raise EnergyModelError(f"rebuilt layer does not match its descriptor: {got} != {layer}")


class _Wrap(nn.Module):
    """Feeds a one- or two-input layer from one input, for describing it alone."""

    def __init__(self, layer: nn.Module, n_inputs: int) -> None:
        super().__init__()
        self.layer, self.n_inputs = layer, n_inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_inputs == 1:
            return self.layer(x)
        second = x if isinstance(self.layer, Add) else x.mean((2, 3), keepdim=True)
        assert isinstance(self.layer, (Add, Mul))
        return self.layer(x, second)
