"""The ``acnn`` command: argument parsing, dispatch and one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import adaptive_cnn
from adaptive_cnn.cli import (
    check_energy_command,
    classify_command,
    data_commands,
    design_command,
    device_commands,
    energy_commands,
    export_command,
    reproduce_command,
    serve_command,
    train_command,
)
from adaptive_cnn.cli.parser import ArgumentParser
from adaptive_cnn.errors import AcnnError
from energy_models.errors import EnergyModelError
from selector.errors import SelectorError

EXIT_USAGE = 2
EXIT_IO = 2  # a file named on the command line is input too
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The ``acnn`` parser; it and every subcommand's parser print a usage error as one
    line and exit with :data:`EXIT_USAGE` (see :class:`~adaptive_cnn.cli.parser.ArgumentParser`)."""
    parser = ArgumentParser(
        prog="acnn",
        description=(
            "Design and run adaptive CNN cascades (cheap local CNN -> larger local CNN -> "
            "cloud) under a per-image device energy budget."
        ),
    )
    parser.add_argument("--version", action="version", version=f"acnn {adaptive_cnn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_commands.add_datasets_parser(commands)
    data_commands.add_networks_parser(commands)
    train_command.add_parser(commands)
    device_commands.add_devices_parser(commands)
    energy_commands.add_parsers(commands)
    design_command.add_parser(commands)
    design_command.add_report_parser(commands)
    serve_command.add_parser(commands)
    classify_command.add_parser(commands)
    check_energy_command.add_parser(commands)
    export_command.add_parser(commands)
    reproduce_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``acnn`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0 as usual; a usage error returns
        if exc.code in (0, None):
            raise
        return EXIT_USAGE
    try:
        return int(args.run(args) or 0)
    except (AcnnError, EnergyModelError, SelectorError) as exc:
        print(f"acnn: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file the command was given: missing, unreadable, full disk
        print(f"acnn: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("acnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (a message from a library may hold newlines)."""
    return " ".join(str(exc).split()) or type(exc).__name__
