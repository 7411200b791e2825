"""Search cost of the single-path superkernel search against the BO designer (the core of
``benchmarks/single_path_cost.py`` and of ``acnn reproduce single-path``).

Runs a design (:func:`adaptive_cnn.design.design`) twice on the same dataset, device
predictor and energy budget, one local stage of the mbconv family and no cloud, each with
its own empty training cache (so neither reuses the other's training): ``--method
single-path`` (superkernel search with the automatic lambda, then the found network
trained from scratch) and ``--method bo``
(``--trials N`` proxy-trained candidates, re-ranked and trained fully). The issue's
target: the single-path wall time at most 1/5 of the BO's for a design of equal or better
(accuracy, energy).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adaptive_cnn import flag_values as values

MAX_SEARCH_SUBSET = 10_000_000  # images; beyond any dataset acnn reads

TARGET_RATIO = 0.2
METHODS = ("single-path", "bo")
QUICK = {
    "dataset": "digits",
    "trials": 3,
    "search_epochs": 2.0,
    "warmup_epochs": 1.0,
    "lambda_trials": 2,
    "proxy_subset": 256,
    "proxy_epochs": 1.0,
    "final_epochs": 1.0,
    "budget": "60mJ",  # fits digits on the measured predictors of this machine
}
SETTING_KEYS = (
    "budget",
    "dataset",
    "trials",
    "search_epochs",
    "warmup_epochs",
    "lambda_trials",
    "proxy_subset",
    "proxy_epochs",
    "final_epochs",
    "finetune_epochs",
    "search_subset",
    "search_width",
    "initial_lambda",
    "cost_form",
)


#: the settings above that are declared design settings (their flags come from there)
DECLARED = {
    "BOSettings": ("trials", "proxy_epochs"),
    "DesignConfig": ("budget_mj", "dataset", "proxy_subset", "final_epochs"),
    "SinglePathSettings": (
        "search_epochs", "warmup_epochs", "lambda_trials", "finetune_epochs", "search_width",
        "initial_lambda", "cost_form",
    ),
}  # fmt: skip


def add_setting_arguments(p: argparse._ActionsContainer) -> None:
    """The flags of :data:`SETTING_KEYS`: the design settings' own declarations (their
    defaults, and --quick's values beside them), and ``--search-subset``."""
    from adaptive_cnn.design.settings import add_arguments, declared

    for cls in _declaring_classes():
        shown = {}
        for d in declared(cls):
            key = "budget" if d.name == "budget_mj" else d.name
            default = {"budget_mj": "2mJ", "dataset": "fashion-mnist"}.get(d.name, d.default)
            default = "none" if default is None else default
            shown[d.name] = f"{default:g}" if isinstance(default, float) else str(default)
            if key in QUICK:
                quick = QUICK[key]
                shown[d.name] += (
                    f"; --quick {quick:g}" if isinstance(quick, float) else (f"; --quick {quick}")
                )
        add_arguments(p, cls, only=DECLARED[cls.__name__], shown_defaults=shown)
    p.add_argument(
        "--search-subset",
        type=values.int_in(1, MAX_SEARCH_SUBSET),
        metavar="IMAGES",
        help="single-path: training images of the supernet search, 1.."
        f"{MAX_SEARCH_SUBSET:,} (default: --proxy-subset)",
    )


def _declaring_classes() -> tuple[type, ...]:
    from adaptive_cnn.design import BOSettings, DesignConfig, SinglePathSettings

    return (DesignConfig, BOSettings, SinglePathSettings)


def resolve_settings(quick: bool, given: Mapping[str, Any]) -> dict[str, Any]:
    """--quick's settings (or fashion-mnist), then the given ones that are not None
    (flag texts are converted and checked by the settings' declarations)."""
    from adaptive_cnn.design.settings import convert, declared

    resolved: dict[str, Any] = dict(QUICK) if quick else {"dataset": "fashion-mnist"}
    given = dict(given)
    if given.get("budget_mj") is not None:
        given.setdefault("budget", given["budget_mj"])
    checked = {d.name: d for cls in _declaring_classes() for d in declared(cls)}
    for key in SETTING_KEYS:
        value = given.get(key)
        if value is None:
            continue
        if key in checked and isinstance(value, str) and key != "budget":
            value = convert(checked[key], value)
        resolved[key] = value
    return resolved


def design_config(
    method: str,
    s: Mapping[str, Any],
    *,
    seed: int,
    predictor: str | None,
    threads: int | None,
    quick: bool,
):
    """The :class:`DesignConfig` of one method: one mbconv stage, no cloud."""
    from adaptive_cnn.design import DesignConfig

    values: dict[str, Any] = {
        "method": method, "families": ["mbconv"], "local_stages": 1, "link": "none",
        "budget": s["budget"], "dataset": s["dataset"], "seed": seed,
        "predictor": predictor, "threads": threads or None,
    }  # fmt: skip
    values.update({k: s[k] for k in ("final_epochs",) if k in s})
    if method == "single-path":  # the supernet's images: search_subset, else BO's proxy's
        subset = s.get("search_subset", s.get("proxy_subset"))
        if subset is not None:
            values["proxy_subset"] = subset
        names = ("search_epochs", "warmup_epochs", "lambda_trials", "finetune_epochs")
        values.update({k: s[k] for k in (*names, "search_width", "initial_lambda", "cost_form")
                       if k in s})  # fmt: skip
    else:
        values.update({k: s[k] for k in ("proxy_subset", "trials", "proxy_epochs") if k in s})
        if quick:
            values.update(initial_points=2, candidates=40, rerank=1)
    return DesignConfig.from_dict(values, f"--method {method}")


def run_design(config, run: Path) -> tuple[dict[str, Any], float]:
    """Design with ``config`` in ``run/run`` and its own cache ``run/cache``; the result
    summary and wall seconds."""
    from adaptive_cnn.design import design

    started = time.perf_counter()
    result = design(
        config, run / "run", baselines=False, cache_root=run / "cache", say=lambda text: None
    )
    return result.summary, time.perf_counter() - started


def row(method: str, result: dict[str, Any], seconds: float, run: Path) -> dict[str, Any]:
    """One method's figures."""
    from adaptive_cnn.design import journal

    stage = result["stages"][0]
    extra: dict[str, Any] = {}
    if method == "single-path":
        sp = result["single_path"]
        search_epochs, search_seconds = sp["search_epochs"], sp["search_seconds"]
        # each lambda trial without its per-epoch history: what it found, and any fitting
        keep = ("lambda", "energy_mj", "raw_energy_mj", "dropped", "val_accuracy", "seconds")
        extra["lambda_trials"] = [{k: t.get(k) for k in keep} for t in sp["trials"]]
    else:  # proxy epochs per trained candidate, and their training seconds
        records = journal.records(run / "run")
        config = result["config"]
        search_epochs = len(records) * config["proxy_epochs"]
        search_seconds = sum(r["seconds"] for r in records)
    return {
        "method": method,
        "arch": stage["arch"],
        "energy_mj": stage["energy_mj"],
        "energy_label": result["energy_source"],
        "test_accuracy": result["test_accuracy"],
        "val_accuracy": result["val_accuracy"],
        "search_epochs": search_epochs,
        "search_seconds": search_seconds,
        "wall_seconds": seconds,
        "final_training_seconds": final_training_seconds(run / "cache", stage["arch"], result),
        **extra,
        "config": result["config"],
    }


def final_training_seconds(cache_root: Path, arch: str, result: Mapping[str, Any]) -> float:
    """Training seconds of the chosen network at the final budget (from scratch or
    fine-tuned), read from the run's own cache; 0 when it holds no such entry."""
    from adaptive_cnn.training import TrainingCache

    config = result["config"]
    sp = result.get("single_path") or {}
    epochs = float(sp.get("stage1_epochs", config["final_epochs"]))
    name = arch.split(":", 1)[-1]
    return max(
        (
            float(m["train_seconds"])
            for m in TrainingCache(cache_root).entries()
            if m["arch"] == name
            and m["config"]["subset"] is None
            and float(m["config"]["epochs"]) == epochs
        ),
        default=0.0,
    )


def verdict(sp: Mapping[str, Any], bo: Mapping[str, Any]) -> dict[str, Any]:
    """Whether single-path reached an equal or better design in at most 1/5 of the time."""
    ratio = sp["wall_seconds"] / bo["wall_seconds"]
    # both methods must train their chosen network fully; without that shared step the
    # ratio compares the searches alone (how NAS papers count search cost)
    # (None for reports written before the final training was recorded)
    searches = None
    if "final_training_seconds" in sp and "final_training_seconds" in bo:
        searches = (sp["wall_seconds"] - sp["final_training_seconds"]) / (
            bo["wall_seconds"] - bo["final_training_seconds"]
        )
    as_good = sp["test_accuracy"] >= bo["test_accuracy"] and sp["energy_mj"] <= bo["energy_mj"]
    return {
        "wall_ratio": ratio,
        "ratio_without_final_training": searches,
        "target_ratio": TARGET_RATIO,
        "design_as_good": as_good,
        "met": as_good and ratio <= TARGET_RATIO,
    }


def compare(
    s: Mapping[str, Any],
    work: Path,
    *,
    seed: int,
    predictor: str | None,
    threads: int | None,
    quick: bool,
    say: Callable[[str], Any],
) -> dict[str, dict[str, Any]]:
    """Both methods, one after the other, each in ``work/METHOD`` with its own cache."""
    rows = {}
    for method in METHODS:
        run = work / method
        say(f"running acnn design --method {method} ...")
        config = design_config(
            method, s, seed=seed, predictor=predictor, threads=threads, quick=quick
        )
        result, seconds = run_design(config, run)
        rows[method] = row(method, result, seconds, run)
    return rows


def report(s: Mapping[str, Any], seed: int, rows: Mapping[str, dict[str, Any]]) -> dict:
    """The JSON report: settings, seed, both rows (single-path first), the verdict."""
    sp, bo = rows["single-path"], rows["bo"]
    return {"settings": dict(s), "seed": seed, "results": [sp, bo], "verdict": verdict(sp, bo)}
