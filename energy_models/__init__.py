"""Energy models of acnn: layer descriptors and network cost (pure, no I/O)."""

from energy_models.errors import EnergyModelError, UnsupportedLayerError
from energy_models.layers import (
    SUPPORTED_KINDS,
    LayerDescriptor,
    NetworkCost,
    describe_network,
    network_cost,
)
from energy_models.ops import Add

__all__ = [
    "SUPPORTED_KINDS",
    "Add",
    "EnergyModelError",
    "LayerDescriptor",
    "NetworkCost",
    "UnsupportedLayerError",
    "describe_network",
    "network_cost",
]
