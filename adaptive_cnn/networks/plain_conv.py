"""Family ``conv``: plain convolutional networks, as in HyperPower's search space.

Grammar (tokens joined by ``-``)::

    [bn-]c{filters}k{kernel}[p|a]-...[-fc{units}...]      e.g. bn-c16k3p-c32k5p-fc64

``bn`` puts batch norm after every conv; each ``c..k..`` block is a 'same'-padded conv
followed by ReLU and an optional 2x2 max (``p``) or average (``a``) pool with
``ceil_mode=True`` (so any input size works: 1x1 stays 1x1); each ``fc{units}`` is a hidden
linear layer with ReLU; a final linear classifier is implied.
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
from adaptive_cnn.networks.dimensions import Categorical, Dimension, Integer
from adaptive_cnn.networks.encoding import VectorReader, VectorWriter
from adaptive_cnn.networks.registry import (
    NetworkFamily,
    Part,
    part_key,
    register_network,
    sequential_of,
)

EXAMPLE = "bn-c16k3p-c32k5p-fc64"
GRAMMAR = "[bn-]c{filters}k{kernel}[p|a]-...[-fc{units}...]"

MAX_BLOCKS = 4
MAX_FC = 2
POOLS = ("none", "max", "avg")
_POOL_SUFFIX = {"none": "", "max": "p", "avg": "a"}
_SUFFIX_POOL = {v: k for k, v in _POOL_SUFFIX.items()}

_CONV_TOKEN = re.compile(r"c([1-9]\d*)k([1-9]\d*)([pa]?)")
_FC_TOKEN = re.compile(r"fc([1-9]\d*)")

LayerMaker = Callable[[], nn.Module]


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


@dataclass(frozen=True)
class ConvBlock:
    """One conv block: conv (+ batch norm) + ReLU (+ 2x2 pool).

    Attributes:
        filters: output channels of the conv.
        kernel: square kernel size; 'same' padding keeps height and width.
        pool: ``"none"``, ``"max"`` or ``"avg"`` (2x2, stride 2, ceil mode).
    """

    filters: int
    kernel: int
    pool: str = "none"

    def __post_init__(self) -> None:
        if not (_positive(self.filters) and _positive(self.kernel)) or self.pool not in POOLS:
            raise ArchitectureError(
                f"bad conv block (filters={self.filters!r}, kernel={self.kernel!r}, "
                f"pool={self.pool!r}): filters and kernel are positive integers, "
                f"pool one of {POOLS}"
            )

    def to_str(self) -> str:
        """The block's token, e.g. ``c16k3p``."""
        return f"c{self.filters}k{self.kernel}{_POOL_SUFFIX[self.pool]}"


@dataclass(frozen=True)
class ConvArch:
    """A plain conv architecture.

    Attributes:
        blocks: the conv blocks, at least one.
        fc_units: widths of the hidden linear layers (the classifier is implied).
        batch_norm: batch norm after every conv.
    """

    family: ClassVar[str] = "conv"
    blocks: tuple[ConvBlock, ...]
    fc_units: tuple[int, ...] = ()
    batch_norm: bool = False

    def __post_init__(self) -> None:
        blocks_ok = isinstance(self.blocks, tuple) and self.blocks
        if not blocks_ok or not all(isinstance(b, ConvBlock) for b in self.blocks):
            raise ArchitectureError(
                f"a conv architecture needs a non-empty tuple of ConvBlock, got {self.blocks!r}"
            )
        fc_ok = isinstance(self.fc_units, tuple) and all(_positive(u) for u in self.fc_units)
        if not fc_ok or not isinstance(self.batch_norm, bool):
            raise ArchitectureError(
                f"a conv architecture needs fc_units as a tuple of positive integers and "
                f"batch_norm as a bool, got {self.fc_units!r} and {self.batch_norm!r}"
            )

    def to_str(self) -> str:
        """The canonical string, e.g. ``bn-c16k3p-c32k5p-fc64``."""
        tokens = ["bn"] if self.batch_norm else []
        tokens += [b.to_str() for b in self.blocks]
        tokens += [f"fc{u}" for u in self.fc_units]
        return "-".join(tokens)

    def __str__(self) -> str:
        return self.to_str()


def _parse_error(s: str, reason: str) -> ArchitectureError:
    return ArchitectureError(
        f"bad conv architecture {s!r}: {reason}; expected {GRAMMAR}, e.g. {EXAMPLE!r}"
    )


def parse_conv(s: str) -> ConvArch:
    """Parse a ``conv`` architecture string (see the module docstring for the grammar).

    Raises:
        ArchitectureError: the string does not follow the grammar; names the bad token.
    """
    tokens = s.strip().split("-") if s.strip() else []
    batch_norm = bool(tokens) and tokens[0] == "bn"
    blocks: list[ConvBlock] = []
    fc_units: list[int] = []
    for token in tokens[1:] if batch_norm else tokens:
        conv, fc = _CONV_TOKEN.fullmatch(token), _FC_TOKEN.fullmatch(token)
        if conv and fc_units:
            raise _parse_error(s, f"conv block {token!r} after a fc layer; conv blocks come first")
        if conv:
            blocks.append(ConvBlock(int(conv[1]), int(conv[2]), _SUFFIX_POOL[conv[3]]))
        elif fc:
            fc_units.append(int(fc[1]))
        else:
            raise _parse_error(s, f"bad token {token!r}")
    if not blocks:
        raise _parse_error(s, "at least one conv block c{filters}k{kernel} is needed")
    return ConvArch(tuple(blocks), tuple(fc_units), batch_norm)


_POOL_LAYERS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
_CONTAINERS = ("features", "flatten", "classifier")


def _conv_layers(block: ConvBlock, in_channels: int, batch_norm: bool) -> list[LayerMaker]:
    """Makers of one block's layers: conv (+ batch norm) + ReLU (+ 2x2 pool)."""
    # Odd kernels get explicit symmetric padding; even ones need torch's asymmetric 'same'.
    padding: int | str = block.kernel // 2 if block.kernel % 2 else "same"
    conv = partial(
        nn.Conv2d, in_channels, block.filters, block.kernel, padding=padding, bias=not batch_norm
    )
    layers: list[LayerMaker] = [conv]
    if batch_norm:
        layers.append(partial(nn.BatchNorm2d, block.filters))
    layers.append(nn.ReLU)
    if block.pool != "none":
        layers.append(partial(_POOL_LAYERS[block.pool], 2, ceil_mode=True))
    return layers


def _pooled(size: int, pool: str) -> int:
    return size if pool == "none" else (size + 1) // 2


@dataclass(frozen=True)
class _Piece:
    """A run of layers of one of the network's containers, made by ``layers`` in order."""

    container: str  # "features", "flatten" or "classifier"
    structure: str  # what the layers depend on besides the input shape, e.g. "bn-c16k3p"
    in_shape: tuple[int, ...]
    layers: tuple[LayerMaker, ...]


def _pieces(arch: ConvArch, input_shape: tuple[int, int, int], num_classes: int) -> list[_Piece]:
    """The network as pieces in construction order, which both the builder and parts use."""
    channels, height, width = input_shape
    bn = "bn-" if arch.batch_norm else ""
    pieces: list[_Piece] = []
    for block in arch.blocks:
        layers = tuple(_conv_layers(block, channels, arch.batch_norm))
        pieces.append(_Piece("features", bn + block.to_str(), (channels, height, width), layers))
        channels = block.filters
        height, width = _pooled(height, block.pool), _pooled(width, block.pool)
    pieces.append(_Piece("flatten", "flatten", (channels, height, width), (nn.Flatten,)))
    in_features = channels * height * width
    for units in arch.fc_units:
        fc = (partial(nn.Linear, in_features, units), nn.ReLU)
        pieces.append(_Piece("classifier", f"fc{units}", (in_features,), fc))
        in_features = units
    out = (partial(nn.Linear, in_features, num_classes),)
    pieces.append(_Piece("classifier", f"out{num_classes}", (in_features,), out))
    return pieces


def build_conv(arch: ConvArch, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the module: ``features`` (conv blocks), ``flatten``, ``classifier`` (linears).

    Args:
        arch: the architecture.
        input_shape: (channels, height, width) of one image.
        num_classes: number of output logits.

    Returns:
        An ``nn.Sequential`` mapping (N, C, H, W) to (N, num_classes).
    """
    layers: dict[str, list[nn.Module]] = {name: [] for name in _CONTAINERS}
    for piece in _pieces(arch, input_shape, num_classes):
        layers[piece.container] += [make() for make in piece.layers]
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*layers["features"]),
            flatten=layers["flatten"][0],
            classifier=nn.Sequential(*layers["classifier"]),
        )
    )


def conv_parts(arch: ConvArch, input_shape: tuple[int, int, int], num_classes: int) -> list[Part]:
    """The pieces of :func:`build_conv`'s network, in order.

    Each conv block with its batch norm, ReLU and pool; the flatten; each hidden linear with
    its ReLU; the classifier. Blocks and linears are runs of the flat ``features`` and
    ``classifier`` containers, hence the offsets.
    """
    parts: list[Part] = []
    offsets = dict.fromkeys(_CONTAINERS, 0)
    for piece in _pieces(arch, input_shape, num_classes):
        key = part_key(ConvArch.family, piece.structure, piece.in_shape)
        if piece.container == "flatten":
            parts.append(Part(key, piece.in_shape, piece.layers[0], "flatten"))
            continue
        build = partial(sequential_of, piece.layers)
        offset = offsets[piece.container]
        parts.append(Part(key, piece.in_shape, build, piece.container, offset))
        offsets[piece.container] += len(piece.layers)
    return parts


def _dimensions() -> tuple[Dimension, ...]:
    dims: list[Dimension] = [Integer("n_blocks", 1, MAX_BLOCKS)]
    for i in range(1, MAX_BLOCKS + 1):
        dims += [
            Integer(f"filters_{i}", 8, 128),
            Categorical(f"kernel_{i}", (3, 5, 7)),
            Categorical(f"pool_{i}", POOLS),
        ]
    dims += [Categorical("batch_norm", (False, True)), Integer("n_fc", 0, MAX_FC)]
    dims += [Integer(f"fc_units_{j}", 16, 512) for j in range(1, MAX_FC + 1)]
    return tuple(dims)


_DIMENSIONS = _dimensions()


class PlainConvFamily(NetworkFamily[ConvArch]):
    """The ``conv`` family: 1..4 conv blocks and 0..2 hidden fc layers in the space."""

    name = "conv"
    arch_type = ConvArch
    example = EXAMPLE

    def from_str(self, s: str) -> ConvArch:
        """Parse a ``conv`` string; see :func:`parse_conv`."""
        return parse_conv(s)

    def dimensions(self) -> tuple[Dimension, ...]:
        """n_blocks, (filters_i, kernel_i, pool_i) for i=1..4, batch_norm, n_fc, fc_units_1..2."""
        return _DIMENSIONS

    def encode(self, arch: ConvArch) -> list[Any]:
        """The 17-value encoding; blocks/fc layers beyond the counts get filler values."""
        self.check_arch(arch)
        out = VectorWriter(self.name, _DIMENSIONS, arch.to_str())
        out["n_blocks"] = len(arch.blocks)
        for i, block in enumerate(arch.blocks, start=1):
            out[f"filters_{i}"] = block.filters
            out[f"kernel_{i}"] = block.kernel
            out[f"pool_{i}"] = block.pool
        out["batch_norm"] = arch.batch_norm
        out["n_fc"] = len(arch.fc_units)
        for j, units in enumerate(arch.fc_units, start=1):
            out[f"fc_units_{j}"] = units
        return out.to_list()

    def decode(self, vector: Sequence[Any]) -> ConvArch:
        """The architecture of a 17-value encoding; inactive entries are ignored."""
        v = VectorReader(self.name, _DIMENSIONS, vector)
        blocks = tuple(
            ConvBlock(v[f"filters_{i}"], v[f"kernel_{i}"], v[f"pool_{i}"])
            for i in range(1, v["n_blocks"] + 1)
        )
        fc_units = tuple(v[f"fc_units_{j}"] for j in range(1, v["n_fc"] + 1))
        return ConvArch(blocks, fc_units, v["batch_norm"])

    def references(self) -> dict[str, ConvArch]:
        """Reference networks sized for 28x28 grey images (about 1, 5 and 15 M MACs)."""
        return {
            "small": parse_conv("c16k3p-c32k3p-fc64"),
            "medium": parse_conv("c32k5p-c64k3p-fc128"),
            "large": parse_conv("bn-c32k3-c32k3p-c64k3p-c128k3p-fc256"),
        }

    def _build(
        self, arch: ConvArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> nn.Module:
        return build_conv(arch, input_shape, num_classes)

    def _parts(
        self, arch: ConvArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> list[Part]:
        return conv_parts(arch, input_shape, num_classes)


register_network(PlainConvFamily())
