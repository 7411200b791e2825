"""``energy_models.predict``: the predicted latency, power and energy of any torch module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from energy_models.features import LayerTable
from energy_models.layers import LayerDescriptor, describe_network
from energy_models.memory import MemoryEstimate, memory_estimate
from energy_models.predictor import EnergyPredictor


@dataclass(frozen=True)
class LayerEstimate:
    """One layer's share: module path, model kind, latency (ms), power (W), energy (mJ)."""

    name: str
    kind: str
    latency_ms: float
    power_w: float
    energy_mj: float


@dataclass(frozen=True)
class EnergyEstimate:
    """Predicted cost of one batch-1 inference on the predictor's device and runtime.

    Attributes:
        latency_ms: predicted wall time of one inference.
        power_w: mean power over it.
        energy_mj: device energy of one inference, millijoules.
        layers: per-layer breakdown (before the network-level overhead terms).
        overhead_ms: the runtime's fitted per-call and per-inference overhead.
        memory: weights and peak activations.
        source: what the figures are and where they come from.
        estimated: True when the predictor's power is a declared model (not measured).
    """

    latency_ms: float
    power_w: float
    energy_mj: float
    layers: tuple[LayerEstimate, ...]
    overhead_ms: float
    memory: MemoryEstimate
    source: str
    estimated: bool

    @property
    def energy_label(self) -> str:
        return "estimated" if self.estimated else "predicted from measured power"

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "power_w": self.power_w,
            "energy_mj": self.energy_mj,
            "energy_label": self.energy_label,
            "overhead_ms": self.overhead_ms,
            "memory": self.memory.to_dict(),
            "source": self.source,
            "estimated": self.estimated,
            "layers": [vars(layer) for layer in self.layers],
        }


def estimate_layers(
    layers: Sequence[LayerDescriptor],
    input_shape: Sequence[int],
    predictor: EnergyPredictor,
    params: int | None = None,
) -> EnergyEstimate:
    """Predict a network given its layer descriptors."""
    table = LayerTable.from_networks([layers])
    prediction = predictor.predict_table(table)
    rows = prediction.rows if prediction.rows is not None else table  # kernels, if fused
    layer_energy = prediction.layer_latency_ms * prediction.layer_power_w
    return EnergyEstimate(
        latency_ms=float(prediction.latency_ms[0]),
        power_w=float(prediction.power_w[0]),
        energy_mj=float(prediction.energy_mj[0]),
        layers=tuple(
            LayerEstimate(
                name=rows.names[i],
                kind=str(rows.kinds[i]),
                latency_ms=float(prediction.layer_latency_ms[i]),
                power_w=float(prediction.layer_power_w[i]),
                energy_mj=float(layer_energy[i]),
            )
            for i in range(len(rows))
        ),
        overhead_ms=float(prediction.overhead_ms[0]),
        memory=memory_estimate(layers, input_shape, params),
        source=predictor.source,
        estimated=predictor.estimated,
    )


def predict(
    module: nn.Module, input_shape: Sequence[int], predictor: EnergyPredictor
) -> EnergyEstimate:
    """Predicted latency, power and energy of ``module`` at batch 1.

    Works for any module built from supported layers (see
    :data:`energy_models.SUPPORTED_KINDS`), not only the registry's families.

    Args:
        module: the network.
        input_shape: one input without the batch dimension, e.g. (1, 28, 28).
        predictor: a fitted predictor (:meth:`EnergyPredictor.load`).

    Raises:
        UnsupportedLayerError: a layer type is not supported.
        EnergyModelError: the predictor has no model for one of the layer kinds.
    """
    layers = describe_network(module, input_shape)
    params = sum(p.numel() for p in module.parameters())
    return estimate_layers(layers, input_shape, predictor, params)
