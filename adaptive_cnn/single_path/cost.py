"""The supernet's differentiable predicted energy, from the project's layer-wise predictor.

The predictor's network energy is a sum over layers plus a per-inference overhead
(:mod:`energy_models.predictor`: each layer's in-network share times its power, plus its
per-call cost, plus a fixed term), so it splits exactly into pieces: the fixed part (stem,
head, pooling, classifier, per-inference overhead) and one term per slot. For each slot
the energies of its 8 discrete layers (kernel 3/5 x expansion 3/6 x SE off/on) and of
its skip (the identity module the registry builds, which the predictor also charges) are
predicted once from the plain modules' layer descriptors. The expected energy

    E = fixed + sum_slots [keep * sum_corners E_c * prod_j (i_j or 1 - i_j) + (1 - keep) * E_skip]

(i_j the k5, e6 and SE indicators) is multilinear in the indicators, hence differentiable,
and equals the predictor's energy of the derived network at every corner.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from adaptive_cnn.networks import describe_arch
from adaptive_cnn.networks.mbconv import HEAD, STEM, MBConvArch, MBLayer, scaled_channels, slots
from adaptive_cnn.single_path.superkernel import EXPANSIONS, KERNELS
from adaptive_cnn.single_path.supernet import SinglePathSupernet
from energy_models.features import LayerTable
from energy_models.layers import LayerDescriptor
from energy_models.predictor import EnergyPredictor

CORNERS = tuple(itertools.product((0, 1), repeat=3))  # (k5, e6, se) indicator values


@dataclass(frozen=True)
class SupernetCosts:
    """Predicted energy (mJ per image) of every choice of a supernet's slots.

    Attributes:
        fixed_mj: stem, head, pooling, classifier and the per-inference overhead.
        corners_mj: per slot, shape (slots, 2, 2, 2): energy of the layer with kernel
            ``KERNELS[a]``, expansion ``EXPANSIONS[b]`` and SE ``bool(c)`` at ``[i, a, b, c]``.
        skip_mj: per slot, the energy of the skip (identity) that replaces it.
        skippable: per slot, whether it may be skipped.
        estimated: the predictor's power is a declared model, not a measurement.
    """

    fixed_mj: float
    corners_mj: np.ndarray
    skip_mj: tuple[float, ...]
    skippable: tuple[bool, ...]
    estimated: bool

    def energy_mj(self, arch: MBConvArch) -> float:
        """The predicted energy of a discrete architecture of this supernet's width."""
        total = self.fixed_mj
        for i, layer in enumerate(arch.layers):
            if layer is None:
                total += self.skip_mj[i]
                continue
            a, b = KERNELS.index(layer.kernel), EXPANSIONS.index(layer.expansion)
            total += float(self.corners_mj[i, a, b, int(layer.se)])
        return total

    def expected_energy_mj(self, supernet: SinglePathSupernet) -> torch.Tensor:
        """The differentiable energy at the supernet's current indicators (scalar, mJ)."""
        total = torch.tensor(self.fixed_mj, dtype=torch.float64)
        for i, block in enumerate(supernet.blocks):
            ind = block.indicators()
            pairs = [(1.0 - v, v) for v in (ind.k5, ind.e6, ind.se)]
            layer = sum(
                float(self.corners_mj[i, a, b, c]) * pairs[0][a] * pairs[1][b] * pairs[2][c]
                for a, b, c in CORNERS
            )
            total = total + ind.keep * layer + (1.0 - ind.keep) * self.skip_mj[i]
        return total.to(torch.float32)

    def cheapest_mj(self) -> float:
        """The energy of the cheapest network of the supernet."""
        total = self.fixed_mj
        for i, skippable in enumerate(self.skippable):
            cheapest = float(self.corners_mj[i].min())
            total += min(cheapest, self.skip_mj[i]) if skippable else cheapest
        return total


def _uniform_arch(width: float, kernel: int, expansion: int, se: bool, skip: bool) -> MBConvArch:
    layers = tuple(
        None
        if skip and not slot.first
        else MBLayer(slot.channels, kernel, expansion, slot.stride, se)
        for slot in slots(width)
    )
    return MBConvArch(scaled_channels(STEM, width), layers, scaled_channels(HEAD, width))


def _pieces(layers: tuple[LayerDescriptor, ...], n_slots: int) -> list[list[LayerDescriptor]]:
    """The layers split into [fixed, slot 0, ..., slot n-1] by module path."""
    pieces: list[list[LayerDescriptor]] = [[] for _ in range(n_slots + 1)]
    for layer in layers:
        head, _, rest = layer.name.partition(".")
        index = int(rest.split(".")[0]) + 1 if head == "blocks" else 0
        pieces[index].append(layer)
    return pieces


def _piece_energies(
    archs: list[MBConvArch],
    input_shape: tuple[int, int, int],
    num_classes: int,
    predictor: EnergyPredictor,
) -> np.ndarray:
    """Per architecture, the energy of [fixed, slot 0, ...] without the per-inference term."""
    n_slots = len(archs[0].layers)
    groups = [
        piece
        for arch in archs
        for piece in _pieces(describe_arch(arch, input_shape, num_classes), n_slots)
    ]
    nonempty = [g for g in groups if g]
    energies = predictor.predict_table(LayerTable.from_networks(nonempty)).energy_mj
    net = predictor.network
    per_piece = iter(energies - net.overhead_ms * net.overhead_power_w)
    flat = np.asarray([next(per_piece) if g else 0.0 for g in groups])
    return flat.reshape(len(archs), n_slots + 1)


def supernet_costs(
    predictor: EnergyPredictor,
    input_shape: tuple[int, int, int],
    num_classes: int,
    width: float,
) -> SupernetCosts:
    """Predict every choice of every slot of the supernet at ``width``.

    Args:
        predictor: the device's layer-wise energy predictor.
        input_shape: (channels, height, width) of one image.
        num_classes: classifier outputs.
        width: width multiplier of the supernet.

    Raises:
        EnergyModelError: the predictor has no model for a layer kind the layers use.
    """
    corners = [
        _uniform_arch(width, KERNELS[a], EXPANSIONS[b], bool(c), skip=False) for a, b, c in CORNERS
    ]
    skipped = _uniform_arch(width, KERNELS[0], EXPANSIONS[0], False, skip=True)
    energies = _piece_energies([*corners, skipped], input_shape, num_classes, predictor)
    net = predictor.network
    fixed = float(energies[0, 0]) + net.overhead_ms * net.overhead_power_w
    corner_mj = energies[: len(CORNERS), 1:].T.reshape(-1, 2, 2, 2)
    skippable = tuple(not slot.first for slot in slots(width))
    skip_mj = tuple(
        float(e) if s else 0.0 for e, s in zip(energies[-1, 1:], skippable, strict=True)
    )
    return SupernetCosts(fixed, corner_mj, skip_mj, skippable, predictor.estimated)
