"""Reproduction experiments: one module per experiment, a registry, a shared writer.

``acnn reproduce NAME [--quick] [--out results/NAME]`` runs one; ``acnn reproduce --list``
lists them. Each run writes ``config.json`` (resolved options, machine, versions, wall
time), raw results (JSON/CSV), ``table.md`` and PNG plots into its output folder;
``docs/REPRODUCTION.md`` compares them with the papers.

Adding an experiment: a module here that builds an :class:`Experiment` with
:func:`register_experiment` (see ``neuralpower.py``), imported below.
"""

from adaptive_cnn.reproduce.registry import (
    Experiment,
    ReproduceError,
    get_experiment,
    list_experiments,
    register_experiment,
)
from adaptive_cnn.reproduce.writer import ResultWriter

# Registered on import; the order does not matter (listed by name).
from adaptive_cnn.reproduce import (  # noqa: E402, F401  isort: skip
    adaptive,
    hyperpower,
    neuralpower,
    offload,
    single_path_nas,
)

__all__ = [
    "Experiment",
    "ReproduceError",
    "ResultWriter",
    "get_experiment",
    "list_experiments",
    "register_experiment",
]
