"""The single-path supernet: the ``mbconv`` macro-architecture with a superkernel per slot.

Stem, stages and head are those of :mod:`adaptive_cnn.networks.mbconv` at one width
multiplier; each of the 7 slots is a :class:`SuperkernelMBConv`, skippable where the
``mbconv`` space allows a skip (not the first slot of a stage). The network the indicators
select now is a normal registry architecture (:meth:`SinglePathSupernet.derive_arch`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from adaptive_cnn.networks.mbconv import HEAD, STEM, MBConvArch, scaled_channels, slots
from adaptive_cnn.networks.mbconv_blocks import conv_bn
from adaptive_cnn.single_path.superkernel import DEFAULT_TEMPERATURE, SuperkernelMBConv


class SinglePathSupernet(nn.Module):
    """All architectures of the ``mbconv`` space at one width, in one network.

    Args:
        input_shape: (channels, height, width) of one image.
        num_classes: classifier outputs.
        width: width multiplier of the macro-architecture (one of ``mbconv.WIDTHS``).
        search_se: let the search choose squeeze-and-excitation per slot; False forces
            every SE indicator off.
        temperature: scale of the indicators' backward sigmoid.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        width: float = 1.0,
        search_se: bool = True,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        super().__init__()
        self.input_shape, self.num_classes, self.width = tuple(input_shape), num_classes, width
        self.stem_channels = scaled_channels(STEM, width)
        self.head_channels = scaled_channels(HEAD, width)
        self.stem = conv_bn(input_shape[0], self.stem_channels, 3)
        blocks, channels = [], self.stem_channels
        for slot in slots(width):
            block = SuperkernelMBConv(
                channels, slot.channels, slot.stride, not slot.first, temperature
            )
            if not search_se:
                block.force(se=False)
            blocks.append(block)
            channels = slot.channels
        self.blocks = nn.ModuleList(blocks)
        self.head = conv_bn(channels, self.head_channels, 1)
        self.tail = nn.Sequential(
            OrderedDict(
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                classifier=nn.Linear(self.head_channels, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) images to (N, num_classes) logits."""
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        return self.tail(self.head(y))

    def threshold_parameters(self) -> list[nn.Parameter]:
        """Every superkernel's thresholds, in slot order."""
        return [t for block in self.blocks for t in block.thresholds().values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not a threshold."""
        thresholds = {id(t) for t in self.threshold_parameters()}
        return [p for p in self.parameters() if id(p) not in thresholds]

    def derive_arch(self) -> MBConvArch:
        """The architecture the indicators select now (a normal ``mbconv`` architecture)."""
        layers = tuple(block.choice() for block in self.blocks)
        return MBConvArch(self.stem_channels, layers, self.head_channels)
