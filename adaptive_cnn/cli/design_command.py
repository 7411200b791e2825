"""``acnn design``: search a cascade under a device energy budget, then train and test it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from adaptive_cnn.cli.progress import ProgressLine
from adaptive_cnn.cli.tables import format_table, human_count

CONFIG_FILE = "config.yaml"
_FLAGS = {  # flag attribute -> DesignConfig field
    "min_accuracy": "min_accuracy",
    "max_bytes": "max_bytes",
    "dataset": "dataset",
    "data_dir": "data_dir",
    "stages": "local_stages",
    "family": "families",
    "link": "link",
    "device": "device",
    "predictor": "predictor",
    "mode": "mode",
    "strategy": "strategy",
    "trials": "trials",
    "initial_points": "initial_points",
    "candidates": "candidates",
    "seed": "seed",
    "split_seed": "split_seed",
    "proxy_epochs": "proxy_epochs",
    "proxy_subset": "proxy_subset",
    "final_epochs": "final_epochs",
    "cloud_arch": "cloud_arch",
    "cloud_epochs": "cloud_epochs",
    "cloud_latency_ms": "cloud_latency_ms",
    "threads": "threads",
    "rerank": "rerank",
    "method": "method",
    "search_epochs": "search_epochs",
    "warmup_epochs": "warmup_epochs",
    "lambda_trials": "lambda_trials",
    "initial_lambda": "initial_lambda",
    "cost_form": "cost_form",
    "stage1_share": "stage1_share",
    "search_width": "search_width",
    "finetune_epochs": "finetune_epochs",
    "last_stage": "last_stage",
}


def add_parser(commands) -> None:
    p = commands.add_parser(
        "design",
        help="design a cascade (local CNNs + cloud) under a per-image energy budget",
        description=(
            "Search the architectures of the local networks and the exit thresholds of an "
            "adaptive cascade with Bayesian optimisation, maximising validation accuracy "
            "subject to the device energy per image (predicted by the layer-wise model), "
            "bytes sent per image and the device's memory limit. Candidates predicted to "
            "break a budget are never trained. The best design is then trained fully and "
            "evaluated once on the test split. With --method single-path, the first stage "
            "is found instead by a single-path superkernel search over the mbconv family "
            "with the predicted energy as a differentiable cost (Single-Path NAS)."
        ),
    )
    p.add_argument(
        "--budget",
        metavar="ENERGY",
        help="device energy per image with a unit: 2mJ, 500uJ, 0.002J (bare = mJ)",
    )
    p.add_argument(
        "--min-accuracy",
        type=float,
        metavar="X",
        help="minimise energy subject to validation accuracy >= X (a fraction, 0-1) "
        "instead; judged on the fully trained shortlist, --budget stays a hard limit",
    )
    p.add_argument(
        "--max-bytes",
        metavar="BYTES",
        help="mean bytes sent to the cloud per image at most (e.g. 200, 1kB)",
    )
    p.add_argument("--dataset", help="dataset name (default fashion-mnist; acnn datasets)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's files")
    p.add_argument("--stages", type=int, metavar="N", help="local networks, 1-3 (default 2)")
    p.add_argument(
        "--family",
        action="append",
        metavar="NAME",
        help="network family of the local stages (repeat: one per stage; default conv)",
    )
    p.add_argument(
        "--link",
        choices=("wifi", "lte", "3g", "none"),
        help="radio link to the cloud stage; none = all-local (default wifi)",
    )
    p.add_argument("--device", help="device profile name or YAML (default local; acnn devices)")
    p.add_argument(
        "--predictor",
        metavar="FILE",
        help="energy predictor (acnn fit-energy); default: this machine's, "
        "profiled once and cached",
    )
    p.add_argument(
        "--mode",
        choices=("inner", "joint"),
        help="inner: thresholds solved per candidate; joint: searched (default inner)",
    )
    p.add_argument(
        "--strategy",
        choices=("bo", "bo-unaware", "random"),
        help="bo: constraint-aware Bayesian optimisation (default)",
    )
    p.add_argument("--trials", type=int, metavar="N", help="designs evaluated (default 20)")
    p.add_argument("--initial-points", type=int, metavar="N", help="random designs first")
    p.add_argument(
        "--candidates",
        type=int,
        metavar="N",
        help="candidates scored by the acquisition per step (default 300)",
    )
    p.add_argument("--seed", type=int, help="seed of the search and of training (default 0)")
    p.add_argument("--split-seed", type=int, help="seed of the validation split (default 0)")
    p.add_argument(
        "--proxy-epochs",
        type=float,
        metavar="N",
        help="training epochs per network during the search (default 1)",
    )
    p.add_argument(
        "--proxy-subset",
        type=int,
        metavar="IMAGES",
        help="training images per network during the search (default 12000)",
    )
    p.add_argument(
        "--final-epochs",
        type=float,
        metavar="N",
        help="training epochs of the chosen design (default 3)",
    )
    p.add_argument(
        "--last-stage",
        metavar="ARCH",
        help="fix the last local stage to this network (an architecture string, or "
        "small/medium/large: that family's reference) and search the stages before it; "
        "it is trained once with --final-epochs (default: every stage searched)",
    )
    p.add_argument("--cloud-arch", metavar="STR", help="the cloud model's architecture")
    p.add_argument("--cloud-epochs", type=float, metavar="N", help="its training epochs")
    p.add_argument(
        "--cloud-latency-ms",
        type=float,
        metavar="MS",
        help="the cloud's inference time per image the device waits (default 5)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads per training (default: torch's; with --workers, cores/N)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="candidates trained at once in N local processes (default 1: in-process)",
    )
    p.add_argument(
        "--executor",
        metavar="URL",
        help="train candidates on a Dask cluster: dask://HOST:PORT (the training cache "
        "folder must be shared with its workers)",
    )
    p.add_argument(
        "--rerank",
        type=int,
        metavar="K",
        help="train the K best searched designs (and the feasible reference cascades) "
        "fully and keep the best on validation (default 3; 1 = the search's best as is)",
    )
    p.add_argument(
        "--no-reference-seeds",
        action="store_true",
        help="start the search from random designs only, not from the family's hand-picked "
        "reference cascades",
    )
    sp = p.add_argument_group("single-path search (--method single-path)")
    sp.add_argument(
        "--method",
        choices=("bo", "single-path"),
        help="bo: Bayesian optimisation over whole cascades (default); single-path: stage 1 "
        "by a superkernel search of the mbconv family, later stages its reference networks",
    )
    sp.add_argument(
        "--search-epochs",
        type=float,
        metavar="N",
        help="supernet training epochs per search, warm-up included, on --proxy-subset "
        "images (default 4)",
    )
    sp.add_argument(
        "--warmup-epochs",
        type=float,
        metavar="N",
        help="leading epochs in which only the weights train, thresholds frozen (default 1)",
    )
    sp.add_argument(
        "--lambda-trials",
        type=int,
        metavar="N",
        help="searches of the automatic energy weight lambda, at most (default 4)",
    )
    sp.add_argument(
        "--initial-lambda",
        type=float,
        metavar="X",
        help="lambda of the first search, the weight of the energy term (default 0.5)",
    )
    sp.add_argument(
        "--cost-form",
        choices=("log", "budget"),
        help="energy term of the search loss: log = lambda x ln(energy in mJ) (default); "
        "budget = lambda x max(0, ln(energy / stage-1 budget)), after which the found "
        "network is fitted into the budget by dropping its weakest choices, so one "
        "--lambda-trials can do",
    )
    sp.add_argument(
        "--stage1-share",
        type=float,
        metavar="X",
        help="share (0-1] of --budget the first network may cost (default 1 for a lone "
        "local network, 0.5 when other stages follow)",
    )
    sp.add_argument(
        "--search-width",
        type=float,
        choices=(0.5, 0.75, 1.0, 1.5),
        metavar="W",
        help="width multiplier of the supernet: 0.5, 0.75, 1.0 or 1.5 (default: the widest "
        "whose cheapest network costs at most half the stage-1 budget)",
    )
    sp.add_argument(
        "--finetune-epochs",
        type=float,
        metavar="E",
        help="start the found network from the supernet's weights and train it E epochs "
        "(fractions allowed) instead of --final-epochs from scratch (default: from scratch)",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML of design settings")
    p.add_argument(
        "--time-limit",
        metavar="DURATION",
        help=(
            "finish the run in about this long (e.g. 12min, from the start): the search "
            "stops early enough to leave the best design's and the baselines' final "
            "training their time, estimated from each network's proxy training; "
            "re-ranking skips designs whose final training would not fit"
        ),
    )
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (default runs/design)")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run with its saved settings",
    )
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="training cache folder")
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the fixed baselines (single networks, big/little, all-cloud)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run_design)


def resolve_config(args: argparse.Namespace):
    """The design settings: a saved run's (resume), else file < flags."""
    from adaptive_cnn.design import DesignConfig
    from adaptive_cnn.errors import ConfigError
    from energy_models.units import parse_bytes, parse_energy_mj

    if args.resume:
        return DesignConfig.from_dict(_read_yaml(args.resume / CONFIG_FILE))
    values = _read_yaml(args.config) if args.config else {}
    for flag, field in _FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            values[field] = tuple(value) if field == "families" else value
    if args.no_reference_seeds:
        values["reference_seeds"] = False
    if values.get("method") == "single-path" and "families" not in values:
        values["families"] = ("mbconv",)  # the only family the superkernel covers
    if args.budget is not None:
        values["budget_mj"] = parse_energy_mj(args.budget)
    elif isinstance(values.get("budget_mj"), str):
        values["budget_mj"] = parse_energy_mj(values["budget_mj"])
    if args.max_bytes is not None:
        values["max_bytes"] = float(parse_bytes(args.max_bytes))
    if values.get("budget_mj") is None and values.get("min_accuracy") is None:
        raise ConfigError("give an energy budget (--budget 2mJ) or --min-accuracy")
    return DesignConfig.from_dict(values)


def _read_yaml(path: Path) -> dict:
    from adaptive_cnn.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of design settings")
    return data


def run_design(args: argparse.Namespace) -> int:
    from adaptive_cnn.design import make_executor
    from adaptive_cnn.design.time_budget import Deadline
    from adaptive_cnn.errors import ConfigError
    from energy_models.units import parse_duration_s

    config = resolve_config(args)
    run_dir = args.resume or args.out or Path("runs/design")
    if not args.resume and (run_dir / "journal.jsonl").exists():
        raise ConfigError(f"{run_dir} holds a search already: --resume {run_dir} or a new --out")
    deadline = None
    if args.time_limit and config.method == "single-path":
        raise ConfigError(
            "--time-limit bounds --method bo; the single-path search's length is set by "
            "--search-epochs and --lambda-trials"
        )
    if args.time_limit:
        deadline = Deadline(time.monotonic() + parse_duration_s(args.time_limit), time.monotonic)
    plan = make_executor(args.executor, args.workers, config.threads)  # fail fast
    with plan.executor:
        summary = _design(args, config, run_dir, plan, deadline)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_result(summary, run_dir))
    return 0


def _design(args: argparse.Namespace, config, run_dir: Path, plan, deadline) -> dict:
    """Search (resuming the journal), then train, test and write the chosen design."""
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.design import CostModel, Designer, default_predictor, finalise
    from adaptive_cnn.design.final_choice import final_reserve_s
    from adaptive_cnn.design.result import trained_after_choice
    from adaptive_cnn.training import TrainingCache, default_cache_dir
    from energy_models.devices import load_device
    from energy_models.predictor import EnergyPredictor

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    cache_root = args.cache_dir or default_cache_dir()
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.split_seed)
    device = load_device(config.device)
    bars = None if args.quiet else ProgressLine
    predictor = EnergyPredictor.load(
        config.predictor or default_predictor(device, cache_root, say, bars)
    )
    costs = CostModel(
        predictor,
        device,
        config.link,
        dataset.input_shape,
        dataset.num_classes,
        config.cloud_latency_ms,
    )
    bar = ProgressLine("design  ", enabled=not args.quiet)
    designer = Designer(config, dataset, costs, TrainingCache(cache_root), run_dir, bar.update)
    if config.method == "single-path":
        from adaptive_cnn.single_path.design import design_single_path

        return design_single_path(designer, not args.no_baselines, say).summary
    done = designer.resume() if args.resume else 0
    if done:
        say(f"resuming {run_dir}: {done} finished evaluations re-told, none re-trained")
    if config.has_cloud:
        say(
            f"training the cloud model {config.cloud_arch} ({config.cloud_epochs:g} epochs; "
            "once, then cached)"
        )
        designer.cloud_probs("val")
    say(
        f"searching {config.trials} designs ({config.strategy}, {config.mode} thresholds) on "
        f"{dataset.name}, {plan.description}; energy per image {costs.predictor.source}"
    )
    then = trained_after_choice(designer, not args.no_baselines)
    designer.run(deadline, plan, lambda: final_reserve_s(designer, then))
    bar.close()
    if deadline is not None and len(designer.evaluations) < config.trials:
        say(
            f"stopped searching after {len(designer.evaluations)} of {config.trials} "
            "evaluations to leave the final training its estimated time (--time-limit)"
        )
    say(
        f"training the best design fully ({config.final_epochs:g} epochs)"
        + ("" if args.no_baselines else " and the baselines")
        + "; testing once"
    )
    return finalise(designer, not args.no_baselines, say, deadline).summary


def format_result(s: dict, run_dir: Path) -> str:
    """The human-readable result: the stages, then the cascade's figures."""
    rows = []
    for i, stage in enumerate(s["stages"], start=1):
        rows.append(
            (
                i,
                stage["where"],
                stage["arch"],
                f"{stage['energy_mj']:.3g}",
                human_count(stage.get("macs", 0)) if "macs" in stage else "-",
                f"{s['exit_fractions'][i - 1]:.1%}",
            )
        )
    label = s["energy_source"]
    lines = [
        format_table(
            ("stage", "where", "architecture", f"mJ ({label})", "MACs", "exits here"), rows
        ),
        "",
        f"thresholds ({s['policy']['metric']}): " + ", ".join(f"{t:.4f}" for t in s["thresholds"]),
        f"test accuracy {s['test_accuracy']:.2%} (validation {s['val_accuracy']:.2%}); "
        f"energy {s['energy_mj']:.3g} mJ/image ({label}){_val_energy(s)} vs budget "
        f"{s['budget_mj'] if s['budget_mj'] is not None else '-'} mJ; oracle "
        f"{s['oracle']['energy_mj']:.3g} mJ at {s['oracle']['test_accuracy']:.2%}",
        f"offload rate {s['offload_rate']:.1%}, {s['bytes_per_image']:.1f} bytes/image; "
        f"{s['evaluations']} evaluations, {s['trained_infeasible']} trained infeasible",
        f"energy: {s['energy_note']}",
        *_skipped_lines(s.get("rerank_skipped", [])),
        *_single_path_lines(s.get("single_path")),
        *_baseline_lines(s.get("baselines", [])),
        f"wrote {run_dir}/design.yaml, result.json, search.csv, pareto.csv, baselines.csv, "
        "stage*.pt, cloud.pt",
    ]
    return "\n".join(lines)


def _val_energy(s: dict) -> str:
    """The validation energy (where the budget binds), when the result records it."""
    val = s.get("val_energy_mj")
    return "" if val is None else f" on test, {val:.3g} on validation"


def _skipped_lines(rows: list[dict]) -> list[str]:
    """The re-rank candidates --time-limit left untrained, if any."""
    return [
        f"not re-ranked (--time-limit): {' -> '.join(r['stages'])}, about "
        f"{r['estimated_seconds'] / 60:.1f} min of final training estimated"
        for r in rows
    ]


def _single_path_lines(sp: dict | None) -> list[str]:
    if not sp:
        return []
    lambdas = ", ".join(
        f"{t['lambda']:.3g} -> {t['energy_mj']:.3g} mJ / {t['val_accuracy']:.1%}"
        + (
            f" (fitted from {t['raw_energy_mj']:.3g} mJ, {len(t['dropped'])} choices dropped)"
            if t.get("dropped")
            else ""
        )
        for t in sp["trials"]
    )
    return [
        f"single-path search: {sp['search_epochs']:g} epochs, {sp['search_seconds']:.1f} s "
        f"(width {sp['width']:g}); lambda {sp['lambda']:.3g} chosen of: {lambdas} "
        f"(supernet validation accuracy, {sp['energy_label']} energy)"
    ]


def _baseline_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    table = [
        (
            r["system"],
            f"{r['test_accuracy']:.2%}",
            f"{r['energy_mj']:.3g}",
            f"{r['offload_rate']:.1%}",
            "yes" if r["feasible_on_val"] else "no",
        )
        for r in rows
    ]
    headers = ("baseline", "test acc", "mJ/image", "offloaded", "meets constraints")
    return ["", format_table(headers, table)]


def add_report_parser(commands) -> None:
    p = commands.add_parser(
        "report",
        help="tables and PNG plots of a finished design run",
        description=(
            "Print a design run's result, baselines and search, and write search.png (best "
            "feasible validation accuracy vs evaluations) and plane.png (energy per image vs "
            "accuracy: evaluated designs, Pareto front, baselines, the design, the oracle)."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder of `acnn design`")
    p.add_argument("--json", action="store_true", help="print the result JSON instead")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from adaptive_cnn.design.report import best_so_far, load_run, write_plots

    result, journal = load_run(args.run_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_result(result, args.run_dir))
    curve = best_so_far(journal)
    reached = [
        f"{i + 1}: {100 * v:.2f}%" for i, v in enumerate(curve) if i == 0 or v != curve[i - 1]
    ]
    print("\nbest feasible validation accuracy by evaluation: " + ", ".join(reached))
    for path in write_plots(args.run_dir, result, journal):
        print(f"wrote {path}")
    return 0
