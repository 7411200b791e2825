"""Memory model of a network (HyperPower's memory constraint): weights plus activations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from energy_models.layers import LayerDescriptor

WEIGHT_BYTES = {"fp32": 4, "int8": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a network needs at batch 1.

    Attributes:
        params: number of parameters.
        weight_bytes_fp32: parameters stored as fp32.
        weight_bytes_int8: parameters stored as int8 (per-tensor scales ignored).
        peak_activation_bytes_fp32: the largest inputs + output of any one layer, fp32.
        peak_activation_bytes_int8: the same with int8 activations.
    """

    params: int
    weight_bytes_fp32: int
    weight_bytes_int8: int
    peak_activation_bytes_fp32: int
    peak_activation_bytes_int8: int

    def total_bytes(self, weights: str = "fp32") -> int:
        """Weights plus peak activations, both in ``weights``' precision."""
        if weights == "int8":
            return self.weight_bytes_int8 + self.peak_activation_bytes_int8
        return self.weight_bytes_fp32 + self.peak_activation_bytes_fp32

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "total_bytes_fp32": self.total_bytes("fp32"),
            "total_bytes_int8": self.total_bytes("int8"),
        }


def memory_estimate(
    layers: Sequence[LayerDescriptor], input_shape: Sequence[int], params: int | None = None
) -> MemoryEstimate:
    """Memory of the network made of ``layers``.

    Peak activations count the inputs and output of one layer alive together; a residual
    branch's saved input is counted where the branches meet (the ``add`` layer's two
    inputs), which is the usual layer-wise approximation.

    Args:
        layers: the network's descriptors.
        input_shape: one input without the batch dimension.
        params: total parameters when known (else the sum over the layers).
    """
    n_params = sum(layer.params for layer in layers) if params is None else params
    elements = max(
        (layer.n_inputs * math.prod(layer.in_shape) + layer.elements for layer in layers),
        default=math.prod(input_shape),
    )
    return MemoryEstimate(
        params=n_params,
        weight_bytes_fp32=n_params * WEIGHT_BYTES["fp32"],
        weight_bytes_int8=n_params * WEIGHT_BYTES["int8"],
        peak_activation_bytes_fp32=elements * 4,
        peak_activation_bytes_int8=elements,
    )
