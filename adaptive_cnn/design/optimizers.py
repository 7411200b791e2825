"""Optimiser backends behind one ask/tell protocol.

:class:`GaussianProcessBackend` keeps scikit-optimize's Gaussian process and space
transforms, but optimises the expected-improvement acquisition itself over a seeded sample
of candidates that passed the a-priori screen (HyperPower): a candidate predicted to
violate a constraint is never proposed, so it is never trained. Without a screen it is
constraint-unaware BO. :class:`RandomBackend` is random search.

``ask(step, pending)`` proposes the point of ask number ``step`` while ``pending`` points
are still being evaluated (parallel workers). The Gaussian process then uses the
constant-liar strategy: each pending point is told the best loss seen so far, the model is
refitted, and the acquisition moves away from work already in flight. Every random draw is
seeded by (seed, step), so a sequential search proposes the same points after a resume.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
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

    def ask(self, step: int, pending: Sequence[list[Any]] = ()) -> list[Any]: ...

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

    def ask(self, step: int, pending: Sequence[list[Any]] = ()) -> list[Any]:
        points = _draw(self.space, np.random.default_rng([self.seed, step]), self.screen, 1)
        if not points:
            raise NoFeasibleCandidate(f"{MAX_DRAWS} random draws")
        return points[0]

    def tell(self, point: list[Any], loss: float) -> None:
        pass


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

    def ask(self, step: int, pending: Sequence[list[Any]] = ()) -> list[Any]:
        rng = np.random.default_rng([self.seed, step])
        if step < self.initial_points or not self._opt.models:
            points = _draw(self.space, rng, self.screen, 1)
        else:
            drawn = _draw(self.space, rng, self.screen, self.candidates)
            points = self._best_by_acquisition(drawn, pending)
        if not points:
            raise NoFeasibleCandidate(f"{MAX_DRAWS} random draws")
        return points[0]

    def _best_by_acquisition(
        self, points: list[list[Any]], pending: Sequence[list[Any]]
    ) -> list[list[Any]]:
        from skopt.acquisition import gaussian_ei

        if not points:
            return []
        y_opt = float(np.min(self._opt.yi))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = self._model_with_lies(pending, y_opt)
            ei = gaussian_ei(self._opt.space.transform(points), model, y_opt=y_opt)
        return [points[int(np.argmax(ei))]]

    def _model_with_lies(self, pending: Sequence[list[Any]], lie: float) -> Any:
        """The GP refitted as if every pending point had scored ``lie`` (constant liar)."""
        if not pending:
            return self._opt.models[-1]
        liar = self._opt.copy(random_state=self.seed)
        liar.tell([list(p) for p in pending], [lie] * len(pending))
        return liar.models[-1]

    def tell(self, point: list[Any], loss: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skopt warns about repeated points
            self._opt.tell(list(point), float(loss))
