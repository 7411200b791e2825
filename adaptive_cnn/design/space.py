"""The cascade search space: every local stage's architecture, and (joint mode) thresholds.

A point is a flat list: the dimensions of stage 1's family, then stage 2's, ... and, in
joint mode, one threshold per stage that can pass images on. Dimension names are prefixed
with the stage (``s1.filters_1``), so the optimiser sees one space.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_cnn.networks import get_family
from adaptive_cnn.networks.dimensions import Real

THRESHOLD_RANGE = (0.0, 1.0)  # score margin and max-probability live in [0, 1]


@dataclass(frozen=True)
class Candidate:
    """One design: the local stages' architecture strings and (joint) thresholds."""

    stages: tuple[str, ...]
    thresholds: tuple[float, ...] | None

    def key(self) -> str:
        thresholds = "" if self.thresholds is None else repr(tuple(self.thresholds))
        return " | ".join(self.stages) + thresholds


class CascadeSpace:
    """Encode and decode cascades for the optimiser.

    Args:
        families: family name of each searched local stage.
        thresholds: number of threshold dimensions (0 in inner mode).
        fixed: ``family:arch`` strings of local stages that follow the searched ones and
            are not searched (``--last-stage``); every candidate ends with them.
    """

    def __init__(self, families: Sequence[str], thresholds: int, fixed: Sequence[str] = ()) -> None:
        self.families = tuple(families)
        self.fixed = tuple(fixed)
        self.n_thresholds = thresholds
        self._family_dims = [get_family(f).dimensions() for f in self.families]
        self._threshold_dims = tuple(
            Real(f"threshold_{i + 1}", *THRESHOLD_RANGE) for i in range(thresholds)
        )

    @property
    def dimensions(self) -> list[Any]:
        """Every dimension, as the project's Integer/Real/Categorical objects."""
        dims = [d for per_stage in self._family_dims for d in per_stage]
        return dims + list(self._threshold_dims)

    def skopt_dimensions(self) -> list[Any]:
        """The same as scikit-optimize dimensions, names prefixed by stage."""
        out = []
        for stage, dims in enumerate(self._family_dims, start=1):
            for dim in dims:
                skopt_dim = dim.to_skopt()
                skopt_dim.name = f"s{stage}.{dim.name}"
                out.append(skopt_dim)
        return out + [d.to_skopt() for d in self._threshold_dims]

    def decode(self, point: Sequence[Any]) -> Candidate:
        """The candidate a point stands for (numpy scalars are made plain)."""
        point = [dim.canonical(v) for dim, v in zip(self.dimensions, point, strict=True)]
        stages, start = [], 0
        for name, dims in zip(self.families, self._family_dims, strict=True):
            family = get_family(name)
            arch = family.decode(point[start : start + len(dims)])
            stages.append(f"{name}:{arch.to_str()}")
            start += len(dims)
        thresholds = tuple(point[start:]) if self.n_thresholds else None
        return Candidate((*stages, *self.fixed), thresholds)

    def encode(self, stages: Sequence[str], thresholds: Sequence[float] | None = None) -> list:
        """The point of a cascade given by its stages' architecture strings.

        Args:
            stages: one ``family:arch`` string per local stage, families as the space's,
                ending with the fixed stages.
            thresholds: joint mode only; None puts every threshold mid-range.
        """
        searched = len(self.families)
        if tuple(stages[searched:]) != self.fixed:
            raise ValueError(f"the cascade must end with the fixed stages {self.fixed}")
        point: list[Any] = []
        for name, arch in zip(self.families, stages[:searched], strict=True):
            family_name, _, body = arch.partition(":")
            if family_name != name:
                raise ValueError(f"stage {arch!r} is not of the {name} family")
            family = get_family(name)
            point += family.encode(family.from_str(body))
        if self.n_thresholds:
            middle = sum(THRESHOLD_RANGE) / 2
            point += list(thresholds) if thresholds else [middle] * self.n_thresholds
        return self.canonical(point)

    def reference_cascades(self) -> list[list[Any]]:
        """Points of the hand-picked cascades: one reference network (small, medium,
        large) per searched stage, sizes increasing between consecutive stages of the same
        family and free across a change of family (an mlp's ``large`` may precede a conv's
        ``small``), none holding a fixed stage's network; then the fixed stages."""
        refs = [
            [f"{name}:{a.to_str()}" for a in get_family(name).references().values()]
            for name in self.families
        ]
        combos = itertools.product(*(range(len(r)) for r in refs))
        cascades = [
            [refs[s][i] for s, i in enumerate(c)]
            for c in combos
            if all(
                c[s] < c[s + 1]
                for s in range(len(c) - 1)
                if self.families[s] == self.families[s + 1]
            )
        ]
        return [
            self.encode([*stages, *self.fixed])
            for stages in cascades
            if not set(stages) & set(self.fixed)
        ]

    def canonical(self, point: Sequence[Any]) -> list[Any]:
        """JSON-safe plain values of a point."""
        return [dim.canonical(v) for dim, v in zip(self.dimensions, point, strict=True)]

    def sample(self, rng: np.random.Generator) -> list[Any]:
        """A random point (each family's own sampler, thresholds uniform)."""
        point: list[Any] = []
        for name in self.families:
            family = get_family(name)
            point += family.encode(family.sample(rng))
        return point + [d.sample(rng) for d in self._threshold_dims]
