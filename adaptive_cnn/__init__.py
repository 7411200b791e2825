"""acnn: design and run adaptive CNN cascades under device energy budgets.

Sub-packages: ``adaptive_cnn.data`` (datasets and splits), ``adaptive_cnn.networks``
(registry of network families, the search space), ``adaptive_cnn.training``
(deterministic cached training) and ``adaptive_cnn.cli`` (the ``acnn`` command).
"""

__version__ = "0.1.0"
