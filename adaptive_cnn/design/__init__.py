"""``acnn design``: joint search of cascade architectures and thresholds under budgets."""

from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.costs import CostModel, StageEstimate, default_predictor
from adaptive_cnn.design.designer import Designer, DesignError, Evaluation
from adaptive_cnn.design.executors import ExecutorPlan, make_executor
from adaptive_cnn.design.optimizers import Backend, GaussianProcessBackend, RandomBackend
from adaptive_cnn.design.result import DesignResult, finalise
from adaptive_cnn.design.space import Candidate, CascadeSpace

__all__ = [
    "Backend",
    "Candidate",
    "CascadeSpace",
    "CostModel",
    "DesignConfig",
    "DesignError",
    "DesignResult",
    "Designer",
    "Evaluation",
    "ExecutorPlan",
    "GaussianProcessBackend",
    "RandomBackend",
    "StageEstimate",
    "default_predictor",
    "finalise",
    "make_executor",
]
