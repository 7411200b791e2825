"""Quantities with units, as a user writes them: ``2mJ``, ``1.5MB``, ``500mW``, ``5min``.

Pure functions, no I/O. Each parser takes a string (or a plain number, as YAML gives one)
and returns the value in the unit its name says: millijoules, bytes, watts, seconds. A bare
number is in that same unit, except for energy, where a bare number is millijoules (the unit
of ``--budget``). Negative, NaN and infinite values are rejected with an
:class:`~energy_models.errors.EnergyModelError` that names the bad value and the accepted
units.
"""

from __future__ import annotations

import math
import re

from energy_models.errors import EnergyModelError

_MICRO = ("u", "µ", "μ")  # ASCII, MICRO SIGN (U+00B5), GREEK SMALL LETTER MU (U+03BC)

ENERGY_UNITS_MJ: dict[str, float] = {
    "J": 1e3,
    "j": 1e3,
    "mJ": 1.0,
    "mj": 1.0,
    **{f"{m}J": 1e-3 for m in _MICRO},
    **{f"{m}j": 1e-3 for m in _MICRO},
    "nJ": 1e-6,
    "nj": 1e-6,
}
"""Energy units accepted by :func:`parse_energy_mj`, in millijoules."""

BYTE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
"""Byte units accepted by :func:`parse_bytes` (SI powers of 1000, IEC powers of 1024).

All-lowercase spellings (``512mb``, ``4gib``) are accepted too; mixed case ending in a
lowercase ``b`` (``Mb``, ``Gb``) is rejected because it reads as bits.
"""

POWER_UNITS_W: dict[str, float] = {
    "W": 1.0,
    "w": 1.0,
    "kW": 1e3,
    "mW": 1e-3,
    "mw": 1e-3,
    **{f"{m}W": 1e-6 for m in _MICRO},
}
"""Power units accepted by :func:`parse_power_w`, in watts."""

DURATION_UNITS_S: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    **{f"{m}s": 1e-6 for m in _MICRO},
    "min": 60.0,
    "h": 3600.0,
}
"""Duration units accepted by :func:`parse_duration_s`, in seconds."""

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(\S*)\s*$")


def parse_energy_mj(value: str | float) -> float:
    """``"2mJ"``, ``"500uJ"``, ``"500µJ"``, ``"0.002J"`` or a bare number -> millijoules.

    A bare number (string or number) is already in millijoules.
    """
    return _parse(value, ENERGY_UNITS_MJ, default="mJ", what="energy", shown=_ENERGY_SHOWN)


def parse_power_w(value: str | float) -> float:
    """``"9W"``, ``"500mW"`` or a bare number (watts) -> watts."""
    return _parse(value, POWER_UNITS_W, default="W", what="power", shown=_POWER_SHOWN)


def parse_duration_s(value: str | float) -> float:
    """``"30s"``, ``"5min"``, ``"2h"``, ``"250ms"`` or a bare number (seconds) -> seconds."""
    return _parse(value, DURATION_UNITS_S, default="s", what="duration", shown=_DURATION_SHOWN)


def parse_bytes(value: str | int) -> int:
    """``"1.5MB"``, ``"200KiB"``, ``"1GiB"``, ``"4096"`` or a bare whole number -> bytes.

    A value with a unit is rounded to the nearest byte; a bare number must be whole.
    """
    number = _parse(value, _BYTE_LOOKUP, default="B", what="size", shown=_BYTES_SHOWN)
    bare = not isinstance(value, str) or not _QUANTITY.match(value)[2]
    if bare and number != int(number):
        raise EnergyModelError(f"size {value!r} is not a whole number of bytes")
    return int(round(number))


def format_bytes(num_bytes: int) -> str:
    """1536 -> ``'1.5 KiB'``; 4 * 2**30 -> ``'4 GiB'`` (IEC units, 3 significant digits)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if abs(num_bytes) >= BYTE_UNITS[unit]:
            return f"{num_bytes / BYTE_UNITS[unit]:.3g} {unit}"
    return f"{num_bytes} B"


_ENERGY_SHOWN = "J, mJ, uJ (or µJ), nJ; a bare number is mJ"
_POWER_SHOWN = "W, kW, mW, uW; a bare number is W"
_DURATION_SHOWN = "h, min, s, ms, us; a bare number is s"
_BYTES_SHOWN = "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB; a bare number is bytes"
_BYTE_LOOKUP = {**BYTE_UNITS, **{unit.lower(): size for unit, size in BYTE_UNITS.items()}}


def _parse(
    value: str | float, units: dict[str, float], *, default: str, what: str, shown: str
) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EnergyModelError(f"{what} {value!r} is not a number with a unit ({shown})")
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None:
            raise EnergyModelError(
                f"cannot read {what} {value!r}: use a number and a unit ({shown})"
            )
        unit = match[2] or default
        if unit not in units:
            raise EnergyModelError(f"unknown {what} unit {unit!r} in {value!r}; use {shown}")
        number = float(match[1]) * units[unit]
    else:
        number = float(value) * units[default]
    if not math.isfinite(number) or number < 0:
        raise EnergyModelError(f"{what} {value!r} must be finite and non-negative ({shown})")
    return number
