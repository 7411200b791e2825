"""Checked conversions of command-line numbers, for argparse's ``type=``.

Each function takes the flag's text and returns the value or raises
:class:`argparse.ArgumentTypeError` with a message that names what was wrong and what is
allowed; :class:`adaptive_cnn.cli.parser.ArgumentParser` prints it as one line. Integers
are whole numbers as written (``2.5`` and ``1e3`` are refused, never rounded); floats are
finite (``nan``, ``inf`` and ``1e400`` are refused).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

PORT_MAX = 65535


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _finite(text: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return number


def int_in(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number in ``[minimum, maximum]`` (no upper bound when ``maximum`` is None)."""

    def convert(text: str) -> int:
        value = _whole(text)
        if value < minimum or (maximum is not None and value > maximum):
            allowed = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be a whole number {allowed}, got {value}")
        return value

    convert.__name__ = f"int_in({minimum}, {maximum})"
    return convert


def float_in(
    minimum: float | None = None, maximum: float | None = None, *, above: float | None = None
) -> Callable[[str], float]:
    """A finite number ``>= minimum`` (or ``> above``) and ``<= maximum``."""

    def convert(text: str) -> float:
        value = _finite(text)
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be > {above:g}, got {value:g}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:g}, got {value:g}")
        return value

    convert.__name__ = "float_in"
    return convert


positive_int = int_in(1)
non_negative_int = int_in(0)
seed = int_in(0, 2**63 - 1)  # numpy refuses negative seeds; torch takes 64 bits at most
whole_number = int_in(-(2**63), 2**63 - 1)
finite_float = float_in()
positive_float = float_in(above=0.0)
non_negative_float = float_in(minimum=0.0)
threads = int_in(1, 1024)


def port(text: str) -> int:
    """A TCP port: 1..65535, or 0 for any free port."""
    value = _whole(text)
    if not 0 <= value <= PORT_MAX:
        raise argparse.ArgumentTypeError(
            f"must be a port in 1..{PORT_MAX} (0: any free port), got {value}"
        )
    return value


def fraction_or_count(text: str) -> float | int:
    """'0.1' -> 0.1 (a share, strictly between 0 and 1); '500' -> 500 (a count, >= 1)."""
    try:
        count = int(text.strip())
    except ValueError:
        share = _finite(text)
        if not 0 < share < 1:
            raise argparse.ArgumentTypeError(
                f"must be a fraction in (0, 1) or a whole count >= 1, got {text!r}"
            ) from None
        return share
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in (0, 1) or a whole count >= 1, got {count}"
        )
    return count


def energy_mj(text: str) -> float:
    """A device energy per image with its unit (``1.5mJ``, ``800uJ``, ``0.002J``; a bare
    number is millijoules), > 0 and finite, in millijoules."""
    from energy_models.errors import EnergyModelError
    from energy_models.units import parse_energy_mj

    try:
        value = parse_energy_mj(text)
    except EnergyModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite energy > 0, got {text!r}")
    return value
