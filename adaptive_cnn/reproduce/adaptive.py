"""Experiment ``adaptive``: device energy per image vs accuracy of adaptive cascades.

Per seed, on the same dataset, device predictor and budget rule as
``benchmarks/design_quality.py`` (budget = the best single network's predicted energy /
2.5): the family's single reference networks; big/little pairs of them (fixed hand-picked
networks, the prior black-box approach); acnn's designs with 2 and 3 local stages (the
constraint-aware BO search, re-ranked at full training); all-cloud and the design's local
stages followed by the cloud model over each link. Every cascade gets the thresholds of
least energy whose validation accuracy is within ``--iso-points`` of the best single's;
the test split gives its accuracy and energy, and the oracle bound of its networks is
taken at that accuracy. Energies are the layer-wise predictor's (estimates) and the
communication model's. The searches journal to ``--run-dir`` and are reused from there.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from adaptive_cnn import flag_values as values
from adaptive_cnn.reproduce import design_runs as dr
from adaptive_cnn.reproduce.iso_accuracy import (
    SystemPoint,
    best_reduction,
    cheapest_at_iso,
    energy_ratio,
)
from adaptive_cnn.reproduce.registry import Experiment, ReproduceError, register_experiment
from adaptive_cnn.reproduce.writer import ResultWriter

PAPER = (
    "Stamoulis et al., Designing Adaptive Neural Networks for Energy-Constrained Image "
    "Classification (ICCAD 2018): up to 6x less energy than big/little at iso-accuracy"
)
PAPER_REDUCTION = 6.0
LINKS = ("wifi", "lte", "3g")
DESIGN_KINDS = ("acnn", "local+cloud")


def add_arguments(p: argparse.ArgumentParser) -> None:
    dr.add_search_arguments(p, "seeds (default 0 1 2; --quick 0)")
    p.add_argument(
        "--stages",
        type=values.int_in(1, 3),
        nargs="+",
        default=[2, 3],
        metavar="N",
        help="local stages of acnn's designs, one search each (default 2 3)",
    )
    p.add_argument(
        "--links",
        nargs="+",
        default=list(LINKS),
        metavar="NAME",
        help="links of the all-cloud and local+cloud systems (default wifi lte 3g)",
    )
    p.add_argument(
        "--cloud-latency-ms",
        type=values.non_negative_float,
        default=5.0,
        metavar="MS",
        help="the cloud model's inference time per image, ms (default 5; the device idles)",
    )


def run(args: argparse.Namespace, out: ResultWriter) -> dict[str, Any]:
    from adaptive_cnn.reproduce.adaptive_report import plot_plane, render_table

    settings = dr.settings_from_args(args)
    if any(not 1 <= n <= 3 for n in args.stages) or len(set(args.stages)) != len(args.stages):
        raise ReproduceError(f"--stages takes distinct numbers in 1-3, got {args.stages}")
    run_root = args.run_dir or out.out / "searches"
    bench, predictor = dr.open_bench(settings, args, run_root, out.say)
    links = _link_costs(bench, predictor, args)
    out.resolve(
        settings=vars(settings) | {"seeds": list(settings.seeds)},
        run_dir=run_root,
        predictor=bench.predictor_path,
    )
    seeds = [run_seed(bench, seed, args.stages, links) for seed in settings.seeds]
    results = {
        "paper": PAPER,
        "energy_label": dr.energy_label(predictor),
        "energy_note": _energy_note(predictor, links, bench.costs.device),
        "iso_points": settings.iso_points,
        "iso_margin": settings.iso_margin,
        "seeds": seeds,
        "summary": summarise(seeds),
    }
    out.write_json("results.json", results)
    out.write_csv("systems.csv", [_csv_row(s["seed"], r) for s in seeds for r in s["systems"]])
    out.write_text("table.md", render_table(results))
    out.save_figure("plane.png", plot_plane(results))
    return {"energy_label": results["energy_label"], **results["summary"]}


def _link_costs(bench, predictor, args) -> dict[str, Any]:
    """A cost model per link; a link the device profile lacks comes from links.yaml."""
    import dataclasses

    from adaptive_cnn.design import CostModel
    from energy_models.devices import load_links

    data, device = bench.dataset, bench.costs.device
    catalog = load_links()
    unknown = [n for n in args.links if n not in device.links and n not in catalog]
    if unknown:
        known = ", ".join(sorted({*device.links, *catalog}))
        raise ReproduceError(f"--links: unknown link(s) {', '.join(unknown)}; known: {known}")
    extra = {n: catalog[n] for n in args.links if n not in device.links}
    device = dataclasses.replace(device, links={**device.links, **extra})
    return {
        link: CostModel(
            predictor,
            device,
            link,
            data.input_shape,
            data.num_classes,
            cloud_latency_ms=args.cloud_latency_ms,
        )
        for link in args.links
    }


def run_seed(bench: dr.DesignBench, seed: int, stage_counts, links) -> dict[str, Any]:
    """Every system of one seed, with its iso-accuracy ratios."""
    from adaptive_cnn.design.config import DesignConfig

    singles = bench.singles(seed)
    best, budget, target = bench.budget(singles)
    bench.say(f"seed {seed}: best single {best}, budget {budget:.4g} mJ (estimated)")
    systems = [_single_row(name, row) for name, row in singles.items()]
    best_result = bench.final(bench.refs[best], seed)  # the iso-accuracy margin's reference
    for a, b in dr.PAIRS:
        archs = [bench.refs[a], bench.refs[b]]
        results = [bench.final(x, seed) for x in archs]
        row = bench.iso_system(
            results, bench.costs.stage_costs(archs), target, reference=best_result
        )
        systems.append(_row(f"big/little {a}/{b}", "big-little", archs, row))
    designs = {}
    for n in stage_counts:
        designs[n] = _design(bench, seed, n, budget)
        costs = bench.costs.stage_costs(designs[n][0])
        row = bench.iso_system(designs[n][1], costs, target, True, reference=best_result)
        systems.append(_row(f"acnn {n} stages", "acnn", designs[n][0], row, designs[n][2]))
    cloud_arch = DesignConfig.cloud_arch
    cloud = bench.final(cloud_arch, seed)
    for link, costs in links.items():
        energy = costs.cloud()[0]
        systems.append(_cloud_row(link, cloud_arch, cloud, energy))
        for n, (stages, results, _) in designs.items():
            row = bench.iso_system(
                [*results, cloud], costs.stage_costs(stages), target, True, reference=best_result
            )
            name = f"acnn {n} stages + cloud {link}"
            systems.append(_row(name, "local+cloud", [*stages, f"cloud:{cloud_arch}"], row))
    reference = singles[best]["test_accuracy"]
    add_ratios(systems, reference, bench.settings.iso_points)
    return {
        "seed": seed,
        "budget_mj": budget,
        "target_ratio": bench.settings.target_ratio,
        "best_single": best,
        "reference_test_accuracy": reference,
        "target_val_accuracy": target,
        "systems": systems,
        "headline": headline(systems, reference, bench.settings.iso_points),
    }


def _design(bench: dr.DesignBench, seed: int, n: int, budget: float):
    """acnn's design with ``n`` local stages: search (journalled), re-rank, final networks."""
    from adaptive_cnn.design.final_choice import choose_final

    name = "bo" if n == 2 else f"bo-{n}stages"  # "bo" is design_quality's 2-stage search
    designer = bench.search(seed, name, "bo", "inner", budget, stages=n)
    choice = choose_final(designer, lambda text: bench.say(f"seed {seed} {name}: {text}"))
    chosen, ranked = choice.best, choice.ranked
    search = {
        "journal": str(bench.run_root / f"seed{seed}" / name),
        "evaluations": len(designer.evaluations),
        "trained_infeasible": designer.trained_infeasible,
        "reranked": [c.to_row() for c in ranked],
    }
    return chosen.stages, chosen.results, search


def _cloud_row(link: str, arch: str, cloud, energy_mj: float) -> dict[str, Any]:
    return {
        "system": f"all-cloud {link}",
        "kind": "cloud",
        "stages": [f"cloud:{arch}"],
        "test_accuracy": cloud.test_accuracy,
        "val_accuracy": cloud.val_accuracy,
        "energy_mj": energy_mj,
        "offload_rate": 1.0,
    }


def _single_row(name: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "system": f"single {name}",
        "kind": "single",
        "stages": [row["arch"]],
        "test_accuracy": row["test_accuracy"],
        "val_accuracy": row["val_accuracy"],
        "energy_mj": row["energy_mj"],
        "offload_rate": 0.0,
    }


def _row(name: str, kind: str, stages, iso: dict[str, Any], search=None) -> dict[str, Any]:
    row = {"system": name, "kind": kind, "stages": list(stages), **iso}
    if search is not None:
        row["search"] = search
    return row


def _point(row: dict[str, Any]) -> SystemPoint:
    return SystemPoint(row["system"], row["kind"], row["energy_mj"], row["test_accuracy"])


def add_ratios(systems: list[dict[str, Any]], reference: float, tolerance: float) -> None:
    """Mark each system at iso-accuracy or not, and its energy ratios (in place)."""
    from adaptive_cnn.reproduce.iso_accuracy import at_iso

    points = [_point(r) for r in systems]
    single = cheapest_at_iso([p for p in points if p.kind == "single"], reference, tolerance)
    pair = cheapest_at_iso([p for p in points if p.kind == "big-little"], reference, tolerance)
    for row, p in zip(systems, points, strict=True):
        row["iso"] = at_iso(p, reference, tolerance)
        row["x_vs_best_single"] = energy_ratio(single, p, reference, tolerance)
        row["x_vs_best_big_little"] = energy_ratio(pair, p, reference, tolerance)
        if "oracle" in row:
            row["design_over_oracle"] = row["energy_mj"] / max(row["oracle"]["energy_mj"], 1e-12)
    for row in systems:
        row["best_single_at_iso"] = single.name if single else None
        row["best_big_little_at_iso"] = pair.name if pair else None


def headline(systems: list[dict[str, Any]], reference: float, tolerance: float) -> dict:
    """The largest energy reduction of acnn's designs over the best big/little, at iso."""
    points = [_point(r) for r in systems]
    designs = [p for p in points if p.kind in DESIGN_KINDS]
    pairs = [p for p in points if p.kind == "big-little"]
    singles = [p for p in points if p.kind == "single"]
    vs_pair = best_reduction(designs, pairs, reference, tolerance)
    vs_single = best_reduction(designs, singles, reference, tolerance)
    return {
        "reduction_vs_big_little": vs_pair[0],
        "design": vs_pair[1].name if vs_pair[1] else None,
        "best_big_little": vs_pair[2].name if vs_pair[2] else None,
        "reduction_vs_single": vs_single[0],
        "design_vs_single": vs_single[1].name if vs_single[1] else None,
    }


def summarise(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and largest reductions over seeds (None where no seed had a ratio)."""
    import statistics

    out: dict[str, Any] = {"seeds": len(seeds), "paper_reduction_vs_big_little": PAPER_REDUCTION}
    for key in ("reduction_vs_big_little", "reduction_vs_single"):
        values = [s["headline"][key] for s in seeds if s["headline"][key] is not None]
        out[f"median_{key}"] = statistics.median(values) if values else None
        out[f"max_{key}"] = max(values) if values else None
        out[f"seeds_with_{key}"] = len(values)
    return out


def _csv_row(seed: int, row: dict[str, Any]) -> dict[str, Any]:
    oracle = row.get("oracle") or {}
    return {
        "seed": seed,
        "system": row["system"],
        "kind": row["kind"],
        "stages": " | ".join(row["stages"]),
        "test_accuracy": row["test_accuracy"],
        "energy_mj_estimated": row["energy_mj"],
        "offload_rate": row.get("offload_rate"),
        "iso": row["iso"],
        "x_vs_best_single": row["x_vs_best_single"],
        "x_vs_best_big_little": row["x_vs_best_big_little"],
        "oracle_energy_mj": oracle.get("energy_mj"),
        "design_over_oracle": row.get("design_over_oracle"),
    }


def _energy_note(predictor, links, device) -> str:
    added = [n for n in links if n not in device.links]
    names = ", ".join(links) or "none"
    if added:
        names += f"; {', '.join(added)} from links.yaml, not in the {device.name} profile"
    return (
        f"local energies are the {predictor.source}; cloud stages cost the "
        f"communication model's radio energy plus the device's idle energy while it waits "
        f"(links: {names})"
    )


def _ours(head: Mapping[str, Any]) -> str:
    """The headline as one sentence (the README's table)."""

    def x(key: str) -> str:
        value = head.get(key)
        return "–" if value is None else f"{value:.2f}×"

    return (
        f"{x('median_reduction_vs_big_little')} less energy than the best big/little "
        f"(largest {x('max_reduction_vs_big_little')}), {x('median_reduction_vs_single')} "
        f"than the best single network, at iso-accuracy (median of {head['seeds']} seeds)"
    )


EXPERIMENT = register_experiment(
    Experiment(
        name="adaptive",
        title="energy/accuracy: singles, big/little, acnn 2-3 stages, cloud; iso-accuracy ratios",
        paper=PAPER,
        add_arguments=add_arguments,
        run=run,
        claim="up to 6× less energy than big/little at iso-accuracy",
        ours=_ours,
    )
)
