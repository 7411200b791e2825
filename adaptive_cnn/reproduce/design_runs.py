"""Searches and fixed systems shared by the ``adaptive`` and ``hyperpower`` experiments.

The rules are those of ``benchmarks/design_quality.py`` so that a journal root written by
either is reused by the other: per seed, the family's reference networks are trained with
the final budget, the most accurate on validation is the **best single**, and the search
budget is its predicted energy / ``target_ratio``; each search journals to
``RUN/seedS/NAME/journal.jsonl`` beside a ``config.json`` of its :class:`DesignConfig`, and
resumes from it (an evaluation already journalled is never trained again; every network
comes through the content-addressed training cache). A journal whose ``config.json``
belongs to other settings (dataset, budget, strategy...) is refused, never mixed in.

Device energies are the layer-wise predictor's: estimates wherever its power is declared.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn import flag_values as values
from adaptive_cnn.reproduce.registry import ReproduceError

JOURNAL, SEARCH_CONFIG = "journal.jsonl", "config.json"
ISO_MARGINS = ("paired-se", "none")
#: design_quality's searches: name -> (strategy, threshold mode)
SEARCHES = {
    "bo": ("bo", "inner"),
    "bo-unaware": ("bo-unaware", "inner"),
    "random": ("random", "inner"),
}
PAIRS = (("small", "medium"), ("small", "large"), ("medium", "large"))
#: the declared design settings whose flags reproduce takes (with its own defaults)
DESIGN_FLAGS = ("trials", "initial_points", "candidates", "proxy_epochs", "rerank",
                "proxy_subset", "final_epochs")  # fmt: skip
FULL = {  # the settings of the design_quality v2 runs, so their trainings are reused
    "dataset": "fashion-mnist",
    "seeds": [0, 1, 2],
    "trials": 10,
    "initial_points": 4,
    "candidates": 300,
    "proxy_subset": 4000,
    "proxy_epochs": 1.0,
    "final_epochs": 3.0,
    "rerank": 3,
    "threads": 1,
}
QUICK = {
    "dataset": "digits",
    "seeds": [0],
    "trials": 3,
    "initial_points": 3,  # no GP step: its fit dominates a few-second run
    "candidates": 40,
    "proxy_subset": 300,
    "proxy_epochs": 1.0,
    "final_epochs": 1.0,
    "rerank": 1,
    "threads": 1,
}


@dataclass(frozen=True)
class SearchSettings:
    """The resolved settings of the searches and trainings of one experiment run."""

    dataset: str
    seeds: tuple[int, ...]
    trials: int
    initial_points: int
    candidates: int
    proxy_subset: int | None
    proxy_epochs: float
    final_epochs: float
    rerank: int
    threads: int | None
    family: str = "conv"
    device: str = "local"
    data_dir: str | None = None
    reference_seeds: bool = True
    target_ratio: float = 2.5
    iso_points: float = 0.5
    iso_margin: str = "paired-se"
    budget_mj: float | None = None
    last_stage: str | None = None
    #: family of each local stage of the searches (one per stage); empty: ``family`` for
    #: every stage. The single networks and big/little pairs are always ``family``'s.
    stage_families: tuple[str, ...] = ()

    def design_config(
        self,
        seed: int,
        strategy: str,
        mode: str,
        budget_mj: float,
        stages: int = 2,
        min_accuracy: float | None = None,
    ) -> Any:
        """The search's :class:`DesignConfig`, field for field as design_quality builds it
        (``min_accuracy``: minimise energy subject to it, under ``budget_mj``)."""
        from adaptive_cnn.design import BOSettings, DesignConfig

        search = BOSettings(
            mode=mode,
            strategy=strategy,
            trials=self.trials,
            initial_points=self.initial_points,
            candidates=self.candidates,
            proxy_epochs=self.proxy_epochs,
            rerank=self.rerank,
            reference_seeds=self.reference_seeds,
            last_stage=self.last_stage if stages > 1 else None,
        )
        return DesignConfig(
            budget_mj=budget_mj,
            min_accuracy=min_accuracy,
            dataset=self.dataset,
            data_dir=self.data_dir,
            local_stages=stages,
            families=self.searched_families(stages),
            link="none",
            device=self.device,
            seed=seed,
            proxy_subset=self.proxy_subset,
            final_epochs=self.final_epochs,
            threads=self.threads,
            search=search,
        )

    def searched_families(self, stages: int) -> tuple[str, ...]:
        """The searches' family per local stage; a search of fewer stages than given
        families keeps the first ones and the last (the last stage's family)."""
        if not self.stage_families:
            return (self.family,)
        if stages >= len(self.stage_families):
            return self.stage_families
        return (*self.stage_families[: stages - 1], self.stage_families[-1])


def _threads(text: str) -> int | None:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"threads must be >= 0, got {value}")
    return value


def add_search_arguments(
    p: argparse.ArgumentParser, seeds_help: str, defaults: Mapping[str, Any] | None = None
) -> None:
    """The options ``adaptive``, ``hyperpower`` and ``benchmarks/design_quality.py`` share.

    Args:
        p: the parser to add them to.
        seeds_help: the help of ``--seeds``.
        defaults: a parser without ``--quick`` (design_quality): its values of the
            :data:`FULL` keys that differ, set as the parser's defaults (pass the same to
            :func:`settings_from_args`). Without them those flags default to None and
            :func:`settings_from_args` takes FULL's, or QUICK's with ``--quick``.
    """
    full = {**FULL, **(defaults or {})}
    if defaults is not None:
        p.set_defaults(**full)

    def quick(key: str) -> str:
        value = QUICK[key]
        shown = f"{value:g}" if isinstance(value, (int, float)) else value
        return "" if defaults is not None else f"; --quick {shown}"

    from adaptive_cnn.design import BOSettings, DesignConfig
    from adaptive_cnn.design.settings import add_arguments

    p.add_argument("--seeds", type=values.seed, nargs="+", metavar="S", help=seeds_help)
    shown = {k: f"{full[k]:g}{quick(k)}" for k in DESIGN_FLAGS if k in full}
    add_arguments(p, BOSettings, only=DESIGN_FLAGS, shown_defaults=shown)
    add_arguments(p, DesignConfig, only=("proxy_subset", "final_epochs"), shown_defaults=shown)
    p.add_argument(
        "--threads",
        type=_threads,
        metavar="N",
        help=f"torch threads, a cache key (default {full['threads'] or 0}); 0: torch's "
        "default thread count (design_quality's default)",
    )
    p.add_argument("--dataset", help=f"default {full['dataset']}{quick('dataset')}")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder, if not the default")
    p.add_argument(
        "--family",
        default="conv",
        help="network family of the single networks, the big/little pairs and (unless "
        "--stage-family) every searched stage (default conv)",
    )
    p.add_argument(
        "--stage-family",
        action="append",
        metavar="NAME",
        help="family of one local stage of the searches (repeat, one per stage, e.g. "
        "--stage-family mlp --stage-family conv --stage-family conv)",
    )
    p.add_argument("--device", default="local", help="device profile (default local)")
    p.add_argument(
        "--predictor",
        type=Path,
        metavar="FILE",
        help="energy predictor (default: this machine's, as acnn design gets it)",
    )
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="training cache (default acnn's)")
    p.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="search journals RUN/seedS/NAME, reused when they match (default: acnn "
        "reproduce OUT/searches, design_quality --out without .json; e.g. "
        "benchmarks/results/design_quality_v2)",
    )
    p.add_argument(
        "--no-reference-seeds",
        action="store_true",
        help="searches start from random designs, not the family's reference cascades",
    )
    p.add_argument(
        "--last-stage",
        metavar="ARCH",
        help="the searches fix their last local stage to this network (small, medium, "
        "large or an architecture string) and search the stages before it",
    )
    p.add_argument(
        "--target-ratio",
        type=values.positive_float,
        default=2.5,
        metavar="RATIO",
        help="search budget = best single network's predicted energy / this (default 2.5)",
    )
    p.add_argument(
        "--iso-points",
        type=values.non_negative_float,
        default=0.5,
        metavar="POINTS",
        help="iso-accuracy: within this many accuracy points (percent) of the best single "
        "(default 0.5)",
    )
    p.add_argument(
        "--iso-margin",
        choices=ISO_MARGINS,
        default="paired-se",
        help="validation margin on the iso-accuracy target: paired-se (default) raises it "
        "by the standard error of the cascade's accuracy minus the best single's on the "
        "validation images; none uses the target as is",
    )


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The declared design settings given on the command line, converted and checked."""
    from adaptive_cnn.design import BOSettings, DesignConfig
    from adaptive_cnn.design.settings import values_from_args

    return {
        **values_from_args(args, BOSettings, DESIGN_FLAGS),
        **values_from_args(args, DesignConfig, ("proxy_subset", "final_epochs")),
    }


def settings_from_args(
    args: argparse.Namespace, defaults: Mapping[str, Any] | None = None
) -> SearchSettings:
    """Flags over the --quick or full defaults (or over FULL updated by ``defaults``, as
    given to :func:`add_search_arguments`); bad values are one-line errors."""
    if defaults is not None:
        base = {**FULL, **defaults}
    else:
        base = QUICK if args.quick else FULL
    given = _given(args)
    pick = {k: given.get(k, getattr(args, k, None)) for k in base}
    pick = {k: (v if v is not None else base[k]) for k, v in pick.items()}
    pick["threads"] = pick["threads"] or None  # 0: torch's default thread count
    if pick["trials"] < 1 or not pick["seeds"]:
        raise ReproduceError("--trials must be >= 1 and --seeds must name at least one seed")
    if len(set(pick["seeds"])) != len(pick["seeds"]):
        raise ReproduceError(f"--seeds repeats a seed: {pick['seeds']}")
    if not args.target_ratio > 0 or not args.iso_points >= 0:
        raise ReproduceError("--target-ratio must be > 0 and --iso-points >= 0")
    return SearchSettings(
        **{**pick, "seeds": tuple(pick["seeds"])},
        family=args.family,
        device=args.device,
        data_dir=None if args.data_dir is None else str(args.data_dir),
        reference_seeds=not args.no_reference_seeds,
        target_ratio=args.target_ratio,
        iso_points=args.iso_points,
        iso_margin=args.iso_margin,
        budget_mj=getattr(args, "budget", None),
        last_stage=getattr(args, "last_stage", None),
        stage_families=tuple(args.stage_family or ()),
    )


def resolve_predictor(
    args: argparse.Namespace, device: Any, cache_root: Path, say, progress=None
) -> Path:
    """--predictor, else this machine's default predictor (as acnn design gets it;
    ``progress``: bars for its profile, if one must be taken)."""
    from adaptive_cnn.design import default_predictor

    if args.predictor is not None:
        if not args.predictor.is_file():
            raise ReproduceError(f"--predictor {args.predictor}: no such file")
        return args.predictor
    return default_predictor(device, cache_root, say, progress)


# --- journals ------------------------------------------------------------------------


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The journal folder's config.json, or None when there is none."""
    path = run_dir / SEARCH_CONFIG
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReproduceError(f"{path} is not valid JSON: {exc}") from None


def check_journal(run_dir: Path, config: Any) -> None:
    """Refuse a journal folder whose config.json belongs to other settings."""
    saved = saved_config(run_dir)
    if saved is None:
        if (run_dir / JOURNAL).exists():
            raise ReproduceError(
                f"{run_dir} holds a journal but no {SEARCH_CONFIG}: its settings are unknown"
            )
        return
    from adaptive_cnn.design import journal

    wrong = journal.mismatches(saved, config.to_dict())
    if wrong:
        raise ReproduceError(
            f"{run_dir} belongs to another search: {'; '.join(wrong)}; pass matching options "
            "or another --run-dir"
        )


def journal_records(run_dir: Path, trials: int) -> list[dict[str, Any]]:
    """The first ``trials`` journalled evaluations, by index (a longer run counts so far)."""
    from adaptive_cnn.design import journal

    return journal.records(run_dir)[:trials]


def saved_budget(seed_dir: Path, names: Sequence[str]) -> float | None:
    """The budget the seed's existing searches were run with (they must agree), or None."""
    budgets = {}
    for name in names:
        saved = saved_config(seed_dir / name)
        if saved is not None and saved.get("budget_mj") is not None:
            budgets[name] = float(saved["budget_mj"])
    if not budgets:
        return None
    first = next(iter(budgets.values()))
    if any(not math.isclose(b, first, rel_tol=1e-9) for b in budgets.values()):
        shown = ", ".join(f"{k} {v:.6g} mJ" for k, v in budgets.items())
        raise ReproduceError(f"{seed_dir}: its searches disagree on the budget ({shown})")
    return first


# --- the bench: trainings, searches, fixed systems -----------------------------------


class DesignBench:
    """Everything a seed needs: dataset, link-free cost model, cache, journal root.

    Args:
        settings: the resolved settings.
        dataset: the splits (search on val, report on test).
        costs: the all-local :class:`CostModel` (link ``none``).
        cache: the training cache.
        run_root: the journal root (``RUN/seedS/NAME``).
        say: one progress line.
    """

    def __init__(self, settings: SearchSettings, dataset, costs, cache, run_root: Path, say):
        from adaptive_cnn.networks import get_family

        self.settings, self.dataset, self.costs, self.cache = settings, dataset, costs, cache
        self.run_root, self.say = Path(run_root), say
        refs = get_family(settings.family).references()
        self.refs = {k: f"{settings.family}:{a.to_str()}" for k, a in refs.items()}

    def final(self, arch: str, seed: int):
        """``arch`` trained with the final budget (from the cache when it was before)."""
        from adaptive_cnn.training import TrainConfig, train

        config = TrainConfig(epochs=self.settings.final_epochs)
        return train(
            arch, self.dataset, config, seed, threads=self.settings.threads, cache=self.cache
        )

    def singles(self, seed: int) -> dict[str, dict[str, Any]]:
        """The reference networks: accuracy (val, test) and predicted energy."""
        self.say(f"seed {seed}: reference networks ({self.settings.final_epochs:g} epochs)")
        rows = {}
        for name, arch in self.refs.items():
            result = self.final(arch, seed)
            rows[name] = {
                "arch": arch,
                "val_accuracy": result.val_accuracy,
                "test_accuracy": result.test_accuracy,
                "energy_mj": self.costs.local(arch).energy_mj,
                "macs": result.macs,
            }
        return rows

    def budget(self, singles: Mapping[str, Mapping[str, Any]]) -> tuple[str, float, float]:
        """(best single's name, search budget in mJ, validation accuracy target)."""
        best = max(singles, key=lambda n: (singles[n]["val_accuracy"], -singles[n]["energy_mj"]))
        row = singles[best]
        return (
            best,
            row["energy_mj"] / self.settings.target_ratio,
            row["val_accuracy"] - self.settings.iso_points / 100,
        )

    def search(
        self,
        seed: int,
        name: str,
        strategy: str,
        mode: str,
        budget_mj: float,
        stages: int = 2,
        min_accuracy: float | None = None,
    ):
        """Run (or resume, or only read) one search; its Designer, first ``trials`` kept."""
        from adaptive_cnn.design import Designer, RunContext

        config = self.settings.design_config(seed, strategy, mode, budget_mj, stages, min_accuracy)
        run_dir = self.run_root / f"seed{seed}" / name
        check_journal(run_dir, config)
        run_dir.mkdir(parents=True, exist_ok=True)
        if saved_config(run_dir) is None:
            (run_dir / SEARCH_CONFIG).write_text(json.dumps(config.to_dict()) + "\n")

        def progress(step: int, total: int, message: str) -> None:
            self.say(f"seed {seed} {name}: {step}/{total} {message}")

        c = self.costs
        context = RunContext(
            config, self.dataset, c.device, c.predictor, None, c, self.cache, run_dir, self.say
        )
        designer = Designer(context, progress)
        done, trials = designer.resume(), config.search.trials
        if done < trials:
            self.say(f"seed {seed} {name}: {done} journalled, searching to {trials}")
            designer.run()
        designer.evaluations = sorted(designer.evaluations, key=lambda e: e.index)[:trials]
        return designer

    def iso_system(
        self,
        results: Sequence[Any],
        stage_costs: Any,
        target: float,
        with_oracle: bool = False,
        reference: Any | None = None,
    ) -> dict[str, Any]:
        """Thresholds of least energy reaching ``target`` on val; test metrics under them.

        Args:
            results: per stage, an object with ``val_probs`` and ``test_probs``.
            stage_costs: the stages' :class:`StageCosts` (a cloud stage last, if any).
            target: the validation accuracy to reach (iso-accuracy).
            with_oracle: also the oracle bound of these networks at the test accuracy.
            reference: the best single's result (``val_probs``). With it and
                ``iso_margin`` "paired-se", the target is raised by the standard error of
                the cascade's accuracy minus the reference's on the validation images (at
                the thresholds that reach ``target``), so that the iso-accuracy the
                thresholds are chosen for on validation also holds on unseen images.
        """
        from selector import (
            CascadeData,
            cascade_correct,
            evaluate,
            optimise_thresholds,
            oracle,
            paired_standard_error,
        )

        labels_val, labels_test = self.dataset.val.labels, self.dataset.test.labels
        val = CascadeData.from_probs([r.val_probs for r in results], labels_val, "margin")
        test = CascadeData.from_probs([r.test_probs for r in results], labels_test, "margin")
        choice = optimise_thresholds(val, stage_costs, min_accuracy=min(max(target, 0.0), 1.0))
        margin = 0.0
        if reference is not None and self.settings.iso_margin == "paired-se":
            reference_correct = np.argmax(reference.val_probs, axis=1) == labels_val
            here = cascade_correct(val, np.asarray(choice.thresholds, dtype=float))
            margin = paired_standard_error(here, reference_correct)
            raised = min(max(target + margin, 0.0), 1.0)
            choice = optimise_thresholds(val, stage_costs, min_accuracy=raised)
        thresholds = np.asarray(choice.thresholds, dtype=float)
        m = evaluate(test, stage_costs, thresholds).metrics_at(0)
        row = {
            "thresholds": list(choice.thresholds),
            "val_accuracy": evaluate(val, stage_costs, thresholds).metrics_at(0)["accuracy"],
            "test_accuracy": m["accuracy"],
            "energy_mj": m["energy_mj"],
            "offload_rate": m["offload_rate"],
            "exit_fractions": m["exit_fractions"],
            "stage_energy_mj": [float(e) for e in stage_costs.energy_mj],
            "val_target_met": choice.feasible,
            "val_target_accuracy": target + margin,
            "val_margin_points": 100 * margin,
        }
        if with_oracle:
            row["oracle"] = oracle(test, stage_costs, min_accuracy=m["accuracy"]).to_dict()
        return row


def open_bench(
    settings: SearchSettings,
    args: argparse.Namespace,
    run_root: Path,
    say: Callable,
    progress: Callable | None = None,
) -> tuple[DesignBench, Any]:
    """Load the dataset, device, predictor and cache; the bench and the predictor
    (``progress``: a bar factory for the default predictor's profile, if one is taken)."""
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.design import CostModel
    from adaptive_cnn.training import TrainingCache, default_cache_dir
    from energy_models.devices import load_device
    from energy_models.predictor import EnergyPredictor

    cache_root = args.cache_dir or default_cache_dir()
    device = load_device(settings.device)
    predictor_path = resolve_predictor(args, device, cache_root, say, progress)
    predictor = EnergyPredictor.load(predictor_path)
    say(f"loading {settings.dataset}; predictor {predictor_path}")
    dataset = load_dataset(settings.dataset, data_dir=settings.data_dir, seed=0)
    costs = CostModel(
        predictor, device, "none", dataset.input_shape, dataset.num_classes, cloud_latency_ms=0
    )
    bench = DesignBench(settings, dataset, costs, TrainingCache(cache_root), run_root, say)
    bench.predictor_path = predictor_path
    return bench, predictor


def energy_label(predictor: Any) -> str:
    """``estimated`` (declared power) or ``measured``."""
    return "estimated" if predictor.estimated else "measured"


def proxy_train_seconds(bench: DesignBench, seed: int, archs) -> dict[str, float | None]:
    """Per architecture, the seconds its proxy training took when it was trained, read
    from the training cache (None when the cache lacks it); nothing is trained."""
    from adaptive_cnn.training import TrainConfig, trained_entry

    s = bench.settings
    config = TrainConfig(epochs=s.proxy_epochs, subset=s.proxy_subset)
    seconds: dict[str, float | None] = {}
    for arch in archs:
        meta = trained_entry(
            arch, bench.dataset, config, seed, threads=s.threads, cache=bench.cache
        )
        seconds[arch] = _train_seconds(meta)
    return seconds


def _train_seconds(meta: Mapping[str, Any] | None) -> float | None:
    try:
        return float(meta["train_seconds"])
    except (ValueError, KeyError, TypeError):
        return None
