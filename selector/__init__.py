"""Selection schemes of adaptive cascades (pure numpy).

Today: the confidence metrics a cascade stage exits on. Cascade evaluation, threshold
optimisation, the oracle bound and the runtime exit policy build on these.
"""

from selector.confidence import (
    DEFAULT_METRIC,
    METRICS,
    confidence,
    max_probability,
    negative_entropy,
    score_margin,
)
from selector.errors import SelectorError

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "SelectorError",
    "confidence",
    "max_probability",
    "negative_entropy",
    "score_margin",
]
