"""Family ``mbconv``: inverted-residual networks, as in Single-Path NAS's search space.

Grammar (tokens joined by ``-``)::

    stem{c}-{layer or skip}-...[-head{c}]
    layer = m{out}k{kernel}e{expansion}[s{stride}][se]
    e.g. stem16-m16k3e1-m24k5e6s2-m24k3e3-skip-m40k5e6s2se-m40k3e3-head128

``stem{c}`` is a 3x3 conv (stride 1) + BN + ReLU6; each ``m..`` is an MBConv layer (see
:class:`~adaptive_cnn.networks.mbconv_blocks.InvertedResidual`) with a residual add when
its stride is 1 and its input and output channels are equal, and with the ``se`` suffix a
squeeze-and-excitation gate on its depthwise output; ``skip`` is an identity slot;
``head{c}`` is a 1x1 conv + BN + ReLU6; then global average pooling and a linear classifier.

The search space is a fixed macro-architecture (stem 16; stages (channels, stride,
layers) = (16,1,1), (24,2,2), (40,2,2), (80,2,2); head 128) scaled by a width multiplier,
with a kernel and expansion per slot, and a skip choice for every slot that is not the
first of its stage (the first changes the shape, so it is never skipped). The BO encoding
(18 values) has no squeeze-and-excitation dimension: SE layers are found by the single-path
search (:mod:`adaptive_cnn.single_path`), and :meth:`MBConvFamily.encode` refuses them
rather than silently dropping the gate.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from torch import nn

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks.dimensions import Categorical, Dimension
from adaptive_cnn.networks.encoding import VectorReader, VectorWriter
from adaptive_cnn.networks.mbconv_blocks import InvertedResidual, conv_bn
from adaptive_cnn.networks.registry import NetworkFamily, Part, part_key, register_network

EXAMPLE = "stem16-m16k3e1-m24k5e6s2-m24k3e3-skip-m40k5e6s2-m40k3e3-head128"
GRAMMAR = "stem{c}-m{out}k{kernel}e{expansion}[s{stride}][se]|skip-...[-head{c}]"

STEM = 16
HEAD = 128
STAGES = ((16, 1, 1), (24, 2, 2), (40, 2, 2), (80, 2, 2))
WIDTHS = (0.5, 0.75, 1.0, 1.5)
KERNELS = (3, 5)
EXPANSIONS = (1, 3, 6)

_NUM = r"([1-9]\d*)"
_STEM_TOKEN = re.compile(rf"stem{_NUM}")
_HEAD_TOKEN = re.compile(rf"head{_NUM}")
_LAYER_TOKEN = re.compile(rf"m{_NUM}k{_NUM}e{_NUM}(?:s{_NUM})?(se)?")
SKIP_TOKEN = "skip"


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


@dataclass(frozen=True)
class MBLayer:
    """One MBConv layer.

    Attributes:
        out_channels: output channels.
        kernel: odd depthwise kernel size.
        expansion: expansion ratio of the hidden channels (1 = no expand conv).
        stride: depthwise stride.
        se: a squeeze-and-excitation gate on the depthwise output.
    """

    out_channels: int
    kernel: int
    expansion: int
    stride: int = 1
    se: bool = False

    def __post_init__(self) -> None:
        values = (self.out_channels, self.kernel, self.expansion, self.stride)
        if not all(_positive(v) for v in values) or self.kernel % 2 == 0:
            raise ArchitectureError(
                f"bad MBConv layer (out={self.out_channels!r}, kernel={self.kernel!r}, "
                f"expansion={self.expansion!r}, stride={self.stride!r}): all are positive "
                f"integers and the kernel is odd"
            )
        if not isinstance(self.se, bool):
            raise ArchitectureError(f"bad MBConv layer: se must be a bool, got {self.se!r}")

    def to_str(self) -> str:
        """The layer's token, e.g. ``m24k5e6s2`` or ``m24k5e6s2se`` (stride 1 is omitted)."""
        stride = f"s{self.stride}" if self.stride != 1 else ""
        se = "se" if self.se else ""
        return f"m{self.out_channels}k{self.kernel}e{self.expansion}{stride}{se}"


@dataclass(frozen=True)
class MBConvArch:
    """An inverted-residual architecture.

    Attributes:
        stem: output channels of the 3x3 stem conv.
        layers: the slots in order; ``None`` is a skipped slot (identity).
        head: output channels of the 1x1 head conv, or ``None`` for no head.
    """

    family: ClassVar[str] = "mbconv"
    stem: int
    layers: tuple[MBLayer | None, ...] = ()
    head: int | None = None

    def __post_init__(self) -> None:
        layers_ok = isinstance(self.layers, tuple) and all(
            layer is None or isinstance(layer, MBLayer) for layer in self.layers
        )
        head_ok = self.head is None or _positive(self.head)
        if not (_positive(self.stem) and layers_ok and head_ok):
            raise ArchitectureError(
                f"bad mbconv architecture (stem={self.stem!r}, layers={self.layers!r}, "
                f"head={self.head!r}): stem and head are positive integers, layers a tuple "
                f"of MBLayer or None"
            )

    def to_str(self) -> str:
        """The canonical string, e.g. ``stem16-m16k3e1-skip-head128``."""
        tokens = [f"stem{self.stem}"]
        tokens += [SKIP_TOKEN if layer is None else layer.to_str() for layer in self.layers]
        tokens += [f"head{self.head}"] if self.head is not None else []
        return "-".join(tokens)

    def __str__(self) -> str:
        return self.to_str()


def _parse_error(s: str, reason: str) -> ArchitectureError:
    return ArchitectureError(
        f"bad mbconv architecture {s!r}: {reason}; expected {GRAMMAR}, e.g. {EXAMPLE!r}"
    )


def _parse_layer(s: str, token: str) -> MBLayer | None:
    if token == SKIP_TOKEN:
        return None
    match = _LAYER_TOKEN.fullmatch(token)
    if not match:
        raise _parse_error(s, f"bad token {token!r}")
    out, kernel, expansion, stride = (int(g) if g else 1 for g in match.groups()[:4])
    if kernel % 2 == 0:
        raise _parse_error(s, f"even kernel in {token!r}; depthwise kernels are odd")
    return MBLayer(out, kernel, expansion, stride, se=match[5] is not None)


def parse_mbconv(s: str) -> MBConvArch:
    """Parse an ``mbconv`` architecture string (see the module docstring for the grammar).

    Raises:
        ArchitectureError: the string does not follow the grammar; names the bad token.
    """
    tokens = s.strip().split("-") if s.strip() else []
    stem = _STEM_TOKEN.fullmatch(tokens[0]) if tokens else None
    if not stem:
        raise _parse_error(s, "it must start with stem{channels}")
    head = _HEAD_TOKEN.fullmatch(tokens[-1]) if len(tokens) > 1 else None
    middle = tokens[1:-1] if head else tokens[1:]
    layers = tuple(_parse_layer(s, token) for token in middle)
    return MBConvArch(int(stem[1]), layers, int(head[1]) if head else None)


@dataclass(frozen=True)
class _Piece:
    """One module of the network, made by ``make``."""

    path: str  # "stem", "blocks.{i}", "head", or "" for the tail (pool, flatten, classifier)
    structure: str  # what the module depends on besides the input shape, e.g. "m24k5e6s2"
    in_shape: tuple[int, int, int]
    make: Callable[[], nn.Module]


def _strided(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # an odd kernel k with padding k // 2


def _tail(channels: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            classifier=nn.Linear(channels, num_classes),
        )
    )


def _block(in_channels: int, layer: MBLayer | None) -> Callable[[], nn.Module]:
    if layer is None:
        return nn.Identity
    return partial(
        InvertedResidual,
        in_channels,
        layer.out_channels,
        layer.kernel,
        layer.expansion,
        layer.stride,
        layer.se,
    )


def _pieces(arch: MBConvArch, input_shape: tuple[int, int, int], num_classes: int) -> list[_Piece]:
    """The network as pieces in construction order, which both the builder and parts use."""
    channels, height, width = input_shape
    pieces = [
        _Piece("stem", f"stem{arch.stem}", input_shape, partial(conv_bn, channels, arch.stem, 3))
    ]
    channels = arch.stem
    for i, layer in enumerate(arch.layers):
        structure = SKIP_TOKEN if layer is None else layer.to_str()
        pieces.append(
            _Piece(f"blocks.{i}", structure, (channels, height, width), _block(channels, layer))
        )
        if layer is not None:
            channels = layer.out_channels
            height, width = _strided(height, layer.stride), _strided(width, layer.stride)
    if arch.head is not None:
        head = partial(conv_bn, channels, arch.head, 1)
        pieces.append(_Piece("head", f"head{arch.head}", (channels, height, width), head))
        channels = arch.head
    tail = partial(_tail, channels, num_classes)
    pieces.append(_Piece("", f"classifier{num_classes}", (channels, height, width), tail))
    return pieces


def build_mbconv(
    arch: MBConvArch, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    """Build the module: ``stem``, ``blocks``, optional ``head``, ``pool``, ``classifier``.

    Args:
        arch: the architecture.
        input_shape: (channels, height, width) of one image.
        num_classes: number of output logits.

    Returns:
        An ``nn.Sequential`` mapping (N, C, H, W) to (N, num_classes).
    """
    made = {piece.path: piece.make() for piece in _pieces(arch, input_shape, num_classes)}
    modules: OrderedDict[str, nn.Module] = OrderedDict(stem=made["stem"])
    modules["blocks"] = nn.Sequential(*(made[f"blocks.{i}"] for i in range(len(arch.layers))))
    if "head" in made:
        modules["head"] = made["head"]
    modules.update(made[""].named_children())
    return nn.Sequential(modules)


def mbconv_parts(
    arch: MBConvArch, input_shape: tuple[int, int, int], num_classes: int
) -> list[Part]:
    """The pieces of :func:`build_mbconv`'s network, in order.

    The stem, each MBConv layer or skip, the head, and the pool, flatten and classifier
    together.
    """
    return [
        Part(part_key(MBConvArch.family, p.structure, p.in_shape), p.in_shape, p.make, p.path)
        for p in _pieces(arch, input_shape, num_classes)
    ]


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to the nearest multiple of 8 (halves up), at least 8."""
    return max(8, int(channels * width / 8 + 0.5) * 8)


@dataclass(frozen=True)
class Slot:
    """One slot of the macro-architecture at a width: output channels, stride, and whether
    it is the first of its stage (which changes the shape and is never skipped)."""

    channels: int
    stride: int
    first: bool


def slots(width: float) -> tuple[Slot, ...]:
    """The 7 slots of the macro-architecture (:data:`STAGES`) at width multiplier ``width``."""
    return tuple(
        Slot(scaled_channels(channels, width), stride if i == 0 else 1, i == 0)
        for channels, stride, n_layers in STAGES
        for i in range(n_layers)
    )


def _dimensions() -> tuple[Dimension, ...]:
    dims: list[Dimension] = [Categorical("width", WIDTHS)]
    for i, slot in enumerate(slots(1.0), start=1):
        dims += [Categorical(f"kernel_{i}", KERNELS), Categorical(f"expansion_{i}", EXPANSIONS)]
        if not slot.first:
            dims.append(Categorical(f"skip_{i}", (False, True)))
    return tuple(dims)


_DIMENSIONS = _dimensions()


def _width_of(arch: MBConvArch, out: VectorWriter) -> float:
    for width in WIDTHS:
        if (arch.stem, arch.head) == (scaled_channels(STEM, width), scaled_channels(HEAD, width)):
            return width
    expected = ", ".join(
        f"stem{scaled_channels(STEM, w)}/head{scaled_channels(HEAD, w)} (width {w})" for w in WIDTHS
    )
    raise out.error(f"stem{arch.stem}/head{arch.head} matches no width; expected one of {expected}")


def _encode_slot(i: int, layer: MBLayer | None, slot: Slot, out: VectorWriter) -> None:
    if layer is None:
        if slot.first:
            raise out.error(f"slot {i} is the first of its stage and cannot be skipped")
        out[f"skip_{i}"] = True
        return
    if not slot.first:
        out[f"skip_{i}"] = False
    if layer.se:
        raise out.error(
            f"slot {i} ({layer.to_str()}) has squeeze-and-excitation, which the BO encoding "
            "does not cover (only the single-path search designs SE layers)"
        )
    if (layer.out_channels, layer.stride) != (slot.channels, slot.stride):
        raise out.error(
            f"slot {i} ({layer.to_str()}) must have {slot.channels} output channels "
            f"and stride {slot.stride} at this width"
        )
    out[f"kernel_{i}"] = layer.kernel
    out[f"expansion_{i}"] = layer.expansion


class MBConvFamily(NetworkFamily[MBConvArch]):
    """The ``mbconv`` family: a width-scaled MobileNetV2-like macro-architecture of 7 slots."""

    name = "mbconv"
    arch_type = MBConvArch
    example = EXAMPLE

    def from_str(self, s: str) -> MBConvArch:
        """Parse an ``mbconv`` string; see :func:`parse_mbconv`."""
        return parse_mbconv(s)

    def dimensions(self) -> tuple[Dimension, ...]:
        """width, then per slot i: kernel_i, expansion_i and (not first of stage) skip_i."""
        return _DIMENSIONS

    def encode(self, arch: MBConvArch) -> list[Any]:
        """The 18-value encoding; kernel/expansion of skipped slots get filler values.

        Raises:
            ArchitectureError: ``arch`` is outside the BO space, e.g. it has an SE layer.
        """
        self.check_arch(arch)
        out = VectorWriter(self.name, _DIMENSIONS, arch.to_str())
        width = _width_of(arch, out)
        out["width"] = width
        space = slots(width)
        if len(arch.layers) != len(space):
            raise out.error(f"{len(arch.layers)} layer slots, the space has {len(space)}")
        for i, (layer, slot) in enumerate(zip(arch.layers, space, strict=True), start=1):
            _encode_slot(i, layer, slot, out)
        return out.to_list()

    def decode(self, vector: Sequence[Any]) -> MBConvArch:
        """The architecture of an 18-value encoding; inactive entries are ignored."""
        v = VectorReader(self.name, _DIMENSIONS, vector)
        width = v["width"]
        layers: list[MBLayer | None] = []
        for i, slot in enumerate(slots(width), start=1):
            if not slot.first and v[f"skip_{i}"]:
                layers.append(None)
                continue
            layers.append(
                MBLayer(slot.channels, v[f"kernel_{i}"], v[f"expansion_{i}"], slot.stride)
            )
        return MBConvArch(scaled_channels(STEM, width), tuple(layers), scaled_channels(HEAD, width))

    def references(self) -> dict[str, MBConvArch]:
        """Reference networks of the space at widths 0.5, 1.0 and 1.5."""
        return {
            "small": parse_mbconv(
                "stem8-m8k3e1-m16k3e3s2-m16k3e3-m24k3e3s2-m24k3e3-m40k3e3s2-m40k3e3-head64"
            ),
            "medium": parse_mbconv(
                "stem16-m16k3e1-m24k3e6s2-m24k3e3-m40k5e6s2-m40k3e3-m80k5e6s2-m80k3e3-head128"
            ),
            "large": parse_mbconv(
                "stem24-m24k3e1-m40k5e6s2-m40k5e6-m64k5e6s2-m64k5e6-m120k5e6s2-m120k5e6-head192"
            ),
        }

    def _build(
        self, arch: MBConvArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> nn.Module:
        return build_mbconv(arch, input_shape, num_classes)

    def _parts(
        self, arch: MBConvArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> list[Part]:
        return mbconv_parts(arch, input_shape, num_classes)


register_network(MBConvFamily())
