"""Command-line interface (``acnn``); see :func:`adaptive_cnn.cli.main.main`."""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry: run ``acnn`` with ``sys.argv`` and exit with its code."""
    from adaptive_cnn.cli.main import main as run

    sys.exit(run())


__all__ = ["main"]
