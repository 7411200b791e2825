"""Energy models of acnn: layer descriptors, layer-wise predictors, memory and
communication models, device profiles, power sources and the profiler.

The public API is re-exported here; :mod:`energy_models.profiler` (timing) and
:mod:`energy_models.fitting` (scikit-learn) are imported where they are used.
"""

from energy_models.communication import NO_LINK, LinkModel
from energy_models.devices import DeviceProfile, list_devices, load_device, load_links
from energy_models.errors import EnergyModelError, UnsupportedLayerError
from energy_models.estimate import EnergyEstimate, LayerEstimate, estimate_layers, predict
from energy_models.features import LayerTable
from energy_models.layers import (
    SUPPORTED_KINDS,
    LayerDescriptor,
    NetworkCost,
    describe_network,
    network_cost,
)
from energy_models.memory import MemoryEstimate, memory_estimate
from energy_models.ops import Add, Mul
from energy_models.power import PowerReading, PowerSource, make_power_source
from energy_models.predictor import EnergyPredictor, TablePrediction

__all__ = [
    "NO_LINK",
    "SUPPORTED_KINDS",
    "Add",
    "DeviceProfile",
    "EnergyEstimate",
    "EnergyModelError",
    "EnergyPredictor",
    "LayerDescriptor",
    "LayerEstimate",
    "LayerTable",
    "LinkModel",
    "MemoryEstimate",
    "Mul",
    "NetworkCost",
    "PowerReading",
    "PowerSource",
    "TablePrediction",
    "UnsupportedLayerError",
    "describe_network",
    "estimate_layers",
    "list_devices",
    "load_device",
    "load_links",
    "make_power_source",
    "memory_estimate",
    "network_cost",
    "predict",
]
