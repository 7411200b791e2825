"""Optimiser backends behind one ask/tell protocol.

:class:`GaussianProcessBackend` keeps scikit-optimize's Gaussian process and space
transforms, but optimises the expected-improvement acquisition itself over a seeded sample
of candidates that passed the a-priori screen (HyperPower): a candidate predicted to
violate a constraint is never proposed, so it is never trained. Without a screen it is
constraint-unaware BO. :class:`RandomBackend` is random search.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from adaptive_cnn.design.space import CascadeSpace
from adaptive_cnn.errors import AcnnError

Screen = Callable[[list[Any]], bool]
MAX_DRAWS = 3_000


class NoFeasibleCandidate(AcnnError):
    """No candidate passes the a-priori screen (the budget is below every design)."""


class Backend(Protocol):
    """The optimiser protocol: propose a point, learn its loss (lower is better)."""

    def ask(self) -> list[Any]: ...

    def tell(self, point: list[Any], loss: float) -> None: ...


def _draw(space: CascadeSpace, rng: np.random.Generator, screen: Screen | None, n: int):
    """Up to ``n`` random points passing ``screen`` (every point when screen is None)."""
    points, draws = [], 0
    while len(points) < n and draws < MAX_DRAWS:
        draws += 1
        point = space.sample(rng)
        if screen is None or screen(point):
            points.append(point)
    return points


class RandomBackend:
    """Random search: uniform points of the space, optionally screened."""

    def __init__(self, space: CascadeSpace, seed: int, screen: Screen | None = None) -> None:
        self.space, self.seed, self.screen = space, seed, screen
        self.told = 0

    def ask(self) -> list[Any]:
        rng = np.random.default_rng([self.seed, self.told])
        points = _draw(self.space, rng, self.screen, 1)
        if not points:
            raise NoFeasibleCandidate(f"{MAX_DRAWS} random draws")
        return points[0]

    def tell(self, point: list[Any], loss: float) -> None:
        self.told += 1


class GaussianProcessBackend:
    """Bayesian optimisation with expected improvement over screened candidates.

    Args:
        space: the cascade space.
        seed: seed of every random draw (the draw of step k depends on (seed, k) only, so a
            resumed search proposes what the uninterrupted one would have).
        initial_points: random points before the Gaussian process leads.
        candidates: random candidates scored by the acquisition per step.
        screen: a-priori feasibility of a point; None = constraint-unaware.
    """

    def __init__(
        self,
        space: CascadeSpace,
        seed: int,
        initial_points: int,
        candidates: int,
        screen: Screen | None = None,
    ) -> None:
        from skopt import Optimizer

        self.space, self.seed, self.screen = space, seed, screen
        self.initial_points, self.candidates = initial_points, candidates
        self._opt = Optimizer(
            space.skopt_dimensions(),
            base_estimator="GP",
            n_initial_points=initial_points,
            acq_func="EI",
            random_state=seed,
        )

    @property
    def told(self) -> int:
        return len(self._opt.yi)

    def ask(self) -> list[Any]:
        rng = np.random.default_rng([self.seed, self.told])
        if self.told < self.initial_points or not self._opt.models:
            points = _draw(self.space, rng, self.screen, 1)
        else:
            points = self._best_by_acquisition(_draw(self.space, rng, self.screen, self.candidates))
        if not points:
            raise NoFeasibleCandidate(f"{MAX_DRAWS} random draws")
        return points[0]

    def _best_by_acquisition(self, points: list[list[Any]]) -> list[list[Any]]:
        from skopt.acquisition import gaussian_ei

        if not points:
            return []
        transformed = self._opt.space.transform(points)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ei = gaussian_ei(transformed, self._opt.models[-1], y_opt=float(np.min(self._opt.yi)))
        return [points[int(np.argmax(ei))]]

    def tell(self, point: list[Any], loss: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skopt warns about repeated points
            self._opt.tell(list(point), float(loss))
