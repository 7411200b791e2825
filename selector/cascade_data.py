"""What every stage of a cascade said about a held-out set: confidence and correctness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from selector.confidence import DEFAULT_METRIC, METRICS, confidence
from selector.errors import SelectorError


@dataclass(frozen=True)
class CascadeData:
    """Per-image outcomes of every stage on one held-out set (S stages, N images).

    Arrays are stored as read-only copies.

    Attributes:
        confidence: (S, N) float, stage ``s``'s confidence on image ``n``; larger means more
            confident. The last row is never compared with a threshold.
        correct: (S, N) bool, stage ``s``'s prediction of image ``n`` is right.
        metric: the confidence metric the rows were computed with (a key of
            :data:`selector.METRICS`), or None when confidences were given directly.
    """

    confidence: np.ndarray
    correct: np.ndarray
    metric: str | None = None

    def __post_init__(self) -> None:
        conf = np.array(self.confidence, dtype=np.float64)
        if conf.ndim != 2 or conf.shape[0] == 0 or conf.shape[1] == 0:
            raise SelectorError(
                f"confidence must have shape (S, N) with S, N >= 1, got {conf.shape}"
            )
        if not np.all(np.isfinite(conf)):
            raise SelectorError("confidence must be finite (no NaN or infinity)")
        correct = np.array(self.correct)
        if correct.shape != conf.shape or correct.dtype != np.bool_:
            raise SelectorError(
                f"correct must be a boolean array of shape {conf.shape}, "
                f"got {correct.dtype} {correct.shape}"
            )
        if self.metric is not None and self.metric not in METRICS:
            raise SelectorError(
                f"unknown confidence metric {self.metric!r}; known: {', '.join(METRICS)}"
            )
        conf.setflags(write=False)
        correct.setflags(write=False)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "correct", correct)

    @property
    def n_stages(self) -> int:
        """Number of stages S."""
        return int(self.confidence.shape[0])

    @property
    def n_images(self) -> int:
        """Number of images N."""
        return int(self.confidence.shape[1])

    @classmethod
    def from_probs(
        cls, probs: Sequence[np.ndarray], labels: np.ndarray, metric: str = DEFAULT_METRIC
    ) -> CascadeData:
        """Confidence and correctness of each stage from its class probabilities.

        Args:
            probs: one (N, K) array of class probabilities per stage, stage 0 first.
            labels: (N,) integer true classes in ``[0, K)``.
            metric: confidence metric, a key of :data:`selector.METRICS`.

        Returns:
            The (S, N) confidences and correctness; a prediction is the arg-max class.
        """
        labels = np.asarray(labels)
        stages = _check_probs(probs, labels)
        conf = np.stack([confidence(stage, metric) for stage in stages])
        correct = np.stack([stage.argmax(axis=1) == labels for stage in stages])
        return cls(confidence=conf, correct=correct, metric=metric)


def _check_probs(probs: Sequence[np.ndarray], labels: np.ndarray) -> list[np.ndarray]:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SelectorError(
            f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}"
        )
    stages = [np.asarray(p) for p in probs]
    if not stages or stages[0].ndim != 2:
        raise SelectorError("probs must hold one (N, K) array per stage")
    expected = (labels.shape[0], stages[0].shape[1])
    for s, stage in enumerate(stages):
        if stage.shape != expected:
            raise SelectorError(
                f"probs[{s}] has shape {stage.shape}, expected {expected} "
                "(N from labels, K from probs[0])"
            )
    n_classes = expected[1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise SelectorError(
            f"labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]"
        )
    return stages
