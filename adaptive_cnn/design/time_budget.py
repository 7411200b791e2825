"""How long the rest of a design run will take, so that ``--time-limit`` bounds it all.

The search trains every candidate with a small proxy budget; what can blow a time limit
is the final training afterwards, whose cost depends on which networks the search found
(one large second stage can take ten minutes on two cores where another design takes
one). Each network's final training is estimated from its own proxy training in this run,
scaled by the images it will see (subset × epochs) and by :data:`FULL_OVER_PROXY_PER_IMAGE`.
A network whose final training is already cached costs nothing; one never proxy-trained
here has no estimate (counted as 0, see :meth:`TimeEstimate.final_seconds`).

Pure logic: the clock is passed in, nothing is trained or read here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from adaptive_cnn.training import TrainConfig

# Per image, full-split trainings ran 1.2x slower than 4000-image proxy trainings of the
# same network (median of 96 pairs in a development cache on 2 cores; 10th-90th
# percentile 0.67-2.4x, the spread being other load on the machine). Rounded up.
FULL_OVER_PROXY_PER_IMAGE = 1.25


def images_seen(config: TrainConfig, train_images: int) -> float:
    """Training images one training with ``config`` processes (subset × epochs)."""
    subset = train_images if config.subset is None else min(config.subset, train_images)
    return subset * config.epochs


@dataclass(frozen=True)
class TimeEstimate:
    """Estimated final-training seconds of networks from their proxy trainings.

    Attributes:
        proxy_seconds: architecture -> wall seconds of its proxy training (this run's).
        scale: final seconds per proxy second (images ratio × per-image slow-down).
        is_final_trained: architecture -> whether its final training is already cached.
    """

    proxy_seconds: Mapping[str, float]
    scale: float
    is_final_trained: Callable[[str], bool]

    @classmethod
    def from_configs(
        cls,
        proxy_seconds: Mapping[str, float],
        proxy: TrainConfig,
        final: TrainConfig,
        train_images: int,
        is_final_trained: Callable[[str], bool],
    ) -> TimeEstimate:
        ratio = images_seen(final, train_images) / images_seen(proxy, train_images)
        return cls(dict(proxy_seconds), ratio * FULL_OVER_PROXY_PER_IMAGE, is_final_trained)

    def final_seconds(self, archs: Iterable[str]) -> float:
        """Estimated seconds to train the distinct ``archs`` with the final budget: 0 for
        cached ones and for ones never proxy-trained in this run (no basis to guess)."""
        return sum(
            self.proxy_seconds.get(a, 0.0) * self.scale
            for a in set(archs)
            if not self.is_final_trained(a)
        )


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock by which the run should be done (None: no limit)."""

    at: float | None
    clock: Callable[[], float]

    def left_s(self) -> float:
        """Seconds left (infinite without a limit; negative once passed)."""
        return math.inf if self.at is None else self.at - self.clock()

    def fits(self, seconds: float) -> bool:
        """Whether work estimated at ``seconds`` ends before the deadline."""
        return seconds <= self.left_s()
