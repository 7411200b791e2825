"""Registry of network families, and architectures as round-tripping strings.

A *family* (plain conv, MBConv, ...) knows its string grammar, its fixed-length
optimiser encoding and how to build a torch module. Families register themselves when
their module is imported (``adaptive_cnn.networks`` imports every built-in family), and
everything else finds them by name::

    arch = parse_arch("bn-c16k3p-c32k5p-fc64")       # or "conv:bn-c16k3p-c32k5p-fc64"
    net = create_network(arch, input_shape=(1, 28, 28), num_classes=10)

A family may also split its network into :class:`Part` s, independent pieces (a conv
block, an MBConv layer, the classifier) keyed by their structure and input shape, so that
per-layer descriptions can be memoised per piece across architectures
(:func:`adaptive_cnn.networks.describe_arch`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from torch import nn

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks.dimensions import Dimension

REFERENCE_SIZES = ("small", "medium", "large")


@runtime_checkable
class Arch(Protocol):
    """An architecture: a frozen dataclass whose string form round-trips.

    ``family`` names its family; ``to_str()`` (and ``str()``) give the canonical string,
    which is the cache key and log id, with ``family.from_str(a.to_str()) == a``.
    """

    family: ClassVar[str]

    def to_str(self) -> str: ...


A = TypeVar("A", bound=Arch)


@dataclass(frozen=True)
class Part:
    """One independent piece of a network: described alone, it gives the network's layers.

    Attributes:
        key: the piece's structure together with its input shape, from :func:`part_key`:
            pieces with equal keys have equal layer descriptors up to their names, so two
            architectures sharing a piece share its key.
        in_shape: shape of the piece's input, batch excluded: (C, H, W) or (features,).
        build: makes the piece's module with the family's own builders.
        prefix: the piece's path in the network (``"blocks.3"``); the piece's layer
            ``"expand.0"`` is the network's ``"blocks.3.expand.0"``.
        offset: for a piece that is a run of a flat ``nn.Sequential`` (``build`` gives an
            ``nn.Sequential`` of those layers, ``prefix`` names the flat one), the index of
            its first layer there; it shifts the leading index of each layer name.
    """

    key: str
    in_shape: tuple[int, ...]
    build: Callable[[], nn.Module]
    prefix: str = ""
    offset: int = 0

    def layer_name(self, name: str) -> str:
        """The network's name of the piece's layer ``name`` (``""`` for the piece's root)."""
        if self.offset:
            head, dot, rest = name.partition(".")
            name = f"{int(head) + self.offset}{dot}{rest}"
        if self.prefix and name:
            return f"{self.prefix}.{name}"
        return self.prefix or name


def sequential_of(makers: Sequence[Callable[[], nn.Module]]) -> nn.Sequential:
    """An ``nn.Sequential`` of freshly made layers: how a :class:`Part` that is a run of
    layers builds its module."""
    return nn.Sequential(*(make() for make in makers))


def part_key(family: str, structure: str, in_shape: Sequence[int]) -> str:
    """The key of a piece of ``family``: e.g. ``"conv:bn-c16k3p@1x28x28"``.

    Args:
        family: the family's name, so that families never share a key by accident.
        structure: everything the piece's module depends on besides its input shape.
        in_shape: the piece's input shape, batch excluded.
    """
    return f"{family}:{structure}@{'x'.join(str(v) for v in in_shape)}"


class NetworkFamily(ABC, Generic[A]):
    """A family of CNN architectures: grammar, search space and builder.

    Subclasses set ``name``, ``arch_type`` (the family's Arch dataclass) and ``example``
    (a string of the grammar, shown in error messages), and implement the abstract methods.
    """

    name: ClassVar[str]
    arch_type: ClassVar[type]
    example: ClassVar[str]

    @abstractmethod
    def from_str(self, s: str) -> A:
        """Parse an architecture string of this family's grammar (no ``family:`` prefix).

        Raises:
            ArchitectureError: the string is not of this grammar; the message says why.
        """

    @abstractmethod
    def dimensions(self) -> tuple[Dimension, ...]:
        """The search space: one dimension per entry of the encoding, in order."""

    @abstractmethod
    def encode(self, arch: A) -> list[Any]:
        """The fixed-length vector of ``arch``, ``len(dimensions())`` values.

        Raises:
            ArchitectureError: ``arch`` is outside the search space; names the value.
        """

    @abstractmethod
    def decode(self, vector: Sequence[Any]) -> A:
        """The architecture of an encoding; inactive entries are ignored.

        Raises:
            ArchitectureError: wrong length, or an active value outside its dimension.
        """

    @abstractmethod
    def references(self) -> dict[str, A]:
        """Named reference architectures ``small``, ``medium`` and ``large`` in the space."""

    @abstractmethod
    def _build(self, arch: A, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        """Build the module; arguments are already validated."""

    def _parts(self, arch: A, input_shape: tuple[int, int, int], num_classes: int) -> list[Part]:
        """The pieces of the network; arguments are already validated.

        This default is one piece, the whole network keyed by its architecture string: right
        for any family, but nothing is shared between architectures. Families override it
        with pieces made by the same helpers as ``_build``.
        """
        structure = f"{arch.to_str()}->{num_classes}"
        key = part_key(self.name, structure, input_shape)
        return [Part(key, input_shape, lambda: self._build(arch, input_shape, num_classes))]

    def sample(self, rng: np.random.Generator) -> A:
        """A random architecture of the search space (uniform over the encoding)."""
        return self.decode([d.sample(rng) for d in self.dimensions()])

    def reference(self) -> A:
        """A sensible default architecture: the ``medium`` reference."""
        return self.references()["medium"]

    def build(self, arch: A, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        """Build a torch module for ``arch``.

        Args:
            arch: an architecture of this family (need not be inside the search space).
            input_shape: (channels, height, width) of one input image.
            num_classes: outputs of the final linear classifier.

        Returns:
            A module mapping (N, C, H, W) float tensors to (N, num_classes) logits.
        """
        self.check_arch(arch)
        _check_build_args(input_shape, num_classes)
        return self._build(arch, tuple(int(v) for v in input_shape), int(num_classes))

    def parts(self, arch: A, input_shape: tuple[int, int, int], num_classes: int) -> list[Part]:
        """The network of ``arch`` as an ordered list of independent pieces.

        Describing each piece on its ``in_shape`` and renaming the layers with
        :meth:`Part.layer_name` gives the layers of ``build(arch, ...)``, in order.

        Args:
            arch: an architecture of this family (need not be inside the search space).
            input_shape: (channels, height, width) of one input image.
            num_classes: outputs of the final linear classifier.
        """
        self.check_arch(arch)
        _check_build_args(input_shape, num_classes)
        return self._parts(arch, tuple(int(v) for v in input_shape), int(num_classes))

    def check_arch(self, arch: Any) -> None:
        """Raise an :class:`ArchitectureError` unless ``arch`` belongs to this family."""
        if not isinstance(arch, self.arch_type):
            raise ArchitectureError(
                f"the {self.name} family expects a {self.arch_type.__name__}, "
                f"got {type(arch).__name__} {arch!r}"
            )


_FAMILIES: dict[str, NetworkFamily[Any]] = {}


def _check_build_args(input_shape: Sequence[int], num_classes: int) -> None:
    shape_ok = len(input_shape) == 3 and all(_positive_int(v) for v in input_shape)
    if not shape_ok:
        raise ArchitectureError(
            f"input_shape must be (channels, height, width) of positive integers, "
            f"got {tuple(input_shape)!r}"
        )
    if not _positive_int(num_classes):
        raise ArchitectureError(f"num_classes must be a positive integer, got {num_classes!r}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def register_network(family: NetworkFamily[Any]) -> NetworkFamily[Any]:
    """Register a family instance under its ``name`` and return it.

    Raises:
        ArchitectureError: another family already has that name.
    """
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ArchitectureError(f"a network family named {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def list_networks() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_FAMILIES)


def get_family(name: str) -> NetworkFamily[Any]:
    """The family registered as ``name``.

    Raises:
        ArchitectureError: no such family; the message lists the known ones.
    """
    try:
        return _FAMILIES[name]
    except KeyError:
        known = ", ".join(list_networks()) or "(none registered)"
        raise ArchitectureError(
            f"unknown network family {name!r}; known families: {known}"
        ) from None


def parse_arch(s: str) -> Arch:
    """Parse an architecture string, with or without a ``family:`` prefix.

    Without a prefix, the family whose grammar parses the string is used.

    Args:
        s: e.g. ``"bn-c16k3p-c32k5p-fc64"`` or ``"mbconv:stem16-m16k3e1-head128"``.

    Raises:
        ArchitectureError: unknown prefix, or no family parses the string; the message
            gives each family's reason and an example of its grammar.
    """
    if not isinstance(s, str):
        raise ArchitectureError(f"an architecture string is expected, got {type(s).__name__}")
    s = s.strip()
    if ":" in s:
        prefix, rest = s.split(":", 1)
        return get_family(prefix.strip()).from_str(rest.strip())
    parsed, reasons = [], []
    for name in list_networks():
        try:
            parsed.append(_FAMILIES[name].from_str(s))
        except ArchitectureError as exc:
            reasons.append(f"{name}: {exc}")
    if len(parsed) == 1:
        return parsed[0]
    if parsed:
        names = ", ".join(a.family for a in parsed)
        raise ArchitectureError(f"architecture {s!r} is ambiguous ({names}); add a family: prefix")
    raise ArchitectureError(f"cannot parse architecture {s!r}: " + "; ".join(reasons))


def create_network(
    arch: str | Arch, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    """Build the torch module of an architecture (string or Arch).

    Args:
        arch: an architecture string (see :func:`parse_arch`) or an Arch object.
        input_shape: (channels, height, width) of one input image.
        num_classes: number of output logits.

    Returns:
        A module mapping (N, C, H, W) float tensors to (N, num_classes) logits.
    """
    family, arch = _resolve(arch)
    return family.build(arch, input_shape, num_classes)


def network_parts(
    arch: str | Arch, input_shape: tuple[int, int, int], num_classes: int
) -> list[Part]:
    """The pieces of an architecture's network (string or Arch); see :meth:`NetworkFamily.parts`.

    Args:
        arch: an architecture string (see :func:`parse_arch`) or an Arch object.
        input_shape: (channels, height, width) of one input image.
        num_classes: number of output logits.
    """
    family, arch = _resolve(arch)
    return family.parts(arch, input_shape, num_classes)


def _resolve(arch: str | Arch) -> tuple[NetworkFamily[Any], Arch]:
    if isinstance(arch, str):
        arch = parse_arch(arch)
    family_name = getattr(arch, "family", None)
    if not isinstance(family_name, str):
        raise ArchitectureError(f"not an architecture: {arch!r}; pass a string or an Arch")
    return get_family(family_name), arch
