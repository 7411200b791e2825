"""Fit a found network into its budget by dropping the weakest choices.

A search ends with hard indicators, and the network they select may lie over the budget:
under the ``budget`` cost form the energy term is zero below the budget, so the search
hovers at it and ends on either side. Rather than run another search, the choices that
are on are turned off one at a time (a 5x5 ring to 3x3, an expansion-6 half to 3, SE off,
a layer skipped) until the predicted energy fits. Each step drops, of the choices whose
removal alone makes the network fit, the one with the smallest lead of its weight group
over its threshold; when none does, the one with the smallest lead per mJ it saves. The
lead is the indicator's own measure of how much the search wanted the choice, so the
weakest choices go first, and a slight excess costs a small choice, not a whole layer.
Pure logic over architectures and leads; :func:`~.search.run_search` applies the result
to the supernet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from adaptive_cnn.networks.mbconv import MBConvArch
from adaptive_cnn.single_path.lambda_search import ENERGY_TOLERANCE, SinglePathError

CHOICES = ("k5", "e6", "se", "keep")  # the indicators a drop can turn off


def is_on(arch: MBConvArch, slot: int, choice: str) -> bool:
    """The choice is on in ``arch`` (``keep``: the layer is there, not skipped)."""
    layer = arch.layers[slot]
    if layer is None:
        return False
    return {"k5": layer.kernel == 5, "e6": layer.expansion == 6, "se": layer.se}.get(choice, True)


def drop(arch: MBConvArch, slot: int, choice: str) -> MBConvArch:
    """``arch`` with one choice of one slot turned off."""
    layer = arch.layers[slot]
    if layer is None or choice not in CHOICES:
        raise ValueError(f"cannot drop {choice!r} of slot {slot}")
    changed = {
        "k5": lambda: dataclasses.replace(layer, kernel=3),
        "e6": lambda: dataclasses.replace(layer, expansion=3),
        "se": lambda: dataclasses.replace(layer, se=False),
        "keep": lambda: None,
    }[choice]()
    layers = (*arch.layers[:slot], changed, *arch.layers[slot + 1 :])
    return dataclasses.replace(arch, layers=layers)


def fit_to_budget(
    arch: MBConvArch,
    leads: Mapping[tuple[int, str], float],
    energy_mj: Callable[[MBConvArch], float],
    budget_mj: float,
) -> tuple[MBConvArch, tuple[tuple[int, str], ...]]:
    """The architecture within ``budget_mj`` reached by dropping the weakest choices.

    Args:
        arch: the searched architecture.
        leads: per (slot, choice) that may be dropped, its weight group's size minus its
            threshold (how far the indicator is on); a choice absent here is never dropped
            (a forced one, or a layer that cannot be skipped).
        energy_mj: predicted energy per image of an architecture.
        budget_mj: the energy budget, mJ per image.

    Returns:
        The fitted architecture and the (slot, choice) pairs dropped, in order (none when
        ``arch`` already fits).

    Raises:
        SinglePathError: dropping every droppable choice still does not fit the budget.
    """
    dropped: list[tuple[int, str]] = []
    current = energy_mj(arch)
    while current > budget_mj * (1.0 + ENERGY_TOLERANCE):
        options = []  # (fits after this drop?, rank, slot, choice, smaller architecture)
        for (slot, choice), lead in sorted(leads.items()):
            if not is_on(arch, slot, choice):
                continue
            smaller = drop(arch, slot, choice)
            left = energy_mj(smaller)
            if left < current:
                fits = left <= budget_mj * (1.0 + ENERGY_TOLERANCE)
                rank = max(lead, 0.0) if fits else max(lead, 0.0) / (current - left)
                options.append((not fits, rank, slot, choice, smaller))
        if not options:
            raise SinglePathError(
                f"the found network cannot be fitted into the {budget_mj:g} mJ budget "
                f"(it needs {current:.3g} mJ with every droppable choice off)"
            )
        _, _, slot, choice, arch = min(options, key=lambda o: o[:4])
        dropped.append((slot, choice))
        current = energy_mj(arch)
    return arch, tuple(dropped)
