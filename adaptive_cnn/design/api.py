"""The front door of a design run: ``design(config, run_dir) -> DesignResult``.

One call searches (or resumes the search of) a cascade under the configuration's budgets,
trains the chosen design fully, tests it once and writes the run folder. The method comes
from :data:`METHODS` by the kind of ``config.search``. The CLI (``acnn design``), the
reproductions, the benchmarks and the tests all call this; messages and progress bars go
through the callbacks the caller passes (a library user gets the ``acnn`` logger).

Example::

    from adaptive_cnn.design import BOSettings, DesignConfig, design

    config = DesignConfig(budget_mj=0.4, dataset="digits", link="none",
                          search=BOSettings(trials=4, initial_points=2))
    result = design(config, "runs/digits")
    print(result.stages, result.test_accuracy, result.energy_mj)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_cnn.design import journal
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.context import LOG, ProgressFactory, RunContext, open_run
from adaptive_cnn.design.designer import Designer
from adaptive_cnn.design.executors import ExecutorPlan, make_executor
from adaptive_cnn.design.final_choice import final_reserve_s
from adaptive_cnn.design.result import DesignResult, finalise, trained_after_choice
from adaptive_cnn.design.time_budget import Deadline
from adaptive_cnn.errors import ConfigError


@dataclass(frozen=True)
class RunOptions:
    """How to run a design (what does not change the design, so is not saved with it).

    Attributes:
        resume: continue the journalled search in the run folder.
        baselines: also train and test the fixed baselines.
        time_limit_s: finish the run in about this many seconds from the start (bo).
        plan: where candidates train (in-process by default).
    """

    resume: bool = False
    baselines: bool = True
    time_limit_s: float | None = None
    plan: ExecutorPlan | None = None


def design(
    config: DesignConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    baselines: bool = True,
    time_limit_s: float | None = None,
    executor: str | None = None,
    workers: int = 1,
    cache_root: str | Path | None = None,
    say: Callable[[str], Any] | None = None,
    progress: ProgressFactory | None = None,
) -> DesignResult:
    """Design a cascade for ``config``, train and test it, and write ``run_dir``.

    Args:
        config: the resolved settings (``config.search`` picks the method).
        run_dir: the run folder; a new run refuses one that holds a search already.
        resume: continue the search journalled in ``run_dir`` without repeating finished
            evaluations. The settings that name its evaluations (dataset, seed, budget,
            families, ...: :data:`~adaptive_cnn.design.config.JOURNAL_KEYS`) must be the
            journal's; the others (more ``trials``, another ``final_epochs``) apply.
        baselines: also train and test the fixed baselines (single networks, big/little,
            all-cloud) and report them beside the design.
        time_limit_s: finish in about this many seconds (``bo`` only): the search stops
            early enough to leave the final trainings their estimated time.
        executor: ``dask://HOST:PORT`` to train candidates on a Dask cluster (``bo``).
        workers: candidates trained at once in local processes (``bo``; 1: in-process).
        cache_root: the training cache folder (default acnn's).
        say: hears one line of news at a time (default: the ``acnn`` logger).
        progress: makes progress bars, ``progress(label)`` (default: none).

    Raises:
        ConfigError: a run folder that holds another search, or settings that conflict
            with the journal being resumed.
        DesignError: no design meets the constraints.
    """
    run_dir = Path(run_dir)
    say = say or LOG.info
    for change in _check_folder(config, run_dir, resume):
        say(f"resuming {run_dir} with {change}")
    if time_limit_s is not None and not (time_limit_s > 0):
        raise ConfigError(f"--time-limit must be > 0 s, got {time_limit_s}")
    plan = make_executor(executor, workers, config.threads)  # fail fast on a bad URL
    context = open_run(config, run_dir, cache_root=cache_root, say=say, progress=progress)
    journal.write_config(run_dir, config)
    options = RunOptions(resume, baselines, time_limit_s, plan)
    with plan.executor:
        return METHODS[config.method](context, options)


def _check_folder(config: DesignConfig, run_dir: Path, resume: bool) -> list[str]:
    """Refuse a folder the run cannot use; on resume, the settings changed from the
    journalled run's that apply (``"trials 10 (was 6)"``)."""
    if not resume:
        if journal.exists(run_dir):
            raise ConfigError(
                f"{run_dir} holds a search already: resume it (--resume {run_dir}) or "
                "choose a new run folder (--out)"
            )
        return []
    saved = journal.read_config(run_dir).to_dict()
    wanted = config.to_dict()
    wrong = journal.mismatches(saved, wanted)
    if wrong:
        raise ConfigError(
            f"--resume {run_dir}: these settings differ from the journalled run's: "
            f"{'; '.join(wrong)}; drop them, or start a new run (--out)"
        )
    return [
        f"{k} {wanted[k]!r} (was {saved.get(k)!r})" for k in wanted if saved.get(k) != wanted[k]
    ]


def _design_bo(context: RunContext, options: RunOptions) -> DesignResult:
    """Bayesian optimisation over whole cascades (:class:`Designer`), then the final
    choice among the best few fully trained (:func:`finalise`)."""
    config, say = context.config, context.say
    deadline = None
    if options.time_limit_s is not None:
        deadline = Deadline(time.monotonic() + options.time_limit_s, time.monotonic)
    bar = context.progress("design  ") if context.progress else None
    designer = Designer(context, bar.update if bar else None)
    done = designer.resume() if options.resume else 0
    if done:
        say(f"resuming {context.run_dir}: {done} finished evaluations re-told, none re-trained")
    if config.has_cloud:
        say(
            f"training the cloud model {config.cloud_arch} ({config.cloud_epochs:g} epochs; "
            "once, then cached)"
        )
        context.cloud_result()
    plan = options.plan or make_executor(None, 1, config.threads)
    search = config.search
    say(
        f"searching {search.trials} designs ({search.strategy}, {search.mode} thresholds) on "
        f"{context.dataset.name}, {plan.description}; energy per image "
        f"{context.costs.predictor.source}"
    )
    then = trained_after_choice(config, options.baselines)
    designer.run(deadline, plan, lambda: final_reserve_s(designer, then))
    if bar:
        bar.close()
    if deadline is not None and len(designer.evaluations) < search.trials:
        say(
            f"stopped searching after {len(designer.evaluations)} of {search.trials} "
            "evaluations to leave the final training its estimated time (--time-limit)"
        )
    say(
        f"training the best design fully ({config.final_epochs:g} epochs)"
        + ("" if not options.baselines else " and the baselines")
        + "; testing once"
    )
    return finalise(designer, options.baselines, say, deadline)


def _design_single_path(context: RunContext, options: RunOptions) -> DesignResult:
    """Stage 1 by the single-path superkernel search, later stages its family's
    reference networks (:func:`~adaptive_cnn.single_path.design.design_single_path`)."""
    from adaptive_cnn.single_path.design import design_single_path

    if options.time_limit_s is not None:
        raise ConfigError(
            "--time-limit bounds --method bo; the single-path search's length is set by "
            "--search-epochs and --lambda-trials"
        )
    if options.resume:
        raise ConfigError("--resume continues a journalled --method bo search")
    if options.plan is not None and options.plan.workers > 1:
        raise ConfigError("--workers and --executor spread the trainings of --method bo")
    return design_single_path(context, options.baselines, context.say)


#: method name -> the function that designs with it
METHODS: dict[str, Callable[[RunContext, RunOptions], DesignResult]] = {
    "bo": _design_bo,
    "single-path": _design_single_path,
}
