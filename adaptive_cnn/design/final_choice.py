"""Which searched design becomes the result: the best few re-ranked at full training.

The search ranks candidates after proxy training (a subset, few epochs), which favours
networks that learn fast over networks that end up accurate. The ``rerank`` best feasible
designs are therefore trained with the final budget, their thresholds solved again on the
validation split, and the one with the best validation loss wins. The test split is not
touched here.

With ``--min-accuracy`` proxy training cannot judge the accuracy constraint: a cascade of
proxy-trained networks falls points short of what the same networks reach fully trained.
Candidates that meet every other constraint are therefore shortlisted too (after the
feasible ones, the least short first), and the final training decides: the design must
meet every constraint fully trained, or the search ends in a :class:`DesignError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptive_cnn.design.baselines import baseline_archs
from adaptive_cnn.design.combination import CombinationSearch, best_combination
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.designer import (
    Designer,
    DesignError,
    Evaluation,
    constraint_violation,
    loss_of,
    solve_thresholds,
)
from adaptive_cnn.design.time_budget import Deadline
from adaptive_cnn.training import TrainResult
from selector import CascadeData, evaluate


@dataclass(frozen=True)
class FinalCandidate:
    """A design at the final budget: its stages, networks and validation metrics, and the
    search evaluation it re-ranks (None when combining trained networks found it)."""

    stages: tuple[str, ...]
    results: tuple[TrainResult, ...]
    val_metrics: dict[str, Any]
    loss: float
    evaluation: Evaluation | None = None

    @property
    def found_by(self) -> str:
        """``search`` (a re-ranked evaluation) or ``combination`` (of trained networks)."""
        return "search" if self.evaluation is not None else "combination"

    def to_row(self) -> dict[str, Any]:
        e = self.evaluation
        return {
            "index": e.index if e is not None else None,
            "stages": list(self.stages),
            "search_val_accuracy": e.metrics["accuracy"] if e is not None else None,
            "final_val_accuracy": self.val_metrics["accuracy"],
            "energy_mj": self.val_metrics["energy_mj"],
            "loss": self.loss,
            "found_by": self.found_by,
        }


def shortlist(designer: Designer) -> list[Evaluation]:
    """The ``config.rerank`` best eligible evaluations (feasible, or with ``min_accuracy``
    short only of the accuracy), one per distinct set of stages;
    with ``rerank > 1`` also every other eligible hand-picked reference cascade the search
    started from (proxy training ranks their large networks low, fully trained they are
    strong, so the design is never worse on validation than the best of them)."""
    distinct: dict[tuple[str, ...], Evaluation] = {}
    for e in sorted(designer.evaluations, key=lambda e: (e.loss, e.index)):
        if _eligible(e, designer.config):
            distinct.setdefault(e.stages, e)
    ranked = list(distinct.values())
    k = designer.search.rerank
    if k == 1:
        return ranked[:1]
    seeds = {designer.space.decode(p).stages for p in designer.seed_points}
    return ranked[:k] + [e for e in ranked[k:] if e.stages in seeds]


def _eligible(e: Evaluation, config: DesignConfig) -> bool:
    """Feasible, or (with ``min_accuracy``) short only of the accuracy proxy training
    cannot show."""
    if e.feasible:
        return True
    return (
        config.min_accuracy is not None
        and constraint_violation(e.metrics, config, accuracy=False) == 0
    )


@dataclass(frozen=True)
class SkippedCandidate:
    """A shortlisted design not trained fully: its estimated training did not fit."""

    evaluation: Evaluation
    estimated_seconds: float

    def to_row(self) -> dict[str, Any]:
        return {
            "index": self.evaluation.index,
            "stages": list(self.evaluation.stages),
            "search_val_accuracy": self.evaluation.metrics["accuracy"],
            "estimated_seconds": self.estimated_seconds,
        }


@dataclass(frozen=True)
class FinalChoice:
    """The design (best on validation of those trained fully), every design trained fully
    to choose it, those skipped for time (``--time-limit``), what combining the
    trained networks found (None when not combined) and the searched networks trained
    fully only to join that combination (``promote_under_s``), and every network
    trained fully by architecture (the pool the combination and the frontier draw on)."""

    best: FinalCandidate
    ranked: list[FinalCandidate]
    skipped: list[SkippedCandidate]
    combination: CombinationSearch | None = None
    promoted: tuple[str, ...] = ()
    pool: Mapping[str, TrainResult] = field(default_factory=dict)


def choose_final(
    designer: Designer,
    say: Callable[[str], None] | None = None,
    deadline: Deadline | None = None,
    then_archs: Sequence[str] = (),
    combine: bool = True,
) -> FinalChoice:
    """Train the shortlist with the final budget; the best on validation, and all of them.

    With ``combine``, the hand-picked reference networks (the baselines' family's small,
    medium and large) are trained with the final budget too, whether or not the baselines
    are reported, and every cascade of the networks trained fully (the shortlist's, the
    fixed stage's and the references) is scored on validation
    (:mod:`adaptive_cnn.design.combination`); the best of those wins when it beats every
    re-ranked design, so the design is never worse on validation than any hand-picked
    cascade of the references. Every other network the search trained whose final
    training is estimated at most ``promote_under_s`` joins them, trained fully first
    (:func:`_promoted`): cheap stages train fully in seconds, and the combination then
    ranks them by their real accuracy rather than their proxy's.

    ``say`` hears one line before each candidate's training (minutes each; cached ones
    are instant) and one with its validation figures after it. With a ``deadline``, a
    candidate is trained only if its estimated final training, plus that of
    ``then_archs`` (networks trained after the choice, e.g. the baselines'), still fits;
    if none fits, the one quickest to train is (the run then overruns).

    Raises:
        DesignError: no evaluation is eligible (:meth:`Designer.best`'s error), or with
            ``min_accuracy`` none meets the constraints fully trained either.
    """
    candidates = shortlist(designer)
    if not candidates:
        designer.best()  # raises the user-facing error: nothing is feasible
    tell = say or (lambda text: None)
    ranked: list[FinalCandidate] = []
    skipped: list[SkippedCandidate] = []
    for i, evaluation in enumerate(candidates, start=1):
        head = f"final training {i}/{len(candidates)}"
        if deadline is not None:
            need_s = designer.time_estimate().final_seconds([*evaluation.stages, *then_archs])
            if not deadline.fits(need_s):
                skipped.append(SkippedCandidate(evaluation, need_s))
                tell(
                    f"{head}: skipped {' -> '.join(evaluation.stages)}: about "
                    f"{need_s / 60:.1f} min of final training"
                    f"{' (with the baselines)' if then_archs else ''} estimated, "
                    f"{max(deadline.left_s(), 0) / 60:.1f} min left of --time-limit"
                )
                continue
        tell(f"{head}: {' -> '.join(evaluation.stages)}")
        ranked.append(_at_final_budget(designer, evaluation))
        m = ranked[-1].val_metrics
        tell(
            f"{head}: val accuracy {m['accuracy']:.4f}, energy {m['energy_mj']:.3g} mJ "
            f"(estimated) per image (proxy {evaluation.metrics['accuracy']:.4f})"
        )
    if not ranked:  # nothing fits: the quickest, rather than no design at all
        quickest = min(skipped, key=lambda c: c.estimated_seconds)
        skipped.remove(quickest)
        tell(
            "no re-ranked design fits --time-limit; training the quickest: "
            + " -> ".join(quickest.evaluation.stages)
        )
        ranked.append(_at_final_budget(designer, quickest.evaluation))
    best = min(ranked, key=lambda c: (c.loss, c.evaluation.loss, c.evaluation.index))
    combination, promoted, pool = None, {}, {}
    if combine:
        pool = _trained(ranked)
        for arch in baseline_archs(designer.config.baseline_family):
            if arch not in pool:
                tell(f"final training of the reference {arch} (combined with the others)")
                pool[arch] = designer.context.train_final(arch)
        promoted = _promoted(designer, pool, deadline, then_archs, tell)
        pool.update(promoted)
        combination = _combine(designer, pool, tell)
        found = combination.best
        if found is not None and (found.loss, found.val_metrics["energy_mj"]) < (
            best.loss,
            best.val_metrics["energy_mj"],
        ):
            results = tuple(pool[a] for a in found.stages)
            best = FinalCandidate(found.stages, results, found.val_metrics, found.loss)
    if constraint_violation(best.val_metrics, designer.config) > 0:
        m = best.val_metrics
        raise DesignError(
            f"no design meets the constraints fully trained either ({len(ranked)} re-ranked; "
            f"closest: {m['accuracy']:.2%} val accuracy, {m['energy_mj']:.3g} mJ); lower "
            "--min-accuracy, raise --budget, or search longer (--trials, --rerank)"
        )
    return FinalChoice(best, ranked, skipped, combination, tuple(promoted), pool)


def _trained(ranked: list[FinalCandidate]) -> dict[str, TrainResult]:
    """Architecture -> its final-budget network, over the re-ranked designs."""
    return {a: r for c in ranked for a, r in zip(c.stages, c.results, strict=True)}


def _promoted(
    designer: Designer,
    pool: dict[str, TrainResult],
    deadline: Deadline | None,
    then_archs: Sequence[str],
    tell: Callable[[str], None],
) -> dict[str, TrainResult]:
    """The networks the search trained (not in ``pool``) whose final training is estimated
    at most ``promote_under_s``, trained with the final budget quickest first while the
    deadline leaves room for ``then_archs``.

    Which networks qualify depends on the journal only (their proxy seconds, scaled), not
    on what happens to be cached, so a resumed or repeated run promotes the same ones;
    the deadline counts a cached training as free."""
    limit_s = designer.search.promote_under_s
    estimate = designer.time_estimate()
    need = {a: s * estimate.scale for a, s in estimate.proxy_seconds.items() if a not in pool}
    cheap = sorted((a for a, s in need.items() if s <= limit_s), key=lambda a: (need[a], a))
    if not cheap:
        if need:
            tell(
                f"no other searched network is estimated to train fully within "
                f"{limit_s:g} s (--promote-under): {len(need)} left at proxy budget, the "
                f"quickest estimated at {min(need.values()):.0f} s"
            )
        return {}
    tell(
        f"training {len(cheap)} more searched networks fully for the combination (each "
        f"estimated at most {limit_s:g} s, --promote-under; {len(need) - len(cheap)} dearer "
        "ones left at proxy budget)"
    )
    started = time.monotonic()
    promoted: dict[str, TrainResult] = {}
    for arch in cheap:
        if deadline is not None:
            if not deadline.fits(estimate.final_seconds([arch, *then_archs])):
                tell(
                    f"stopped after {len(promoted)} of {len(cheap)}: the next, {arch}, does "
                    "not fit --time-limit"
                )
                break
        promoted[arch] = designer.context.train_final(arch)
    tell(f"trained {len(promoted)} networks fully in {time.monotonic() - started:.0f} s")
    return promoted


def _combine(
    designer: Designer, pool: dict[str, TrainResult], tell: Callable[[str], None]
) -> CombinationSearch:
    """Score every admissible cascade of the networks in ``pool`` (all trained fully)."""
    cloud = designer.cloud_probs("val") if designer.config.has_cloud else None
    found = best_combination(
        {a: r.val_probs for a, r in pool.items()},
        designer.dataset.val.labels,
        designer.costs,
        designer.config,
        cloud,
    )
    line = (
        f"combined {len(found.networks)} fully trained networks: {found.admissible} "
        f"admissible cascades, {found.scored} scored, the rest bounded out by the oracle, "
        f"in {found.seconds:.1f} s"
    )
    if found.best is not None:
        m = found.best.val_metrics
        line += (
            f"; best {' -> '.join(found.best.stages)}: val accuracy {m['accuracy']:.4f}, "
            f"energy {m['energy_mj']:.3g} mJ (estimated) per image"
        )
    tell(line)
    return found


def final_reserve_s(designer: Designer, then_archs: Sequence[str] = ()) -> float:
    """Estimated seconds of what follows the search as it stands: the final training of
    the best eligible design so far and of ``then_archs`` (0 before any evaluation)."""
    head = shortlist(designer)[:1]
    stages = head[0].stages if head else ()
    return designer.time_estimate().final_seconds([*stages, *then_archs])


def _at_final_budget(designer: Designer, evaluation: Evaluation) -> FinalCandidate:
    config = designer.config
    results = tuple(designer.context.train_final(a) for a in evaluation.stages)
    val = [r.val_probs for r in results]
    if config.has_cloud:
        val.append(designer.cloud_probs("val"))
    data = CascadeData.from_probs(val, designer.dataset.val.labels, config.metric)
    costs = designer.costs.stage_costs(evaluation.stages)
    thresholds = solve_thresholds(data, costs, config)
    metrics = evaluate(data, costs, np.asarray(thresholds, dtype=float)).metrics_at(0)
    return FinalCandidate(evaluation.stages, results, metrics, loss_of(metrics, config), evaluation)
