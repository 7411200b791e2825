"""Family ``mlp``: fully connected networks, the cheapest first stage a cascade can have.

Grammar (tokens joined by ``-``)::

    fc{units}-...      e.g. fc256 or fc512-fc128

The image is flattened; each ``fc{units}`` is a hidden linear layer with ReLU; a final
linear classifier is implied. At batch 1 a framework call per layer costs more than the
arithmetic of a small network, so a net of two or three linear layers predicts several
times cheaper than the smallest conv net; what it lacks in accuracy, a cascade makes up by
passing its unsure images on.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from torch import nn

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks.dimensions import Dimension, Integer
from adaptive_cnn.networks.encoding import VectorReader, VectorWriter
from adaptive_cnn.networks.registry import (
    NetworkFamily,
    Part,
    part_key,
    register_network,
    sequential_of,
)

EXAMPLE = "fc512-fc128"
GRAMMAR = "fc{units}[-fc{units}...]"
MAX_HIDDEN = 2
UNITS_RANGE = (16, 1024)

_FC_TOKEN = re.compile(r"fc([1-9]\d*)")


@dataclass(frozen=True)
class MLPArch:
    """A fully connected architecture.

    Attributes:
        hidden_units: widths of the hidden linear layers, at least one (the classifier
            is implied).
    """

    family: ClassVar[str] = "mlp"
    hidden_units: tuple[int, ...]

    def __post_init__(self) -> None:
        units = self.hidden_units
        if not (
            isinstance(units, tuple) and units and all(type(u) is int and u > 0 for u in units)
        ):
            raise ArchitectureError(
                f"an mlp architecture needs a non-empty tuple of positive hidden widths, "
                f"got {units!r}"
            )

    def to_str(self) -> str:
        """The canonical string, e.g. ``fc512-fc128``."""
        return "-".join(f"fc{u}" for u in self.hidden_units)

    def __str__(self) -> str:
        return self.to_str()


def parse_mlp(s: str) -> MLPArch:
    """Parse an ``mlp`` architecture string (see the module docstring for the grammar).

    Raises:
        ArchitectureError: the string does not follow the grammar; names the bad token.
    """
    tokens = s.strip().split("-") if s.strip() else []
    if not tokens:
        raise _parse_error(s, "at least one hidden layer fc{units} is needed")
    units = []
    for token in tokens:
        fc = _FC_TOKEN.fullmatch(token)
        if not fc:
            raise _parse_error(s, f"bad token {token!r}")
        units.append(int(fc[1]))
    return MLPArch(tuple(units))


def _parse_error(s: str, reason: str) -> ArchitectureError:
    return ArchitectureError(
        f"bad mlp architecture {s!r}: {reason}; expected {GRAMMAR}, e.g. {EXAMPLE!r}"
    )


def _linear_pieces(arch: MLPArch, in_features: int, num_classes: int):
    """(structure, in_features, layer makers) of each hidden layer, then the classifier."""
    pieces = []
    for units in arch.hidden_units:
        pieces.append(
            (f"fc{units}", in_features, (partial(nn.Linear, in_features, units), nn.ReLU))
        )
        in_features = units
    pieces.append(
        (f"out{num_classes}", in_features, (partial(nn.Linear, in_features, num_classes),))
    )
    return pieces


def build_mlp(arch: MLPArch, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the module: ``flatten``, then ``classifier`` (the linear layers and ReLUs).

    Returns:
        An ``nn.Sequential`` mapping (N, C, H, W) to (N, num_classes).
    """
    layers = [
        make()
        for _, _, makers in _linear_pieces(arch, math.prod(input_shape), num_classes)
        for make in makers
    ]
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), classifier=nn.Sequential(*layers)))


def mlp_parts(arch: MLPArch, input_shape: tuple[int, int, int], num_classes: int) -> list[Part]:
    """The pieces of :func:`build_mlp`'s network: the flatten, each hidden linear with its
    ReLU, the classifier (runs of the flat ``classifier`` container, hence the offsets)."""
    parts = [
        Part(part_key(MLPArch.family, "flatten", input_shape), input_shape, nn.Flatten, "flatten")
    ]
    offset = 0
    for structure, in_features, makers in _linear_pieces(arch, math.prod(input_shape), num_classes):
        key = part_key(MLPArch.family, structure, (in_features,))
        build = partial(sequential_of, makers)
        parts.append(Part(key, (in_features,), build, "classifier", offset))
        offset += len(makers)
    return parts


_DIMENSIONS: tuple[Dimension, ...] = (
    Integer("n_hidden", 1, MAX_HIDDEN),
    *(Integer(f"units_{j}", *UNITS_RANGE) for j in range(1, MAX_HIDDEN + 1)),
)


class MLPFamily(NetworkFamily[MLPArch]):
    """The ``mlp`` family: 1..2 hidden linear layers of 16..1024 units in the space."""

    name = "mlp"
    arch_type = MLPArch
    example = EXAMPLE

    def from_str(self, s: str) -> MLPArch:
        """Parse an ``mlp`` string; see :func:`parse_mlp`."""
        return parse_mlp(s)

    def dimensions(self) -> tuple[Dimension, ...]:
        """n_hidden, units_1..2."""
        return _DIMENSIONS

    def encode(self, arch: MLPArch) -> list[Any]:
        """The 3-value encoding; layers beyond ``n_hidden`` get filler values."""
        self.check_arch(arch)
        out = VectorWriter(self.name, _DIMENSIONS, arch.to_str())
        if len(arch.hidden_units) > MAX_HIDDEN:
            raise out.error(f"{len(arch.hidden_units)} hidden layers, at most {MAX_HIDDEN}")
        out["n_hidden"] = len(arch.hidden_units)
        for j, units in enumerate(arch.hidden_units, start=1):
            out[f"units_{j}"] = units
        return out.to_list()

    def decode(self, vector: Sequence[Any]) -> MLPArch:
        """The architecture of a 3-value encoding; inactive entries are ignored."""
        v = VectorReader(self.name, _DIMENSIONS, vector)
        return MLPArch(tuple(v[f"units_{j}"] for j in range(1, v["n_hidden"] + 1)))

    def references(self) -> dict[str, MLPArch]:
        """Reference networks: one hidden layer of 64 or 256 units, or 512 then 256."""
        return {
            "small": parse_mlp("fc64"),
            "medium": parse_mlp("fc256"),
            "large": parse_mlp("fc512-fc256"),
        }

    def _build(
        self, arch: MLPArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> nn.Module:
        return build_mlp(arch, input_shape, num_classes)

    def _parts(
        self, arch: MLPArch, input_shape: tuple[int, int, int], num_classes: int
    ) -> list[Part]:
        return mlp_parts(arch, input_shape, num_classes)


register_network(MLPFamily())
