"""Design an adaptive cascade under device budgets: the one Python entry point.

``design(config, run_dir)`` runs a whole design (search, final training, one test
evaluation, the run folder); ``open_run(config, run_dir)`` loads what a run works with
(dataset, device, predictor, costs, cache) without searching. The CLI's ``acnn design`` is
a thin skin over :func:`design`.
"""

from adaptive_cnn.design.api import METHODS, design
from adaptive_cnn.design.config import (
    JOURNAL_KEYS,
    SEARCH_SETTINGS,
    BOSettings,
    DesignConfig,
)
from adaptive_cnn.design.context import RunContext, open_run
from adaptive_cnn.design.costs import CostModel, StageEstimate, default_predictor
from adaptive_cnn.design.designer import Designer, DesignError, Evaluation
from adaptive_cnn.design.executors import ExecutorPlan, make_executor
from adaptive_cnn.design.optimizers import Backend, GaussianProcessBackend, RandomBackend
from adaptive_cnn.design.result import DesignResult, finalise
from adaptive_cnn.design.space import Candidate, CascadeSpace
from adaptive_cnn.single_path.settings import SinglePathSettings

__all__ = [
    "JOURNAL_KEYS",
    "METHODS",
    "SEARCH_SETTINGS",
    "BOSettings",
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
    "RunContext",
    "SinglePathSettings",
    "StageEstimate",
    "default_predictor",
    "design",
    "finalise",
    "make_executor",
    "open_run",
]
