"""Experiment ``hyperpower``: constraint-aware BO vs constraint-unaware BO vs random search.

The three searches of ``benchmarks/design_quality.py`` (``bo``, ``bo-unaware``, ``random``:
same dataset, budget, proxy training and reference seeds) are run, or only read, from the
journal root ``--run-dir`` (``RUN/seedS/NAME/journal.jsonl`` + ``config.json``). When the
journals hold the requested trials for every seed and their settings match, nothing is
trained. From the journals: best feasible validation error (proxy training) vs
evaluations and vs training seconds, trained infeasible configurations,
evaluations per hour, and how much sooner the aware search reaches each other search's
best error. Time is each search's own training time as if it ran alone: the
searches share the training cache, so the journalled ``seconds`` of a network another
search trained first is only its cache read; each evaluation is instead charged the
cached training seconds of the networks it is first in its search to use. Feasibility
uses the layer-wise predictor's energy: an estimate.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
from typing import Any

from adaptive_cnn.reproduce import design_runs as dr
from adaptive_cnn.reproduce import search_curves as sc
from adaptive_cnn.reproduce.registry import Experiment, ReproduceError, register_experiment
from adaptive_cnn.reproduce.writer import ResultWriter

PAPER = (
    "Stamoulis et al., HyperPower: Power- and Memory-Constrained Hyper-Parameter "
    "Optimization for Neural Networks (DATE 2018): constraint-aware BO reaches the best "
    "error up to 30.12x faster and runs up to 57.20x more evaluations in the same time"
)
PAPER_TIME_RATIO, PAPER_EVALS_RATIO = 30.12, 57.20
STRATEGIES = ("bo", "bo-unaware", "random")  # design_quality's search names
AWARE, OTHERS = "bo", ("bo-unaware", "random")
LABELS = {
    "bo": "constraint-aware BO",
    "bo-unaware": "constraint-unaware BO",
    "random": "random search",
}
DEFAULT_SEEDS = [0, 1, 2]


def add_arguments(p: argparse.ArgumentParser) -> None:
    dr.add_search_arguments(p, "seeds, at least 3 for a spread (default 0 1 2, also --quick)")
    p.add_argument(
        "--budget",
        metavar="ENERGY",
        help="energy budget per image, e.g. 2mJ (default: the journals' if any, else the "
        "best single network's predicted energy / --target-ratio)",
    )


def run(args: argparse.Namespace, out: ResultWriter) -> dict[str, Any]:
    from adaptive_cnn.reproduce.hyperpower_report import plot_curves, render_table

    settings = _settings(args)
    if args.run_dir is not None and not args.run_dir.is_dir():
        raise ReproduceError(f"--run-dir {args.run_dir} is not a folder")
    run_root = args.run_dir or out.out / "searches"
    bench, predictor = dr.open_bench(settings, args, run_root, out.say)
    out.resolve(
        settings=vars(settings) | {"seeds": list(settings.seeds)},
        run_dir=run_root,
        predictor=bench.predictor_path,
    )
    seeds = []
    for seed in settings.seeds:
        journals = seed_journals(bench, seed)
        seeds.append({**analyse_seed(journals["journals"]), **journals, "seed": seed})
    results = {
        "paper": PAPER,
        "energy_label": dr.energy_label(predictor),
        "energy_note": predictor.source,
        "trials": settings.trials,
        "seeds": [{k: v for k, v in s.items() if k != "journals"} for s in seeds],
        "summary": summarise(seeds),
    }
    out.write_json("results.json", results)
    out.write_csv("evaluations.csv", _evaluation_rows(seeds))
    out.write_text("table.md", render_table(results))
    out.save_figure("search_efficiency.png", plot_curves(results))
    return _headline(results)


def _settings(args: argparse.Namespace) -> dr.SearchSettings:
    from energy_models.errors import EnergyModelError
    from energy_models.units import parse_energy_mj

    budget = None
    if args.budget is not None:
        try:
            budget = parse_energy_mj(args.budget)
        except (ValueError, EnergyModelError) as exc:
            raise ReproduceError(f"--budget: {exc}") from None
        if not budget > 0:
            raise ReproduceError(f"--budget must be > 0, got {args.budget!r}")
    seeds = args.seeds or DEFAULT_SEEDS
    settings = dr.settings_from_args(argparse.Namespace(**{**vars(args), "seeds": seeds}))
    return dataclasses.replace(settings, budget_mj=budget)


def seed_journals(bench: dr.DesignBench, seed: int) -> dict[str, Any]:
    """The three searches' first ``trials`` records, read or (if missing) searched."""
    settings = bench.settings
    seed_dir = bench.run_root / f"seed{seed}"
    budget = settings.budget_mj or dr.saved_budget(seed_dir, STRATEGIES)
    if budget is None:  # nothing journalled yet: the budget rule needs the singles
        _, budget, _ = bench.budget(bench.singles(seed))
    journals, searched = {}, []
    for name in STRATEGIES:
        strategy, mode = dr.SEARCHES[name]
        run_dir = seed_dir / name
        dr.check_journal(run_dir, settings.design_config(seed, strategy, mode, budget))
        records = dr.journal_records(run_dir, settings.trials)
        if len(records) < settings.trials:
            searched.append(name)
            bench.search(seed, name, strategy, mode, budget)
            records = dr.journal_records(run_dir, settings.trials)
        check_predictor(records, bench.costs, run_dir)
        journals[name] = records
    archs = {a for records in journals.values() for r in records for a in r["stages"]}
    lookup = dr.proxy_train_seconds(bench, seed, sorted(archs))
    unknown = {}
    for name, records in journals.items():
        journals[name], unknown[name] = sc.standalone_seconds(records, lookup)
    bench.say(f"seed {seed}: " + (f"searched {', '.join(searched)}" if searched else "read only"))
    return {
        "budget_mj": budget,
        "searched": searched,
        "journal_timed_evaluations": unknown,
        "journals": journals,
    }


def check_predictor(records, costs, run_dir) -> None:
    """Refuse a journal whose predicted energies another predictor made."""
    if not records:
        return
    first = records[0]
    for arch, saved in zip(first["stages"], first["predicted_stage_energy_mj"], strict=True):
        ours = costs.local(arch).energy_mj
        if not math.isclose(ours, saved, rel_tol=1e-6):
            raise ReproduceError(
                f"{run_dir}: its predicted energy of {arch} is {saved:.6g} mJ, this predictor "
                f"gives {ours:.6g} mJ: the journal was made with another predictor; pass it "
                "with --predictor or use another --run-dir"
            )


def analyse_seed(journals: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per strategy: curves and totals; per other strategy: the aware search's ratios."""
    strategies = {}
    for name, records in journals.items():
        fph = sc.evaluations_per_hour(records, feasible_only=True)
        strategies[name] = {
            "evaluations": len(records),
            "trained_infeasible": sum(not r["feasible"] for r in records),
            "best_error": (sc.best_error_so_far(records) or [None])[-1],
            "seconds": sum(float(r["seconds"]) for r in records),
            "evals_per_hour": sc.evaluations_per_hour(records),
            "feasible_evals_per_hour": fph,
            "best_error_so_far": sc.best_error_so_far(records),
            "elapsed_s": sc.elapsed_seconds(records),
        }
    ratios = {}
    aware = strategies[AWARE]
    for other in OTHERS:
        row = sc.time_to_best_ratio(journals[AWARE], journals[other])
        theirs, ours = strategies[other], aware
        row["evals_per_hour_ratio"] = _ratio(ours["evals_per_hour"], theirs["evals_per_hour"])
        row["feasible_evals_per_hour_ratio"] = _ratio(
            ours["feasible_evals_per_hour"], theirs["feasible_evals_per_hour"]
        )
        ratios[other] = row
    return {"strategies": strategies, "ratios": ratios}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarise(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread per strategy, median and largest ratios over seeds."""
    per = {}
    for name in STRATEGIES:
        rows = [s["strategies"][name] for s in seeds]
        per[name] = {
            "best_error": _stats([r["best_error"] for r in rows]),
            "trained_infeasible": _stats([r["trained_infeasible"] for r in rows]),
            "trained_infeasible_total": sum(r["trained_infeasible"] for r in rows),
            "evals_per_hour": _stats([r["evals_per_hour"] for r in rows]),
            "feasible_evals_per_hour": _stats([r["feasible_evals_per_hour"] for r in rows]),
        }
    ratios = {}
    for other in OTHERS:
        ratios[other] = {
            key: _stats([s["ratios"][other][key] for s in seeds])
            for key in ("ratio", "evals_ratio", "feasible_evals_per_hour_ratio")
        }
        ratios[other]["aware_never_reached"] = sum(
            s["ratios"][other]["level_error"] is not None and s["ratios"][other]["ratio"] is None
            for s in seeds
        )
    return {"strategies": per, "ratios": ratios, "seeds": len(seeds)}


def _stats(values) -> dict[str, Any]:
    """mean, sd (n-1), min, max, median, n over the non-None values."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return {"n": 0, "mean": None, "sd": None, "min": None, "max": None, "median": None}
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return {
        "n": len(v),
        "mean": statistics.fmean(v),
        "sd": sd,
        "min": min(v),
        "max": max(v),
        "median": statistics.median(v),
    }


def _evaluation_rows(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in seeds:
        for name, records in s["journals"].items():
            curve = sc.best_error_so_far(records)
            elapsed = sc.elapsed_seconds(records)
            for r, best, t in zip(records, curve, elapsed, strict=True):
                rows.append(
                    {
                        "seed": s["seed"],
                        "strategy": name,
                        "index": r["index"],
                        "feasible": r["feasible"],
                        "val_accuracy": r["metrics"]["accuracy"],
                        "energy_mj_estimated": r["metrics"]["energy_mj"],
                        "seconds": r["seconds"],
                        "elapsed_s": t,
                        "best_feasible_error": best,
                        "stages": " | ".join(r["stages"]),
                    }
                )
    return rows


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    summary = results["summary"]
    head: dict[str, Any] = {"energy_label": results["energy_label"], "seeds": summary["seeds"]}
    for name in STRATEGIES:
        head[f"{name}_trained_infeasible"] = summary["strategies"][name]["trained_infeasible_total"]
    for other in OTHERS:
        head[f"max_time_to_best_ratio_vs_{other}"] = summary["ratios"][other]["ratio"]["max"]
        head[f"max_feasible_evals_per_hour_ratio_vs_{other}"] = summary["ratios"][other][
            "feasible_evals_per_hour_ratio"
        ]["max"]
    return head


def _ours(head: dict[str, Any]) -> str:
    """The headline as one sentence (the README's table)."""
    faster = head.get("max_time_to_best_ratio_vs_bo-unaware")
    evals = head.get("max_feasible_evals_per_hour_ratio_vs_bo-unaware")
    parts = [
        "up to " + (f"{faster:.1f}×" if faster else "–") + " faster to unaware BO's best",
        "up to " + (f"{evals:.1f}×" if evals else "–") + " more feasible evaluations per hour",
        f"infeasible trained: aware {head['bo_trained_infeasible']}, unaware "
        f"{head['bo-unaware_trained_infeasible']}, random {head['random_trained_infeasible']} "
        f"({head['seeds']} seeds)",
    ]
    return "; ".join(parts)


EXPERIMENT = register_experiment(
    Experiment(
        name="hyperpower",
        title="constraint-aware vs unaware BO vs random: best feasible error vs evaluations/time",
        paper=PAPER,
        add_arguments=add_arguments,
        run=run,
        claim="up to 30.12× faster to the best error, 57.20× more evaluations",
        ours=_ours,
    )
)
