"""Layers and cost (parameters, MACs, peak activations) of an architecture.

:func:`describe_arch` gives the layer descriptors of an architecture's network without
building it: it describes each of the network's pieces (:meth:`NetworkFamily.parts`) with
:func:`energy_models.describe_network` once per piece key and reuses the result for every
later architecture sharing that piece. The descriptors still come from real torch modules.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import torch

from adaptive_cnn.errors import ArchitectureError
from adaptive_cnn.networks.registry import Arch, Part, network_parts
from energy_models import LayerDescriptor, NetworkCost, describe_network
from energy_models.layers import BYTES_PER_ELEMENT

PART_CACHE_SIZE = 16_384  # pieces; one takes about 1-5 kB, so the memo stays under ~80 MB


class _PartCache:
    """A bounded least-recently-used map from part keys to their descriptors.

    The lock guards the bookkeeping only; a piece is described outside it, so two threads
    may describe the same new piece once each, with equal results.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[LayerDescriptor, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[LayerDescriptor, ...] | None:
        with self._lock:
            layers = self._items.get(key)
            if layers is not None:
                self._items.move_to_end(key)
            return layers

    def put(self, key: str, layers: tuple[LayerDescriptor, ...]) -> None:
        with self._lock:
            self._items[key] = layers
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _PartCache(PART_CACHE_SIZE)


def clear_describe_cache() -> None:
    """Forget every memoised piece, e.g. to time :func:`describe_arch` from a cold start."""
    _CACHE.clear()


def _describe_part(part: Part) -> tuple[LayerDescriptor, ...]:
    layers = _CACHE.get(part.key)
    if layers is None:
        # Descriptors depend on structure and shapes only: skip weight initialisation (build
        # on the meta device, then allocate uninitialised) and compute nothing (empty batch).
        with torch.device("meta"):
            module = part.build()
        layers = describe_network(module.to_empty(device="cpu"), part.in_shape, batch=0)
        _CACHE.put(part.key, layers)
    return layers


def describe_arch(
    arch: str | Arch, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[LayerDescriptor, ...]:
    """The layer descriptors of an architecture's network, memoised per piece.

    Equal, names included, to ``describe_network(create_network(arch, ...), input_shape)``;
    a piece already seen (same key, see :class:`~adaptive_cnn.networks.registry.Part`) is
    not built again. The memo holds the last :data:`PART_CACHE_SIZE` pieces used.

    Args:
        arch: an architecture string (see :func:`parse_arch`) or an Arch object.
        input_shape: (channels, height, width) of one input image.
        num_classes: number of output logits.

    Returns:
        One descriptor per executed leaf layer, in execution order.

    Raises:
        ArchitectureError: bad architecture or arguments, or the family's pieces do not
            chain (a piece's input shape is not its predecessor's output shape).
        EnergyModelError: a piece's forward pass fails on its input shape.
    """
    layers: list[LayerDescriptor] = []
    for part in network_parts(arch, input_shape, num_classes):
        described = _describe_part(part)
        if layers and described and layers[-1].out_shape != part.in_shape:
            raise ArchitectureError(
                f"piece {part.key!r} of {arch} expects input shape {part.in_shape}, but the "
                f"piece before gives {layers[-1].out_shape}; the family's parts are wrong"
            )
        layers += [replace(layer, name=part.layer_name(layer.name)) for layer in described]
    return tuple(layers)


def arch_cost(arch: str | Arch, input_shape: tuple[int, int, int], num_classes: int) -> NetworkCost:
    """Parameters, MACs and peak activations of ``arch`` from :func:`describe_arch`.

    Equal to :func:`energy_models.network_cost` of the built network: the built-in families
    execute every parameterised module once, so the layers' parameters sum to the network's.

    Args:
        arch: an architecture string or Arch object.
        input_shape: (channels, height, width) of one input image.
        num_classes: number of output logits.

    Returns:
        Parameters, MACs per image and peak activation bytes (fp32, batch 1).
    """
    return _cost(describe_arch(arch, input_shape, num_classes), input_shape)


def _cost(layers: Sequence[LayerDescriptor], input_shape: Sequence[int]) -> NetworkCost:
    input_bytes = BYTES_PER_ELEMENT * math.prod(input_shape)
    return NetworkCost(
        params=sum(layer.params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        peak_activation_bytes=max(
            (layer.activation_bytes for layer in layers), default=input_bytes
        ),
    )
