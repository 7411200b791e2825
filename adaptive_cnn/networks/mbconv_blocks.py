"""Torch modules of the ``mbconv`` family: stem, inverted-residual layer and head."""

from __future__ import annotations

import torch
from torch import nn

from energy_models.ops import Add


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


class InvertedResidual(nn.Module):
    """MBConv layer: 1x1 expand (when expansion > 1), depthwise kxk, 1x1 linear project.

    The residual add (stride 1 and equal channels) is an :class:`~energy_models.ops.Add`
    module so that forward hooks, and hence the layer descriptors, see it.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd depthwise kernel size.
        expansion: hidden channels = in_channels * expansion.
        stride: depthwise stride.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, expansion: int, stride: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = conv_bn(in_channels, hidden, 1) if expansion > 1 else None
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, out_channels, 1, activation=False)
        residual = stride == 1 and in_channels == out_channels
        self.add = Add() if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H', W')."""
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return self.add(x, y) if self.add is not None else y
