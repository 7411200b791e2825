"""Cost of an architecture (parameters, MACs, peak activations) from its built module."""

from __future__ import annotations

from adaptive_cnn.networks.registry import Arch, create_network
from energy_models import NetworkCost, network_cost


def arch_cost(arch: str | Arch, input_shape: tuple[int, int, int], num_classes: int) -> NetworkCost:
    """Build ``arch`` and measure it with :func:`energy_models.network_cost`.

    Args:
        arch: an architecture string or Arch object.
        input_shape: (channels, height, width) of one input image.
        num_classes: number of output logits.

    Returns:
        Parameters, MACs per image and peak activation bytes (fp32, batch 1).
    """
    return network_cost(create_network(arch, input_shape, num_classes), input_shape)
