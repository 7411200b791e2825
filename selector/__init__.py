"""Selection schemes of adaptive cascades (pure numpy, no I/O).

Confidence metrics a stage exits on; exact evaluation of a cascade under many threshold
vectors; threshold optimisation under energy, bytes and accuracy constraints; the oracle
bound; Pareto fronts; and the runtime exit policy the on-device client applies.
"""

from selector.cascade import CascadeMetrics, evaluate, exit_stages
from selector.cascade_data import CascadeData
from selector.confidence import (
    DEFAULT_METRIC,
    METRICS,
    confidence,
    max_probability,
    negative_entropy,
    score_margin,
)
from selector.costs import StageCosts
from selector.errors import SelectorError
from selector.margin import cascade_correct, paired_standard_error
from selector.oracle import OracleResult, oracle
from selector.pareto import pareto_front
from selector.policy import ExitPolicy
from selector.sweep import Sweep, sweep_threshold
from selector.thresholds import ThresholdChoice, optimise_thresholds

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "CascadeData",
    "CascadeMetrics",
    "ExitPolicy",
    "OracleResult",
    "SelectorError",
    "StageCosts",
    "Sweep",
    "ThresholdChoice",
    "cascade_correct",
    "confidence",
    "evaluate",
    "exit_stages",
    "max_probability",
    "negative_entropy",
    "oracle",
    "optimise_thresholds",
    "paired_standard_error",
    "pareto_front",
    "score_margin",
    "sweep_threshold",
]
