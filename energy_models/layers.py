"""Layer descriptors derived from a torch module itself, and the network's cost.

:func:`describe_network` runs one batch-1 forward pass on zeros with forward hooks on every
leaf module, so each descriptor has the shapes the layer really sees; nothing is written
by hand twice. A leaf module of a type not listed in :data:`SUPPORTED_KINDS` is an error,
never silently free. Operations written inline in a ``forward`` (``x + y``, ``F.relu``)
are invisible to hooks: networks use modules such as :class:`energy_models.ops.Add`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from energy_models.errors import EnergyModelError, UnsupportedLayerError
from energy_models.ops import Add, Mul

BYTES_PER_ELEMENT = 4  # activations are counted as fp32

SUPPORTED_KINDS: dict[type, str] = {
    nn.Conv2d: "conv2d",
    nn.Linear: "linear",
    nn.BatchNorm2d: "batchnorm2d",
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.LeakyReLU: "leakyrelu",
    nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid",
    nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.MaxPool2d: "maxpool2d",
    nn.AvgPool2d: "avgpool2d",
    nn.AdaptiveAvgPool2d: "adaptiveavgpool2d",
    nn.AdaptiveMaxPool2d: "adaptivemaxpool2d",
    nn.Flatten: "flatten",
    Add: "add",
    Mul: "mul",
    nn.Identity: "identity",
    nn.Dropout: "dropout",
}
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerDescriptor:
    """One executed layer, per image (batch dimension excluded).

    Attributes:
        kind: layer type, a value of :data:`SUPPORTED_KINDS` (``"conv2d"``, ``"add"``, ...).
        name: the module's path in the network (``"features.0"``).
        in_shape: shape of the (first) input, e.g. (C, H, W) or (features,).
        out_shape: shape of the output.
        in_channels: input channels (conv), in_features (linear), else ``in_shape[0]``.
        out_channels: output channels (conv), out_features (linear), else ``out_shape[0]``.
        kernel: square kernel size (conv, pooling); 0 where not applicable.
        stride: stride (conv, pooling); 1 where not applicable.
        padding: padding per side (conv, pooling); 0 where not applicable.
        groups: conv groups (``in_channels`` for a depthwise conv); 1 elsewhere.
        params: number of parameters of the module.
        macs: multiply-accumulates per image (conv, linear); 0 for the others.
        elements: number of output elements per image.
        n_inputs: number of input tensors (2 for ``add``).
        ceil_mode: pooling rounds its output size up.
        bias: conv or linear layer with a bias.
    """

    kind: str
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_channels: int
    out_channels: int
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1
    params: int = 0
    macs: int = 0
    elements: int = 0
    n_inputs: int = 1
    ceil_mode: bool = False
    bias: bool = False

    @property
    def activation_bytes(self) -> int:
        """Bytes of the layer's inputs plus output at batch 1, in fp32."""
        in_elements = self.n_inputs * math.prod(self.in_shape)
        return BYTES_PER_ELEMENT * (in_elements + self.elements)


@dataclass(frozen=True)
class NetworkCost:
    """Size and compute of a network per image.

    Attributes:
        params: number of parameters of the whole module.
        macs: multiply-accumulates per image, summed over the layers.
        peak_activation_bytes: largest inputs + output of any one layer at batch 1, fp32.
    """

    params: int
    macs: int
    peak_activation_bytes: int


def _square(module: nn.Module, name: str, attr: str, value: Any) -> int:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if any(v != values[0] for v in values):
        raise UnsupportedLayerError(
            f"layer {name!r} ({type(module).__name__}) has a non-square {attr} {values}; "
            f"descriptors support square {attr}s only"
        )
    return int(values[0])


def _conv_padding(module: nn.Conv2d, name: str) -> int:
    if module.padding == "valid":
        return 0
    if module.padding == "same":
        if any(k % 2 == 0 for k in module.kernel_size):  # torch then pads unevenly
            raise UnsupportedLayerError(
                f"layer {name!r} (Conv2d) uses padding='same' with an even kernel; "
                "descriptors support symmetric padding only"
            )
        return (module.kernel_size[0] - 1) // 2
    return _square(module, name, "padding", module.padding)


def _geometry(module: nn.Module, name: str) -> dict[str, Any]:
    if isinstance(module, nn.Conv2d):
        if _square(module, name, "dilation", module.dilation) != 1:
            raise UnsupportedLayerError(
                f"layer {name!r} (Conv2d) is dilated; descriptors support dilation 1 only"
            )
        return {
            "kernel": _square(module, name, "kernel", module.kernel_size),
            "stride": _square(module, name, "stride", module.stride),
            "padding": _conv_padding(module, name),
            "groups": module.groups,
        }
    if isinstance(module, nn.Flatten) and (module.start_dim, module.end_dim) != (1, -1):
        raise UnsupportedLayerError(
            f"layer {name!r} (Flatten) flattens dims {module.start_dim}..{module.end_dim}; "
            "descriptors support Flatten(1, -1) only"
        )
    if isinstance(module, nn.MaxPool2d) and _square(module, name, "dilation", module.dilation) != 1:
        raise UnsupportedLayerError(
            f"layer {name!r} (MaxPool2d) is dilated; descriptors support dilation 1 only"
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        return {
            "kernel": _square(module, name, "kernel", module.kernel_size),
            "stride": _square(module, name, "stride", stride),
            "padding": _square(module, name, "padding", module.padding),
            "ceil_mode": bool(module.ceil_mode),
        }
    return {}


def _channels(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
    if isinstance(module, nn.Conv2d):
        return module.in_channels, module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return (in_shape[0] if in_shape else 1), (out_shape[0] if out_shape else 1)


def _macs(module: nn.Module, out_shape: tuple[int, ...]) -> int:
    if isinstance(module, nn.Conv2d):
        kernel_h, kernel_w = module.kernel_size
        per_output = (module.in_channels // module.groups) * kernel_h * kernel_w
        return math.prod(out_shape) * per_output
    if isinstance(module, nn.Linear):
        return math.prod(out_shape[:-1]) * module.in_features * module.out_features
    return 0


def _describe(
    module: nn.Module, name: str, inputs: Sequence[torch.Tensor], output: torch.Tensor
) -> LayerDescriptor:
    in_shape = tuple(int(v) for v in inputs[0].shape[1:])
    out_shape = tuple(int(v) for v in output.shape[1:])
    in_channels, out_channels = _channels(module, in_shape, out_shape)
    return LayerDescriptor(
        kind=SUPPORTED_KINDS[type(module)],
        name=name,
        in_shape=in_shape,
        out_shape=out_shape,
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        params=sum(p.numel() for p in module.parameters(recurse=False)),
        macs=int(_macs(module, out_shape)),
        elements=math.prod(out_shape),
        n_inputs=len(inputs),
        bias=getattr(module, "bias", None) is not None
        and isinstance(module, (nn.Conv2d, nn.Linear)),
        **_geometry(module, name),
    )


def _leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules to describe, checked: supported types, no parameters in containers."""
    leaves = []
    for name, sub in module.named_modules():
        has_children = next(sub.children(), None) is not None
        if has_children or isinstance(sub, _CONTAINERS):
            if next(sub.parameters(recurse=False), None) is not None:
                raise UnsupportedLayerError(
                    f"module {name or '<root>'!r} ({type(sub).__name__}) holds parameters "
                    f"besides its submodules; their use is invisible to layer descriptors"
                )
            continue
        if type(sub) not in SUPPORTED_KINDS:
            raise UnsupportedLayerError(
                f"layer {name or '<root>'!r} has unsupported type {type(sub).__name__}; "
                f"supported: {', '.join(t.__name__ for t in SUPPORTED_KINDS)}"
            )
        _geometry(sub, name)  # fail before the forward pass on unsupported geometry
        leaves.append((name, sub))
    return leaves


def _dummy_input(module: nn.Module, input_shape: Sequence[int], batch: int) -> torch.Tensor:
    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    return torch.zeros((batch, *input_shape), device=device)


def describe_network(
    module: nn.Module, input_shape: Sequence[int], *, batch: int = 1
) -> tuple[LayerDescriptor, ...]:
    """The descriptors of every executed leaf layer, in execution order.

    Runs one forward pass on zeros in eval mode under ``torch.no_grad``; the training mode
    of every submodule is restored afterwards.

    Args:
        module: the network.
        input_shape: shape of one input without the batch dimension, e.g. (1, 28, 28).
        batch: batch size of the pass; 0 propagates shapes without computing anything
            (every supported layer accepts an empty batch), 1 is the safe default for
            modules whose forward inspects values.

    Returns:
        One descriptor per leaf-module call (a module called twice appears twice).

    Raises:
        UnsupportedLayerError: a leaf module's type or geometry is not supported; the
            message names the module's path and type.
        EnergyModelError: the forward pass fails on ``input_shape``.
    """
    leaves = _leaves(module)
    records: list[LayerDescriptor] = []
    modes = {sub: sub.training for sub in module.modules()}
    handles = [
        sub.register_forward_hook(
            lambda m, inputs, output, name=name: records.append(_describe(m, name, inputs, output))
        )
        for name, sub in leaves
    ]
    try:
        module.eval()
        with torch.no_grad():
            module(_dummy_input(module, input_shape, batch))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise EnergyModelError(
            f"the network's forward pass fails on input shape {tuple(input_shape)}: {first_line}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
        for sub, training in modes.items():
            sub.train(training)
    return tuple(records)


def network_cost(module: nn.Module, input_shape: Sequence[int]) -> NetworkCost:
    """Parameters, MACs and peak activation memory of a network per image.

    Args:
        module: the network.
        input_shape: shape of one input without the batch dimension, e.g. (1, 28, 28).

    Returns:
        The cost; ``params`` counts every parameter of ``module``.
    """
    layers = describe_network(module, input_shape)
    input_bytes = BYTES_PER_ELEMENT * math.prod(input_shape)
    return NetworkCost(
        params=sum(p.numel() for p in module.parameters()),
        macs=sum(layer.macs for layer in layers),
        peak_activation_bytes=max(
            (layer.activation_bytes for layer in layers), default=input_bytes
        ),
    )
