"""Design quality of `acnn design`: iso-accuracy energy against fixed systems, and the
search's efficiency (constraint-aware BO vs constraint-unaware BO vs random; joint vs
inner thresholds), over several seeds.

Per seed, on the real dataset, with this machine's energy predictor (device energy is an
*estimate* wherever the predictor's power is declared; every output says so):

1. the family's single reference networks (small/medium/large) are trained with the final
   budget; the **best single** is the most accurate on validation. The search budget is
   its predicted energy divided by ``--target-ratio``;
2. four searches run on the same budget and proxy training: ``bo`` (constraint-aware,
   inner thresholds), ``bo-unaware``, ``random`` and ``bo-joint`` (thresholds searched),
   each starting from the family's reference cascades unless ``--no-reference-seeds``;
   each journals to ``OUT_DIR/seedS/NAME`` and resumes if re-run (a journal made with
   other settings is refused, never mixed in; the searches and trainings are
   :class:`~adaptive_cnn.reproduce.design_runs.DesignBench`'s, as ``acnn reproduce`` runs them);
3. the aware search's ``--rerank`` best designs are trained with the final budget and the
   best on validation is the design (as ``acnn design`` chooses); its networks, like
   every fixed big/little pair of reference networks, get the thresholds of least energy
   whose validation accuracy is within ``--iso-points`` of the best single's (iso-accuracy),
   that target raised by ``--iso-margin`` (default: the standard error of the cascade's
   accuracy minus the best single's on the validation images, so that the iso-accuracy
   holds on unseen images); the test split then gives accuracy and energy. The oracle
   bound for the design's own networks is taken at the design's test accuracy.

Prints tables and writes one JSON file with every figure, the settings and the machine,
and a PNG of best feasible validation accuracy vs evaluations (every search, every seed).
The search and training options, their checks and the loading of dataset, device and
predictor are ``acnn reproduce``'s (:mod:`adaptive_cnn.reproduce.design_runs`), with this
benchmark's own defaults (:data:`DEFAULTS`); only the measurement is here.

    python benchmarks/design_quality.py [--seeds 0 1 2] [--trials 12] [--out FILE]
    python benchmarks/design_quality.py --render FILE.json   # tables and plot again
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from adaptive_cnn.design.final_choice import choose_final
from adaptive_cnn.progress import ProgressLine
from adaptive_cnn.reproduce.design_runs import (
    PAIRS,
    DesignBench,
    add_search_arguments,
    energy_label,
    open_bench,
    settings_from_args,
)
from adaptive_cnn.reproduce.registry import ReproduceError
from selector import CascadeData, oracle

SEARCHES = {  # name -> (strategy, threshold mode)
    "bo": ("bo", "inner"),
    "bo-unaware": ("bo-unaware", "inner"),
    "random": ("random", "inner"),
    "bo-joint": ("bo", "joint"),
}
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]
PATH_SETTINGS = ("predictor", "run_dir", "cache_dir")
#: this benchmark's defaults where they differ from acnn reproduce's (design_runs.FULL):
#: longer searches, larger proxy subsets, and torch's default thread count
DEFAULTS = {"trials": 16, "proxy_subset": 6000, "threads": None}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the searches' and trainings' settings, as acnn reproduce declares them (defaults:
    # this benchmark's own, DEFAULTS)
    add_search_arguments(p, "seeds (default 0 1 2)", DEFAULTS)
    p.add_argument("--stages", type=int, default=2, help="local stages (default: 2)")
    p.add_argument(
        "--searches",
        nargs="+",
        choices=tuple(SEARCHES),
        default=list(SEARCHES),
        help="the searches to run (default all; bo, the design's, always runs)",
    )
    p.add_argument(
        "--search-objective",
        choices=("budget", "iso"),
        default="budget",
        help="budget (default): the searches maximise validation accuracy under the budget; "
        "iso: they minimise energy at the iso-accuracy target (validation), under the same "
        "budget, which is what the energy ratios measure",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "design_quality.json")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--render",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="re-print and re-plot a result; several (e.g. one per seed, run in parallel) "
        "are merged into --out",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        report = merge_reports([json.loads(path.read_text()) for path in args.render])
        target = args.render[0]
        if len(args.render) > 1:
            target = args.out
            target.write_text(json.dumps(report, indent=1) + "\n")
        print(format_report(report))
        print(f"wrote {plot_curves(report, target.with_suffix('.png'))}")
        return 0
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    bars = None if args.quiet else ProgressLine
    try:
        settings = settings_from_args(args, DEFAULTS)
        run_root = args.run_dir or args.out.with_suffix("")
        bench, predictor = open_bench(settings, args, run_root, say, bars)
        quality = Quality(bench, args.stages, args.searches, args.search_objective)
        started = time.monotonic()
        seeds = [quality.run_seed(seed) for seed in settings.seeds]
    except ReproduceError as exc:  # e.g. a journal of other settings under --run-dir
        print(f"design_quality: error: {exc}", file=sys.stderr)
        return 2
    report = {
        "benchmark": "design_quality",
        "energy_source": energy_label(predictor),
        "energy_note": predictor.source,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": _machine(),
        "seconds": round(time.monotonic() - started, 1),
        "seeds": seeds,
        "summary": summarise(seeds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(format_report(report))
    print(f"wrote {args.out} and {plot_curves(report, args.out.with_suffix('.png'))}")
    return 0


class Quality:
    """One seed's figures, measured on a :class:`DesignBench` (the searches, trainings
    and iso-accuracy thresholds ``acnn reproduce`` shares): the design against the fixed
    systems, and the efficiency of every search.

    Args:
        bench: the bench (settings, dataset, cost model, cache, journal root).
        stages: local stages of the searched designs.
        searches: the searches to run besides ``bo`` (names in :data:`SEARCHES`).
        objective: ``budget`` (maximise accuracy under the budget) or ``iso`` (minimise
            energy at the iso-accuracy target under it).
    """

    # a plain class, not a dataclass: the tests load this file without registering it
    # in sys.modules, which dataclasses need to resolve postponed annotations
    def __init__(
        self, bench: DesignBench, stages: int, searches: Sequence[str], objective: str
    ) -> None:
        self.bench, self.stages = bench, stages
        self.searches, self.objective = searches, objective

    def run_seed(self, seed: int) -> dict[str, Any]:
        bench = self.bench
        singles = bench.singles(seed)
        best_name, budget_mj, target = bench.budget(singles)
        best = singles[best_name]
        floor = target if self.objective == "iso" else None
        searches = {
            name: self.search_summary(seed, name, strategy, mode, budget_mj, floor)
            for name, (strategy, mode) in SEARCHES.items()
            if name == "bo" or name in self.searches
        }
        design_stages = searches["bo"].pop("best_stages")
        for s in searches.values():
            s.pop("best_stages", None)
        bench.say(f"seed {seed}: training the design {' | '.join(design_stages)} fully")
        reference = bench.final(bench.refs[best_name], seed)
        design = self.iso_cascade(design_stages, seed, target, reference, with_oracle=True)
        pairs = {
            f"{a}/{b}": self.iso_cascade([bench.refs[a], bench.refs[b]], seed, target, reference)
            for a, b in PAIRS
        }
        best_pair = min(pairs, key=lambda k: (not pairs[k]["iso_ok"], pairs[k]["energy_mj"]))
        return {
            "seed": seed,
            "budget_mj": budget_mj,
            "target_val_accuracy": target,
            "singles": singles,
            "best_single": best_name,
            "searches": searches,
            "design": design,
            "big_little": pairs,
            "best_big_little": best_pair,
            "ratios": {
                "single_over_design": best["energy_mj"] / design["energy_mj"],
                "big_little_over_design": pairs[best_pair]["energy_mj"] / design["energy_mj"],
                "design_over_oracle": design["energy_mj"] / design["oracle"]["energy_mj"],
                "design_test_minus_single_points": 100
                * (design["test_accuracy"] - best["test_accuracy"]),
            },
            "efficiency": efficiency(searches),
        }

    def search_summary(
        self, seed: int, name: str, strategy: str, mode: str, budget_mj: float, floor=None
    ):
        """Run (or resume) one search; its curve, counts and (for ``bo``) the design
        (``floor``: the searches minimise energy at this validation accuracy)."""
        say = self.bench.say
        designer = self.bench.search(seed, name, strategy, mode, budget_mj, self.stages, floor)
        ordered = designer.evaluations  # the first `trials`, in order
        curve, best = [], float("nan")
        for e in ordered:
            if e.feasible and not best >= e.metrics["accuracy"]:
                best = e.metrics["accuracy"]
            curve.append(best)
        feasible = [e for e in ordered if e.feasible]
        extra: dict[str, Any] = {"best_stages": None}
        if feasible and name == "bo":  # the design: the shortlist re-ranked at full training
            choice = choose_final(designer, lambda t: say(f"seed {seed} {name}: {t}"))
            extra = {
                "best_stages": choice.best.stages,
                "reranked": [c.to_row() for c in choice.ranked],
            }
        elif feasible:
            extra["best_stages"] = designer.best().stages
        return {
            "strategy": strategy,
            "mode": mode,
            "evaluations": len(ordered),
            "trained_infeasible": designer.trained_infeasible,
            "best_val_accuracy": max((e.metrics["accuracy"] for e in feasible), default=None),
            "best_so_far": [None if np.isnan(v) else v for v in curve],
            "train_seconds": sum(e.seconds for e in ordered),
            **extra,
        }

    def iso_cascade(self, stages, seed: int, target: float, reference, with_oracle=False):
        """Final-trained networks, thresholds of least energy reaching ``target`` on val
        (raised by the ``--iso-margin`` against ``reference``, the best single)."""
        bench = self.bench
        results = [bench.final(arch, seed) for arch in stages]
        costs = bench.costs.stage_costs(stages)
        row = bench.iso_system(results, costs, target, with_oracle, reference=reference)
        row.update(
            stages=list(stages),
            stage_test_accuracy=[r.test_accuracy for r in results],
            iso_ok=row["val_target_met"],
        )
        if with_oracle:
            labels = bench.dataset.test.labels
            test = CascadeData.from_probs([r.test_probs for r in results], labels, "margin")
            row["oracle_full"] = oracle(test, costs).to_dict()
        return row


def evals_to_reach(curve: list[float | None], level: float) -> int | None:
    """Evaluations until the best feasible accuracy first reaches ``level`` (None: never)."""
    for i, value in enumerate(curve):
        if value is not None and value >= level - 1e-12:
            return i + 1
    return None


def efficiency(searches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How fast constraint-aware BO reaches the other searches' best feasible accuracy."""
    aware = searches["bo"]["best_so_far"]
    out = {}
    for name in ("bo-unaware", "random", "bo-joint"):
        if name not in searches:  # not run (--searches)
            continue
        other = searches[name]
        level = other["best_val_accuracy"]
        if level is None:
            out[name] = {"level": None, "their_evals": None, "aware_evals": 1, "speedup": None}
            continue
        theirs = evals_to_reach(other["best_so_far"], level)
        ours = evals_to_reach(aware, level)
        out[name] = {
            "level": level,
            "their_evals": theirs,
            "aware_evals": ours,
            "speedup": theirs / ours if ours else None,
        }
    return out


def summarise(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over seeds, and each target as met or not."""

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    ratios = {k: median([s["ratios"][k] for s in seeds]) for k in seeds[0]["ratios"]}
    iso_ok = all(
        s["design"]["test_accuracy"] >= s["singles"][s["best_single"]]["test_accuracy"] - 0.005
        for s in seeds
    )
    infeasible = {
        name: [s["searches"][name]["trained_infeasible"] for s in seeds]
        for name in SEARCHES
        if all(name in s["searches"] for s in seeds)
    }
    best = {
        name: median([s["searches"][name]["best_val_accuracy"] for s in seeds])
        for name in infeasible
    }
    speedups = {
        name: median([s["efficiency"][name]["speedup"] for s in seeds])
        for name in ("bo-unaware", "random", "bo-joint")
        if name in infeasible
    }
    return {
        "median_ratios": ratios,
        "median_best_val_accuracy": best,
        "trained_infeasible": infeasible,
        "median_speedup_to_reach": speedups,
        "targets": {
            "iso_accuracy_on_test (all seeds)": iso_ok,
            # an energy ratio counts only at iso-accuracy
            "single_over_design >= 2.5 at iso-accuracy": iso_ok
            and (ratios["single_over_design"] or 0) >= 2.5,
            "big_little_over_design >= 1.2 at iso-accuracy": iso_ok
            and (ratios["big_little_over_design"] or 0) >= 1.2,
            "design_over_oracle <= 1.5": (ratios["design_over_oracle"] or 9) <= 1.5,
            "aware BO trains 0 infeasible": sum(infeasible["bo"]) == 0,
        },
    }


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of several runs' seeds (same settings but the seeds), summary redone.

    Raises:
        SystemExit: the runs differ in a setting other than the seeds and output paths.
    """
    ignored = {"seeds", "out", "render", "quiet"}

    def comparable(settings: dict[str, Any]) -> dict[str, Any]:
        # a path given relative to the repository root (where the benchmarks run) and
        # the same path given absolute are one setting
        return {
            k: str((ROOT / v).resolve()) if k in PATH_SETTINGS and isinstance(v, str) else v
            for k, v in settings.items()
            if k not in ignored
        }

    first = comparable(reports[0]["settings"])
    for other in reports[1:]:
        settings = comparable(other["settings"])
        if settings != first:
            differ = sorted(k for k in first.keys() | settings.keys()
                            if first.get(k) != settings.get(k))  # fmt: skip
            raise SystemExit(f"cannot merge runs whose settings differ: {', '.join(differ)}")
    seeds = sorted((s for r in reports for s in r["seeds"]), key=lambda s: s["seed"])
    if len({s["seed"] for s in seeds}) != len(seeds):
        raise SystemExit("cannot merge runs that share a seed")
    merged = dict(reports[0])
    merged["settings"] = {**reports[0]["settings"], "seeds": [s["seed"] for s in seeds]}
    merged["seconds"] = sum(r["seconds"] for r in reports)
    merged["seeds"], merged["summary"] = seeds, summarise(seeds)
    return merged


def format_report(report: dict[str, Any]) -> str:
    label = report["energy_source"]
    lines = [f"design quality ({label} device energy: {report['energy_note']})", ""]
    header = (
        f"{'seed':>4} {'best single':>26} {'design':>20} {'big/little':>20} {'oracle':>8}"
        f" {'x single':>8} {'x b/l':>6} {'/oracle':>7}"
    )
    lines.append(header)
    margin = report["settings"].get("iso_margin", "none")
    for s in report["seeds"]:
        single = s["singles"][s["best_single"]]
        d, pair = s["design"], s["big_little"][s["best_big_little"]]
        r = s["ratios"]
        lines.append(
            f"{s['seed']:>4} {s['best_single']:>6} {single['test_accuracy']:6.2%} "
            f"{single['energy_mj']:7.3f} mJ {d['test_accuracy']:6.2%} {d['energy_mj']:7.3f} mJ "
            f"{pair['test_accuracy']:6.2%} {pair['energy_mj']:7.3f} mJ "
            f"{d['oracle']['energy_mj']:8.3f} {r['single_over_design']:8.2f} "
            f"{r['big_little_over_design']:6.2f} {r['design_over_oracle']:7.2f}"
        )
    if margin == "paired-se":
        shown = ", ".join(f"{s['design'].get('val_margin_points', 0):.2f}" for s in report["seeds"])
        lines.append(
            "iso thresholds chosen on validation for the target raised by the paired standard "
            f"error (design, points per seed: {shown})"
        )
    else:
        lines.append("iso thresholds chosen on validation for the target as is (no margin)")
    lines += ["", f"{'seed':>4} {'search':>10} {'best val':>9} {'infeasible':>10} {'evals':>5}"]
    for s in report["seeds"]:
        for name, search in s["searches"].items():
            acc = search["best_val_accuracy"]
            shown = "none" if acc is None else f"{acc:.2%}"
            lines.append(
                f"{s['seed']:>4} {name:>10} {shown:>9} "
                f"{search['trained_infeasible']:>10} {search['evaluations']:>5}"
            )
    summary = summarise(report["seeds"])  # recomputed: --render applies today's rules
    lines += ["", "medians over seeds: " + json.dumps(summary["median_ratios"])]
    lines.append("aware BO speed-up to reach: " + json.dumps(summary["median_speedup_to_reach"]))
    lines += [f"  {'met' if ok else 'NOT met'}: {name}" for name, ok in summary["targets"].items()]
    return "\n".join(lines)


def plot_curves(report: dict[str, Any], path: Path) -> Path:
    """Best feasible validation accuracy vs evaluations: one line per search and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = dict(zip(SEARCHES, ("C0", "C3", "C7", "C2"), strict=True))
    for s in report["seeds"]:
        for name, search in s["searches"].items():
            curve = [np.nan if v is None else 100 * v for v in search["best_so_far"]]
            label = name if s is report["seeds"][0] else None
            x = np.arange(1, len(curve) + 1)
            ax.step(x, curve, where="post", color=colours[name], alpha=0.8, label=label)
    ax.set_xlabel("evaluations (candidate designs trained)")
    ax.set_ylabel("best feasible validation accuracy (%), proxy training")
    ax.set_title(
        f"search efficiency, {len(report['seeds'])} seeds ({report['energy_source']} energy)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": psutil.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
