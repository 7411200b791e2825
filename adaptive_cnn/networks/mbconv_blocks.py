"""Torch modules of the ``mbconv`` family: stem, inverted-residual layer and head."""

from __future__ import annotations

import torch
from torch import nn

from energy_models.ops import Add, Mul

SE_REDUCTION = 4  # squeeze-and-excitation bottleneck: hidden // 4 channels ...
SE_MIN_CHANNELS = 8  # ... and at least 8


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """Conv (no bias, padding kernel//2) + batch norm (+ ReLU6).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd square kernel size.
        stride: conv stride.
        groups: conv groups (``in_channels`` for a depthwise conv).
        activation: append a ReLU6.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


def se_channels(hidden: int) -> int:
    """Bottleneck channels of the squeeze-and-excitation gate of ``hidden`` channels."""
    return max(SE_MIN_CHANNELS, hidden // SE_REDUCTION)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(expand(relu(reduce(avgpool(x)))))``.

    Every operation is a module (the gate's product is an :class:`~energy_models.ops.Mul`)
    so that the layer descriptors, and hence the energy model, see all of it.

    Args:
        channels: channels of the gated tensor.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = se_channels(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Sigmoid()
        self.mul = Mul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to the gated (N, C, H, W)."""
        s = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return self.mul(x, s)


class InvertedResidual(nn.Module):
    """MBConv layer: 1x1 expand (when expansion > 1), depthwise kxk, optional
    squeeze-and-excitation, 1x1 linear project.

    The residual add (stride 1 and equal channels) is an :class:`~energy_models.ops.Add`
    module so that forward hooks, and hence the layer descriptors, see it.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd depthwise kernel size.
        expansion: hidden channels = in_channels * expansion.
        stride: depthwise stride.
        se: gate the depthwise output with :class:`SqueezeExcite`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        expansion: int,
        stride: int,
        se: bool = False,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = conv_bn(in_channels, hidden, 1) if expansion > 1 else None
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.se = SqueezeExcite(hidden) if se else None
        self.project = conv_bn(hidden, out_channels, 1, activation=False)
        residual = stride == 1 and in_channels == out_channels
        self.add = Add() if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H', W')."""
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return self.add(x, y) if self.add is not None else y
