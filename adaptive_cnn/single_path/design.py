"""``acnn design --method single-path``: a cascade whose first stage the superkernel finds.

1. The supernet's width is chosen (or given) so that the stage-1 budget leaves room.
2. The automatic lambda search (:mod:`.lambda_search`) runs superkernel searches until the
   found network meets the stage-1 budget (``SinglePathSettings.stage1_budget_mj``) with the
   best validation accuracy of the supernet. Under the ``budget`` cost form each search
   targets that budget and its network is fitted into it (:mod:`.fit`), so every trial
   meets it and one trial can do.
3. That network is trained from scratch with the final budget, like any design, or, with
   ``finetune_epochs``, fine-tuned from the weights it had in the supernet
   (:mod:`.inherit`) for that many epochs.
4. Later local stages, if any, are the family's reference networks (the costliest that
   pass the a-priori screen), trained with the final budget; a cloud stage is the
   configured cloud model. Thresholds are solved by ``selector`` on validation under the
   whole budget, and the run folder is written by the same code as the BO designer's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from adaptive_cnn.design.context import RunContext
from adaptive_cnn.design.designer import (
    Evaluation,
    constraint_violation,
    loss_of,
    solve_thresholds,
)
from adaptive_cnn.design.final_choice import FinalCandidate
from adaptive_cnn.design.result import DesignResult, write_design
from adaptive_cnn.networks import get_family
from adaptive_cnn.networks.mbconv import WIDTHS
from adaptive_cnn.single_path.cost import SupernetCosts, supernet_costs
from adaptive_cnn.single_path.lambda_search import LambdaSearch, SinglePathError, search_lambda
from adaptive_cnn.single_path.search import (
    SearchConfig,
    SearchResult,
    WarmStart,
    run_search,
    warm_up,
)
from adaptive_cnn.single_path.settings import SinglePathSettings
from adaptive_cnn.training import TrainConfig
from energy_models.predictor import EnergyPredictor
from selector import CascadeData, evaluate

ROOM = 0.5  # auto width: the widest supernet whose cheapest network costs <= ROOM x budget


def choose_width(
    predictor: EnergyPredictor,
    input_shape: tuple[int, int, int],
    num_classes: int,
    budget_mj: float,
    width: float | None = None,
) -> tuple[float, SupernetCosts]:
    """The supernet width (given, or the widest with room under the budget) and its costs.

    Raises:
        SinglePathError: no network of the width(s) fits the budget.
    """
    widths = (width,) if width is not None else WIDTHS
    options = [(w, supernet_costs(predictor, input_shape, num_classes, w)) for w in widths]
    fitting = [(w, c) for w, c in options if c.cheapest_mj() <= budget_mj]
    if not fitting:
        w, c = min(options, key=lambda o: o[1].cheapest_mj())
        raise SinglePathError(
            f"no network of the single-path space fits the stage-1 budget {budget_mj:.3g} mJ: "
            f"the cheapest (width {w:g}) needs {c.cheapest_mj():.3g} mJ; raise --budget"
            + (" or --stage1-share" if width is None else " or change --search-width")
        )
    roomy = [(w, c) for w, c in fitting if c.cheapest_mj() <= ROOM * budget_mj]
    return max(roomy, key=lambda o: o[0]) if roomy else fitting[0]


def later_stages(context: RunContext, first: str) -> tuple[str, ...]:
    """Stages 2.. : per stage, its family's reference networks costlier than the stage
    before that pass the screen, the costliest leaving room for the stages after it.

    Raises:
        SinglePathError: no reference network fits a later stage.
    """
    config, costs = context.config, context.costs
    stages = [first]
    for s, family in enumerate(config.stage_families[1:], start=2):
        refs = [f"{family}:{a.to_str()}" for a in get_family(family).references().values()]
        previous = costs.local(stages[-1]).energy_mj
        usable = sorted(
            (r for r in refs if costs.local(r).energy_mj > previous
             and costs.screen((*stages, r), config.budget_mj) is None),
            key=lambda r: costs.local(r).energy_mj,
        )  # fmt: skip
        remaining = config.local_stages - s + 1
        if len(usable) < remaining:
            raise SinglePathError(
                f"no {family} reference network fits stage {s} after {stages[-1]} under the "
                f"{config.budget_mj:g} mJ budget; use fewer --stages"
            )
        stages.append(usable[-remaining])
    return tuple(stages[1:])


def design_single_path(
    context: RunContext,
    baselines: bool = True,
    say: Callable[[str], Any] | None = None,
) -> DesignResult:
    """Design, train, test and write a cascade whose first stage is single-path searched.

    Args:
        context: the run's settings (``method: single-path``), data, costs, cache and
            run folder.
        baselines: also train and test the fixed baselines.
        say: prints one line of news.
    """
    say = say or (lambda text: None)
    config, dataset, sp = context.config, context.dataset, context.config.search
    budget = sp.stage1_budget_mj(config)
    width, costs = choose_width(
        context.costs.predictor,
        dataset.input_shape,
        dataset.num_classes,
        budget,
        sp.search_width,
    )
    base = SearchConfig(
        epochs=sp.search_epochs,
        warmup_epochs=sp.warmup_epochs,
        subset=config.proxy_subset,
        width=width,
        cost_form=sp.cost_form,
        budget_mj=budget if sp.cost_form == "budget" else None,
    )
    say(f"single-path search at width {width:g}: stage 1 within {budget:.3g} mJ")
    warm = warm_up(dataset, costs, base, config.seed, threads=config.threads)
    say(f"  warm-up (weights only, shared by every lambda): {warm.seconds:.1f} s")

    def run(lam: float) -> SearchResult:
        found = run_search(
            dataset,
            costs,
            dataclasses.replace(base, lam=lam),
            config.seed,
            threads=config.threads,
            warm=warm,
        )
        fitted = (
            f" (fitted from {found.raw_energy_mj:.3g} mJ: dropped "
            + ", ".join(f"slot {slot} {choice}" for slot, choice in found.dropped)
            + ")"
            if found.dropped
            else ""
        )
        say(
            f"  lambda {lam:.4g}: {found.arch} {found.energy_mj:.3g} mJ{fitted}, supernet val "
            f"{found.val_accuracy:.2%} ({found.seconds:.1f} s)"
        )
        return found

    found = search_lambda(run, budget, sp.lambda_trials, sp.initial_lambda)
    stages = (found.best.arch, *later_stages(context, found.best.arch))
    init = found.best.inherited if sp.finetune_epochs is not None else None
    scratch = stages if init is None else stages[1:]
    if init is not None:
        epochs = sp.finetune_epochs
        say(f"fine-tuning {stages[0]} from the supernet's weights ({epochs:g} epochs)")
    if scratch:
        say(f"training {' | '.join(scratch)} ({config.final_epochs:g} epochs)")
    say("evaluating the cascade; testing once")
    seconds = warm.seconds + sum(t.seconds for t in found.trials)
    chosen = _evaluate(context, stages, seconds, init)
    extra = {"single_path": _report(found, warm, base, costs, sp, config.final_epochs)}
    return write_design(context, chosen, [chosen], [chosen.evaluation], 0, baselines, extra)


def _evaluate(
    context: RunContext,
    stages: tuple[str, ...],
    seconds: float,
    init: dict[str, torch.Tensor] | None = None,
) -> FinalCandidate:
    """Train the stages with the final budget, or stage 1 for ``finetune_epochs`` from
    ``init`` when given, and evaluate the cascade on validation."""
    config = context.config
    budgets = [context.final_config()] * len(stages)
    inits = [None] * len(stages)
    if init is not None:
        budgets[0], inits[0] = TrainConfig(epochs=config.search.finetune_epochs), init
    results = tuple(
        context.train(a, budget, init_state=start)
        for a, budget, start in zip(stages, budgets, inits, strict=True)
    )
    val = [r.val_probs for r in results]
    if config.has_cloud:
        val.append(context.cloud_probs("val"))
    data = CascadeData.from_probs(val, context.dataset.val.labels, config.metric)
    costs = context.costs.stage_costs(stages)
    thresholds = tuple(float(t) for t in solve_thresholds(data, costs, config))
    metrics = evaluate(data, costs, np.asarray(thresholds, dtype=float)).metrics_at(0)
    evaluation = Evaluation(
        index=0,
        point=[],
        stages=stages,
        thresholds=thresholds,
        predicted_stage_energy_mj=tuple(context.costs.local(a).energy_mj for a in stages),
        metrics=metrics,
        feasible=constraint_violation(metrics, config) == 0,
        loss=loss_of(metrics, config),
        screened=context.costs.screen(stages, config.budget_mj),
        seconds=seconds,
    )
    return FinalCandidate(stages, results, metrics, evaluation.loss, evaluation)


def _report(
    found: LambdaSearch,
    warm: WarmStart,
    base: SearchConfig,
    costs: SupernetCosts,
    sp: SinglePathSettings,
    final_epochs: float,
) -> dict[str, Any]:
    trials = [t.to_dict() for t in found.trials]
    return {
        "arch": found.best.arch,
        "energy_mj": found.best.energy_mj,
        "energy_label": "estimated" if costs.estimated else "predicted from measured power",
        "lambda": found.best.lam,
        "width": base.width,
        # the shared warm-up once, then each lambda trial's own epochs
        "search_epochs": warm.epochs + sum(t.epochs for t in found.trials),
        "search_seconds": warm.seconds + sum(t.seconds for t in found.trials),
        "warmup_epochs": warm.epochs,
        "warmup_seconds": warm.seconds,
        # how the found network was trained after the search
        "stage1_training": "from scratch"
        if sp.finetune_epochs is None
        else "fine-tuned from the supernet's weights",
        "stage1_epochs": final_epochs if sp.finetune_epochs is None else sp.finetune_epochs,
        "search": {k: v for k, v in base.to_dict().items() if k != "lam"},
        "trials": trials,
    }
