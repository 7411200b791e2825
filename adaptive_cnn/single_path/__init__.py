"""Single-path superkernel search (Single-Path NAS) of ``mbconv`` cascade stages.

One over-parameterised superkernel per slot holds every choice (kernel 3/5, expansion
3/6, squeeze-and-excitation, skip) in shared weights, selected by trainable thresholds on
weight-group sizes; the layer-wise predicted energy, combined through the indicators, is
the differentiable cost, and the energy weight lambda is found automatically for a budget.
"""

from adaptive_cnn.single_path.cost import SupernetCosts, supernet_costs
from adaptive_cnn.single_path.lambda_search import LambdaSearch, SinglePathError, search_lambda
from adaptive_cnn.single_path.search import SearchConfig, SearchResult, run_search
from adaptive_cnn.single_path.superkernel import Indicators, SuperkernelMBConv, indicator
from adaptive_cnn.single_path.supernet import SinglePathSupernet

__all__ = [
    "Indicators",
    "LambdaSearch",
    "SearchConfig",
    "SearchResult",
    "SinglePathError",
    "SinglePathSupernet",
    "SuperkernelMBConv",
    "SupernetCosts",
    "indicator",
    "run_search",
    "search_lambda",
    "supernet_costs",
]
