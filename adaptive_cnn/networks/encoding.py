"""Reading and writing a family's fixed-length optimiser vector, dimension by dimension.

A family's ``encode`` fills a :class:`VectorWriter` (inactive dimensions keep their
canonical filler value) and its ``decode`` reads a :class:`VectorReader`, which validates
only the dimensions that are actually read, so inactive entries are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks.dimensions import Dimension, filler


class VectorWriter:
    """Builds the encoding of one architecture, checking each value against its dimension.

    Args:
        family: the family's name, for error messages.
        dimensions: the family's dimensions, in encoding order.
        arch_str: the architecture's canonical string, for error messages.
    """

    def __init__(self, family: str, dimensions: Sequence[Dimension], arch_str: str) -> None:
        self._family = family
        self._arch_str = arch_str
        self._dims = {d.name: d for d in dimensions}
        self._values = {d.name: filler(d) for d in dimensions}

    def __setitem__(self, name: str, value: Any) -> None:
        dim = self._dims[name]
        if not dim.contains(value):
            raise ArchitectureError(
                f"architecture {self._arch_str!r} is outside the {self._family} search space: "
                f"{name}={value!r}, allowed {dim}"
            )
        self._values[name] = dim.canonical(value)

    def error(self, reason: str) -> ArchitectureError:
        """An :class:`ArchitectureError` saying why the architecture is outside the space."""
        return ArchitectureError(
            f"architecture {self._arch_str!r} is outside the {self._family} search space: {reason}"
        )

    def to_list(self) -> list[Any]:
        """The encoding, one value per dimension in the family's order."""
        return list(self._values.values())


class VectorReader:
    """Gives the values of an optimiser vector by dimension name, validated on access.

    Args:
        family: the family's name, for error messages.
        dimensions: the family's dimensions, in encoding order.
        vector: one value per dimension.

    Raises:
        ArchitectureError: the vector's length differs from the number of dimensions.
    """

    def __init__(self, family: str, dimensions: Sequence[Dimension], vector: Sequence[Any]) -> None:
        if len(vector) != len(dimensions):
            names = ", ".join(d.name for d in dimensions)
            raise ArchitectureError(
                f"a {family} encoding has {len(dimensions)} values ({names}), got {len(vector)}"
            )
        self._family = family
        self._entries = {d.name: (d, v) for d, v in zip(dimensions, vector, strict=True)}

    def __getitem__(self, name: str) -> Any:
        dim, value = self._entries[name]
        if not dim.contains(value):
            raise ArchitectureError(
                f"cannot decode the {self._family} encoding: {name}={value!r}, allowed {dim}"
            )
        return dim.canonical(value)
