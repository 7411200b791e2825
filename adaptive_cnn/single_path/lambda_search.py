"""Automatic lambda: the energy weight whose found network meets the budget most accurately.

A larger lambda finds a cheaper network. Starting from ``initial``, the search multiplies
lambda by ``factor`` while the found network breaks the budget and divides it while it
meets it, until one of each is seen; then it bisects (geometrically) between the largest
lambda that broke the budget and the smallest that met it (judged on the network each
search found, before fitting). Of the trials whose network meets the budget (fitted, under
the ``budget`` cost form), the one with the best validation accuracy wins (ties: the
cheaper network). Under the ``budget`` form every trial meets it, so one trial can do.
Pure logic: the search itself is the ``run`` callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adaptive_cnn.errors import AcnnError

if TYPE_CHECKING:  # search imports this module's error (through .fit)
    from adaptive_cnn.single_path.search import SearchResult

ENERGY_TOLERANCE = 1e-9  # relative slack when comparing an energy with the budget


class SinglePathError(AcnnError):
    """The single-path search cannot give a network within the budget."""


@dataclass(frozen=True)
class LambdaSearch:
    """The chosen trial and every trial in the order they ran."""

    best: SearchResult
    trials: tuple[SearchResult, ...]


def meets(result: SearchResult, budget_mj: float) -> bool:
    """The found network's predicted energy is within the budget."""
    return result.energy_mj <= budget_mj * (1.0 + ENERGY_TOLERANCE)


def searched_within(result: SearchResult, budget_mj: float) -> bool:
    """The network the search itself found, before any fitting (:mod:`.fit`), is within
    the budget: what says whether lambda pushed hard enough."""
    raw = result.energy_mj if result.raw_energy_mj is None else result.raw_energy_mj
    return raw <= budget_mj * (1.0 + ENERGY_TOLERANCE)


def next_lambda(tried: list[SearchResult], budget_mj: float, factor: float) -> float:
    """The lambda of the next trial, given the trials so far (at least one)."""
    over = [r.lam for r in tried if not searched_within(r, budget_mj)]
    within = [r.lam for r in tried if searched_within(r, budget_mj)]
    if not within:
        return max(over) * factor if max(over) > 0 else 1.0
    if not over:
        return min(within) / factor
    return math.sqrt(max(over) * min(within)) if max(over) > 0 else min(within) / factor


def search_lambda(
    run: Callable[[float], SearchResult],
    budget_mj: float,
    trials: int = 4,
    initial: float = 0.5,
    factor: float = 4.0,
) -> LambdaSearch:
    """Run up to ``trials`` searches with adapted lambdas; the best within the budget.

    Stops early when the next lambda is within 5% of one already tried.

    Args:
        run: one search at a given lambda.
        budget_mj: energy budget of the found network, mJ per image.
        trials: searches at most.
        initial: lambda of the first search.
        factor: step of lambda until the budget is bracketed.

    Raises:
        SinglePathError: no trial found a network within the budget.
    """
    if trials < 1 or not initial > 0 or not factor > 1:
        raise SinglePathError("lambda search needs trials >= 1, initial > 0 and factor > 1")
    done = [run(initial)]
    while len(done) < trials:
        lam = next_lambda(done, budget_mj, factor)
        if any(abs(lam / r.lam - 1.0) < 0.05 for r in done if r.lam > 0):
            break
        done.append(run(lam))
    within = [r for r in done if meets(r, budget_mj)]
    if not within:
        cheapest = min(done, key=lambda r: r.energy_mj)
        raise SinglePathError(
            f"no single-path search met the {budget_mj:g} mJ budget in {len(done)} trials "
            f"(cheapest found: {cheapest.energy_mj:.3g} mJ at lambda {cheapest.lam:g}); "
            "raise --budget or --lambda-trials"
        )
    best = max(within, key=lambda r: (r.val_accuracy, -r.energy_mj))
    return LambdaSearch(best, tuple(done))
