"""The runtime exit rule the on-device client applies stage by stage."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector.confidence import DEFAULT_METRIC, METRICS, confidence
from selector.errors import SelectorError

_FIELDS = ("thresholds", "metric")


@dataclass(frozen=True)
class ExitPolicy:
    """Exit at the first stage whose confidence reaches its threshold.

    Stages are numbered from 0; a policy for S stages holds S-1 thresholds and the last
    stage always answers. Applied stage by stage to the probabilities a cascade was
    evaluated on, it makes the same exits as :func:`selector.evaluate`.

    Attributes:
        thresholds: one threshold per non-final stage; ``inf`` never exits there.
        metric: confidence metric, a key of :data:`selector.METRICS`.
    """

    thresholds: tuple[float, ...]
    metric: str = DEFAULT_METRIC

    def __post_init__(self) -> None:
        try:
            values = tuple(float(t) for t in self.thresholds)
        except (TypeError, ValueError):
            raise SelectorError("thresholds must be a sequence of numbers") from None
        if any(math.isnan(t) for t in values):
            raise SelectorError("thresholds must not be NaN")
        if not isinstance(self.metric, str) or self.metric not in METRICS:
            raise SelectorError(
                f"unknown confidence metric {self.metric!r}; known: {', '.join(METRICS)}"
            )
        object.__setattr__(self, "thresholds", values)

    @property
    def n_stages(self) -> int:
        """Number of stages S the policy drives."""
        return len(self.thresholds) + 1

    def should_exit(self, stage: int, probs: np.ndarray) -> np.ndarray:
        """Whether each image of a batch stops at ``stage``.

        Args:
            stage: 0-based stage index in ``[0, S)``.
            probs: (B, K) class probabilities the stage produced.

        Returns:
            (B,) bool; all True at the last stage.
        """
        return self.exits_from_scores(stage, confidence(probs, self.metric))

    def exits_from_scores(self, stage: int, scores: np.ndarray) -> np.ndarray:
        """:meth:`should_exit` on confidences already computed with ``self.metric``.

        Args:
            stage: 0-based stage index in ``[0, S)``.
            scores: (B,) confidences of the stage's images.

        Returns:
            (B,) bool; all True at the last stage.
        """
        if not 0 <= stage < self.n_stages:
            raise SelectorError(f"stage must lie in [0, {self.n_stages}), got {stage}")
        if stage == self.n_stages - 1:
            return np.ones(np.shape(scores)[0], dtype=bool)
        return np.asarray(scores) >= self.thresholds[stage]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values; ``from_dict(to_dict())`` gives an equal policy."""
        return {"thresholds": list(self.thresholds), "metric": self.metric}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExitPolicy:
        """Policy from :meth:`to_dict` output; unknown or missing keys are errors."""
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise SelectorError(
                f"unknown exit-policy key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}"
            )
        if "thresholds" not in d:
            raise SelectorError("exit policy needs 'thresholds'")
        thresholds = d["thresholds"]
        if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__iter__"):
            raise SelectorError("thresholds must be a sequence of numbers")
        return cls(thresholds=tuple(thresholds), metric=d.get("metric", DEFAULT_METRIC))
