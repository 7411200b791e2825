"""``acnn reproduce NAME``: run one reproduction experiment into results/NAME."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptive_cnn.tables import format_table

RESULTS_DIR = Path("results")
COMMON = ("experiment", "quick", "out", "quiet", "run", "command", "list", "update_readme")


def add_parser(commands) -> None:
    from adaptive_cnn.reproduce import list_experiments

    p = commands.add_parser(
        "reproduce",
        help="re-run a paper's experiment here: config, raw results, table.md, plots",
        description=(
            "Run one reproduction experiment and write config.json (resolved options, "
            "machine, versions, wall time), raw results (JSON/CSV), table.md and PNG plots "
            "into results/NAME. --quick uses small budgets (seconds to a minute). "
            "docs/REPRODUCTION.md compares the figures with the papers'. Energies without "
            "a power sensor are estimates from the device's declared power model."
        ),
    )
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument(
        "--update-readme",
        nargs="?",
        const=Path("README.md"),
        type=Path,
        metavar="README",
        help="rewrite README's generated block (headline table and experiment 1's plot) from "
        f"the finished runs under {RESULTS_DIR}/ and exit (default README.md)",
    )
    p.set_defaults(run=run_reproduce, experiment=None)
    experiments = p.add_subparsers(dest="experiment", metavar="NAME")
    for experiment in list_experiments():
        sub = experiments.add_parser(
            experiment.name,
            help=experiment.title,
            description=f"{experiment.title}. Reproduces {experiment.paper}.",
        )
        sub.add_argument(
            "--quick", action="store_true", help="small budgets: seconds to a minute (tests)"
        )
        sub.add_argument(
            "--out",
            type=Path,
            metavar="DIR",
            help=f"output folder (default: {RESULTS_DIR}/{experiment.name}; created)",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
        experiment.add_arguments(sub)


def run_reproduce(args: argparse.Namespace) -> int:
    from adaptive_cnn.reproduce import ReproduceError, ResultWriter, get_experiment

    if args.list:
        _print_list()
        return 0
    if args.update_readme is not None:
        from adaptive_cnn.reproduce.readme import update_readme

        if not args.update_readme.is_file():
            raise ReproduceError(f"--update-readme: no such file {args.update_readme}")
        changed = update_readme(args.update_readme, RESULTS_DIR)
        print(f"{args.update_readme}: {'updated' if changed else 'already up to date'}")
        return 0
    if args.experiment is None:
        raise ReproduceError("name an experiment (acnn reproduce NAME) or pass --list")
    experiment = get_experiment(args.experiment)
    out = args.out or RESULTS_DIR / experiment.name
    options = {k: v for k, v in vars(args).items() if k not in COMMON}
    options["quick"] = args.quick
    writer = ResultWriter(
        out, experiment.name, options, command=["acnn", *sys.argv[1:]], quiet=args.quiet
    )
    writer.say(f"{experiment.name}: {experiment.title} -> {out}{' (quick)' if args.quick else ''}")
    writer.start()
    try:
        summary = experiment.run(args, writer)
    except BaseException as exc:
        writer.fail(exc)
        raise
    writer.finish(summary)
    print(f"{experiment.name}: done in {writer.elapsed_s:.1f} s; results in {out}/")
    for key, value in summary.items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


def _print_list() -> None:
    from adaptive_cnn.reproduce import list_experiments

    rows = [(e.name, e.title) for e in list_experiments()]
    print(format_table(("experiment", "what it measures"), rows))
    print("\nrun: acnn reproduce NAME [--quick] [--out DIR]; options: acnn reproduce NAME --help")
