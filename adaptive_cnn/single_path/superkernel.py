"""The superkernel MBConv layer: every choice of one ``mbconv`` slot in shared weights.

As in Single-Path NAS (Stamoulis et al., ECML-PKDD 2019), one over-parameterised layer
holds all candidate layers of a slot:

- a depthwise 5x5 kernel whose inner 3x3 core is the 3x3 choice (the outer ring is added
  when the kernel indicator is on);
- 6 x in_channels hidden channels whose first half is the expansion-3 choice (the upper
  half is added when the expansion indicator is on);
- a squeeze-and-excitation branch with its own indicator (the journal extension's
  searchable SE), its bottleneck channels split the same way as the hidden channels;
- for a slot that may be skipped (stride 1, equal channels, not first of its stage), a
  skip indicator on the layer's always-used weights: off, the layer is the identity.

Each indicator is a hard threshold on the size of a weight group, ``1[g(w) > t]``, in the
forward pass, with the gradient of ``sigmoid((g(w) - t) / temperature)`` in the backward
pass (straight-through), so that both the thresholds ``t`` and the weights learn from the
loss. The group size ``g`` is the root mean square of the group's weights (its L2 norm over
the square root of its size), so one threshold scale fits groups of any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_cnn.networks.mbconv import MBLayer
from adaptive_cnn.networks.mbconv_blocks import conv_bn, se_channels

KERNELS = (3, 5)
EXPANSIONS = (3, 6)
MAX_KERNEL = 5
DEFAULT_TEMPERATURE = 0.05


def indicator(size: torch.Tensor, threshold: torch.Tensor, temperature: float) -> torch.Tensor:
    """``1[size > threshold]`` forward, ``sigmoid((size - threshold) / temperature)``'s
    gradient backward (a scalar tensor)."""
    soft = torch.sigmoid((size - threshold) / temperature)
    hard = (size > threshold).to(soft.dtype)
    return hard + soft - soft.detach()


def _rms(w: torch.Tensor) -> torch.Tensor:
    return w.pow(2).mean().sqrt()


@dataclass(frozen=True)
class Indicators:
    """The four indicators of one superkernel (scalar tensors, 0 or 1 in value).

    Attributes:
        k5: the 5x5 outer ring is used.
        e6: the upper half of the hidden channels (expansion 6) is used.
        se: the squeeze-and-excitation gate is used.
        keep: the layer is used (0: the slot is skipped); 1 where it cannot be skipped.
    """

    k5: torch.Tensor
    e6: torch.Tensor
    se: torch.Tensor
    keep: torch.Tensor


class SuperkernelMBConv(nn.Module):
    """One searchable MBConv slot (see the module docstring).

    With its indicators forced to a choice and the weights of a plain
    :class:`~adaptive_cnn.networks.mbconv_blocks.InvertedResidual` copied in (3x3 = inner
    core of the 5x5, expansion 3 = first half of the channels), it computes the same
    function as that layer.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: depthwise stride.
        skippable: the slot may be skipped (requires stride 1 and equal channels).
        temperature: scale of the sigmoid whose gradient the indicators pass back.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        skippable: bool = False,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        super().__init__()
        residual = stride == 1 and in_channels == out_channels
        if skippable and not residual:
            raise ValueError("only a stride-1 layer with equal in/out channels can be skipped")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.residual, self.skippable, self.temperature = residual, skippable, temperature
        self.hidden = in_channels * EXPANSIONS[1]
        self.half = in_channels * EXPANSIONS[0]
        self.se_hidden, self.se_half = se_channels(self.hidden), se_channels(self.half)
        self.expand = conv_bn(in_channels, self.hidden, 1)
        self.depthwise = conv_bn(self.hidden, self.hidden, MAX_KERNEL, stride, groups=self.hidden)
        self.se_reduce = nn.Conv2d(self.hidden, self.se_hidden, 1)
        self.se_expand = nn.Conv2d(self.se_hidden, self.hidden, 1)
        self.project = conv_bn(self.hidden, out_channels, 1, activation=False)
        core = torch.zeros(MAX_KERNEL, MAX_KERNEL)
        core[1:4, 1:4] = 1.0
        self.register_buffer("core_mask", core, persistent=False)
        self.register_buffer("ring", core == 0, persistent=False)
        self.t_k5 = nn.Parameter(torch.zeros(()))
        self.t_e6 = nn.Parameter(torch.zeros(()))
        self.t_se = nn.Parameter(torch.zeros(()))
        self.t_skip = nn.Parameter(torch.zeros(())) if skippable else None
        self._forced: dict[str, float] = {}

    # --- choices ---------------------------------------------------------------------

    def thresholds(self) -> dict[str, nn.Parameter]:
        """The trainable thresholds by name (``k5``, ``e6``, ``se``, and ``skip``)."""
        named = {"k5": self.t_k5, "e6": self.t_e6, "se": self.t_se}
        if self.t_skip is not None:
            named["skip"] = self.t_skip
        return named

    def force(
        self,
        kernel: int | None = None,
        expansion: int | None = None,
        se: bool | None = None,
        skip: bool | None = None,
    ) -> None:
        """Fix indicators to a choice (None leaves that indicator to its threshold).

        A forced indicator is a constant: no gradient reaches its threshold.

        Raises:
            ValueError: a value outside the choices, or ``skip=True`` on a layer that
                cannot be skipped.
        """
        if kernel is not None and kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if expansion is not None and expansion not in EXPANSIONS:
            raise ValueError(f"expansion must be one of {EXPANSIONS}, got {expansion!r}")
        if skip and not self.skippable:
            raise ValueError("this slot cannot be skipped")
        values = {
            "k5": None if kernel is None else float(kernel == 5),
            "e6": None if expansion is None else float(expansion == 6),
            "se": None if se is None else float(se),
            "keep": None if skip is None else float(not skip),
        }
        self._forced.update({k: v for k, v in values.items() if v is not None})

    def release(self) -> None:
        """Undo :meth:`force`: every indicator follows its threshold again."""
        self._forced.clear()

    def group_sizes(self) -> dict[str, torch.Tensor]:
        """RMS of the weight group each indicator thresholds.

        ``k5``: the outer ring of the 5x5 depthwise kernel; ``e6``: the 3x3 cores of the
        upper half of the channels; ``se``: the SE reduce weights of the expansion-3 half;
        ``skip``: the 3x3 cores of the lower half (the weights every kept choice uses).
        """
        w = self.depthwise[0].weight  # (hidden, 1, 5, 5)
        core = w[:, :, 1:4, 1:4]
        return {
            "k5": _rms(w[:, :, self.ring]),
            "e6": _rms(core[self.half :]),
            "se": _rms(self.se_reduce.weight[: self.se_half, : self.half]),
            "skip": _rms(core[: self.half]),
        }

    def leads(self) -> dict[str, float]:
        """Per free indicator (``k5``, ``e6``, ``se``, ``keep``), its weight group's size
        minus its threshold (> 0: on); forced indicators and an unskippable layer's
        ``keep`` are left out."""
        with torch.no_grad():
            sizes, thresholds = self.group_sizes(), self.thresholds()
            groups = {"k5": "k5", "e6": "e6", "se": "se", "keep": "skip"}
            return {
                name: float(sizes[group] - thresholds[group])
                for name, group in groups.items()
                if group in thresholds and name not in self._forced
            }

    def indicators(self) -> Indicators:
        """The current indicators: forced ones as constants, the others thresholded."""
        sizes = self.group_sizes()
        thresholds = self.thresholds()
        ones = torch.ones((), device=self.t_k5.device)

        def value(name: str, group: str) -> torch.Tensor:
            if name in self._forced:
                return ones * self._forced[name]
            if group not in thresholds:  # an unskippable layer is always kept
                return ones
            return indicator(sizes[group], thresholds[group], self.temperature)

        return Indicators(
            value("k5", "k5"), value("e6", "e6"), value("se", "se"), value("keep", "skip")
        )

    def choice(self) -> MBLayer | None:
        """The discrete layer the indicators select now, or None when it is skipped."""
        with torch.no_grad():
            ind = self.indicators()
        if float(ind.keep) < 0.5:
            return None
        return MBLayer(
            self.out_channels,
            KERNELS[int(float(ind.k5) > 0.5)],
            EXPANSIONS[int(float(ind.e6) > 0.5)],
            self.stride,
            se=float(ind.se) > 0.5,
        )

    # --- forward ---------------------------------------------------------------------

    def _channel_mask(self, e6: torch.Tensor, total: int, half: int) -> torch.Tensor:
        lower = torch.ones(half, device=e6.device)
        return torch.cat([lower, e6.expand(total - half)]).view(1, total, 1, 1)

    def forward(self, x: torch.Tensor, ind: Indicators | None = None) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H', W') with the indicators'
        choice (computed now unless given)."""
        ind = ind if ind is not None else self.indicators()
        conv, bn, act = self.depthwise
        kernel = conv.weight * (self.core_mask + ind.k5 * (1.0 - self.core_mask))
        y = self.expand(x)
        y = F.conv2d(y, kernel, None, self.stride, MAX_KERNEL // 2, 1, self.hidden)
        y = act(bn(y)) * self._channel_mask(ind.e6, self.hidden, self.half)
        squeezed = F.relu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))
        squeezed = squeezed * self._channel_mask(ind.e6, self.se_hidden, self.se_half)
        gate = torch.sigmoid(self.se_expand(squeezed))
        y = y * (1.0 - ind.se + ind.se * gate)
        y = self.project(y)
        return x + ind.keep * y if self.residual else y
