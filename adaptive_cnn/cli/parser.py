"""The ``acnn`` argument parser: a usage error is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with acnn's error format, used for every (sub)command.

    Subparsers inherit the class (``add_subparsers`` defaults ``parser_class`` to it).
    A value that starts like a negative number (``-3mJ``, ``-.5``, ``-1e3``) is taken as a
    value, not as an unknown option, so the flag's own check can say what is wrong with it.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> NoReturn:
        """Print ``acnn: error: COMMAND: MESSAGE (see ... --help)`` and exit with 2."""
        command = self.prog.removeprefix("acnn").strip()
        where = f"{command}: " if command else ""
        text = " ".join(message.split())
        hint = f"acnn {command} --help" if command else "acnn --help"
        print(f"acnn: error: {where}{text} (see {hint})", file=sys.stderr)
        sys.exit(EXIT_USAGE)
