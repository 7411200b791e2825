"""The registry of reproduction experiments (``acnn reproduce NAME``).

An experiment is one module that builds an :class:`Experiment` and registers it: its
name, a one-line title, the paper it reproduces, a function that adds its own options to
the command line and a function that runs it into a :class:`ResultWriter`. The command
line, the output folder and ``config.json`` are shared (``adaptive_cnn.cli.reproduce_command``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adaptive_cnn.errors import AcnnError
from adaptive_cnn.reproduce.writer import ResultWriter


class ReproduceError(AcnnError):
    """An experiment cannot run: unknown name, missing or corrupt input."""


@dataclass(frozen=True)
class Experiment:
    """One reproduction experiment.

    Attributes:
        name: the command-line name (``acnn reproduce NAME``); results go to
            ``results/NAME`` by default.
        title: one line for ``acnn reproduce --list``.
        paper: the publication (and the claim) it reproduces.
        add_arguments: adds the experiment's own options to its parser.
        run: runs it with the parsed options, writing every file through the writer;
            returns the headline figures (JSON-able), which ``config.json`` also records.
        claim: the paper's headline claim, short (a cell of the README's table).
        ours: the headline figures (``run``'s return value) as one sentence beside it.
    """

    name: str
    title: str
    paper: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, ResultWriter], Mapping[str, Any]]
    claim: str = "—"
    ours: Callable[[Mapping[str, Any]], str] | None = None


_EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry; a second one with the same name is an error."""
    if experiment.name in _EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    _EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``.

    Raises:
        ReproduceError: no such experiment (the message lists the known ones).
    """
    try:
        return _EXPERIMENTS[name]
    except KeyError:
        known = ", ".join(sorted(_EXPERIMENTS)) or "none"
        raise ReproduceError(f"unknown experiment {name!r}; known: {known}") from None


def list_experiments() -> list[Experiment]:
    """Every registered experiment, by name."""
    return [_EXPERIMENTS[n] for n in sorted(_EXPERIMENTS)]
