"""Energy ratios at iso-accuracy (pure arithmetic of the ``adaptive`` experiment).

A system is *at iso-accuracy* when its test accuracy is within ``tolerance_points``
percentage points of the reference accuracy (the best single network's test accuracy);
energy ratios are only reported between systems that both are. The best black-box design
is the cheapest big/little pair at iso-accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EPS = 1e-12  # accuracy is a ratio of image counts: guard only against float rounding


@dataclass(frozen=True)
class SystemPoint:
    """One system on the energy-accuracy plane.

    Attributes:
        name: its label (``single large``, ``big/little small/large``, ``acnn 2 stages``).
        kind: ``single``, ``big-little``, ``acnn``, ``cloud``, ``local+cloud`` or ``oracle``.
        energy_mj: device energy per image in mJ (predicted: an estimate).
        accuracy: test accuracy in [0, 1].
    """

    name: str
    kind: str
    energy_mj: float
    accuracy: float


def at_iso(point: SystemPoint, reference_accuracy: float, tolerance_points: float) -> bool:
    """Test accuracy no more than ``tolerance_points`` points below the reference."""
    return point.accuracy >= reference_accuracy - tolerance_points / 100 - EPS


def cheapest_at_iso(
    points: Iterable[SystemPoint], reference_accuracy: float, tolerance_points: float
) -> SystemPoint | None:
    """The least-energy point at iso-accuracy (ties: the more accurate), or None."""
    eligible = [p for p in points if at_iso(p, reference_accuracy, tolerance_points)]
    if not eligible:
        return None
    return min(eligible, key=lambda p: (p.energy_mj, -p.accuracy, p.name))


def energy_ratio(
    baseline: SystemPoint | None,
    system: SystemPoint,
    reference_accuracy: float,
    tolerance_points: float,
) -> float | None:
    """``baseline.energy / system.energy`` when both are at iso-accuracy, else None.

    A ratio above 1 means ``system`` needs that many times less energy per image.
    """
    if baseline is None or system.energy_mj <= 0:
        return None
    if not (
        at_iso(baseline, reference_accuracy, tolerance_points)
        and at_iso(system, reference_accuracy, tolerance_points)
    ):
        return None
    return baseline.energy_mj / system.energy_mj


def best_reduction(
    designs: Iterable[SystemPoint],
    baselines: Iterable[SystemPoint],
    reference_accuracy: float,
    tolerance_points: float,
) -> tuple[float | None, SystemPoint | None, SystemPoint | None]:
    """The largest energy reduction of any design over the best baseline at iso-accuracy.

    Returns:
        (ratio, design, baseline); the ratio is None when no design or no baseline is at
        iso-accuracy.
    """
    baseline = cheapest_at_iso(baselines, reference_accuracy, tolerance_points)
    best: tuple[float | None, SystemPoint | None] = (None, None)
    for design in designs:
        ratio = energy_ratio(baseline, design, reference_accuracy, tolerance_points)
        if ratio is not None and (best[0] is None or ratio > best[0]):
            best = (ratio, design)
    return best[0], best[1], baseline
