"""An external power meter's CSV log, aligned with timing windows by Unix timestamp.

The log has a header; a timestamp column ``timestamp`` or ``timestamp_s`` (Unix seconds)
and power as ``power_w``, ``power_mw``, or ``voltage_v`` with ``current_a``. A window's
mean power is the trapezoid mean of the trace over [t0, t1], interpolated linearly at the
edges. The profiler stores each record's wall-clock ``t0``/``t1``, so a trace can also be
attached after the fact with :meth:`PowerMeterTrace.mean_power_w`.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energy_models.errors import EnergyModelError
from energy_models.power import (
    Clock,
    PowerReading,
    PowerSource,
    PowerWindow,
    time_weighted_mean_w,
)

TIMESTAMP_COLUMNS = ("timestamp", "timestamp_s")
POWER_COLUMNS = ("power_w", "power_mw", "voltage_v+current_a")
SOURCE_NAME = "power-meter-csv"

Row = Mapping[str, str | None]


def _number(row: Row, column: str, where: str) -> float:
    text = row.get(column)
    try:
        value = float(text.strip()) if text is not None else math.nan
    except ValueError:
        raise EnergyModelError(f"{where}: {column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise EnergyModelError(f"{where}: {column} is missing or not finite: {text!r}")
    return value


def _timestamp_column(fields: Sequence[str], path: str) -> str:
    for column in TIMESTAMP_COLUMNS:
        if column in fields:
            return column
    raise EnergyModelError(f"{path}: no timestamp column {list(TIMESTAMP_COLUMNS)} in {fields}")


def _power_of(fields: Sequence[str], path: str) -> Callable[[Row, str], float]:
    """A function of (row, where) giving the row's power in watts."""
    if "power_w" in fields:
        return lambda row, where: _number(row, "power_w", where)
    if "power_mw" in fields:
        return lambda row, where: _number(row, "power_mw", where) / 1e3
    if "voltage_v" in fields and "current_a" in fields:
        return lambda row, where: (
            _number(row, "voltage_v", where) * _number(row, "current_a", where)
        )
    raise EnergyModelError(f"{path}: no power column {list(POWER_COLUMNS)} in {fields}")


@dataclass(frozen=True, eq=False)
class PowerMeterTrace:
    """A power meter's log: power against Unix time.

    Attributes:
        path: The CSV file it came from (for messages).
        times_s: Sample times, strictly increasing, shape ``(n,)``, Unix seconds.
        power_w: Power at those times, shape ``(n,)``, watts.
    """

    path: str
    times_s: np.ndarray
    power_w: np.ndarray

    @classmethod
    def load(cls, path: str | Path, *, partial_ok: bool = False) -> PowerMeterTrace:
        """Read and validate a meter's CSV log.

        Args:
            path: The CSV file.
            partial_ok: Drop a last line without a newline (the meter is writing it).

        Raises:
            EnergyModelError: One line naming the file and line: unreadable file, missing
                columns, a bad number, timestamps not increasing, fewer than 2 rows.
        """
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise EnergyModelError(f"cannot read power-meter CSV {path}: {exc}") from exc
        return cls.parse(text, str(path), partial_ok=partial_ok)

    @classmethod
    def parse(cls, text: str, path: str = "<csv>", *, partial_ok: bool = False) -> PowerMeterTrace:
        """Parse a meter's CSV text; ``path`` names it in errors. See :meth:`load`."""
        if partial_ok and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise EnergyModelError(f"{path}: empty file; expected a CSV header line")
        fields = reader.fieldnames = [name.strip() for name in reader.fieldnames]
        time_column, power_of = _timestamp_column(fields, path), _power_of(fields, path)
        times: list[float] = []
        powers: list[float] = []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            t = _number(row, time_column, where)
            if times and t <= times[-1]:
                raise EnergyModelError(f"{where}: timestamp {t} is not after {times[-1]}")
            times.append(t)
            powers.append(power_of(row, where))
        if len(times) < 2:
            raise EnergyModelError(f"{path}: {len(times)} data row(s); a trace needs at least 2")
        return cls(path, np.array(times), np.array(powers))

    @property
    def start_s(self) -> float:
        """First timestamp, Unix seconds."""
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """Last timestamp, Unix seconds."""
        return float(self.times_s[-1])

    def mean_power_w(self, t0: float, t1: float) -> float:
        """Time-weighted mean power over [t0, t1] (Unix seconds), watts.

        The trace is interpolated linearly at t0 and t1 and integrated by trapezoids; a
        zero-length window gives the interpolated power at t0.

        Raises:
            EnergyModelError: t1 < t0, or the trace does not cover [t0, t1].
        """
        if not t1 >= t0:
            raise EnergyModelError(f"{self.path}: window ends ({t1}) before it begins ({t0})")
        if t0 < self.start_s or t1 > self.end_s:
            raise EnergyModelError(
                f"{self.path}: window [{t0:.3f}, {t1:.3f}] is not covered by the trace "
                f"[{self.start_s:.3f}, {self.end_s:.3f}] (Unix seconds)"
            )
        inside = (self.times_s > t0) & (self.times_s < t1)
        times = np.concatenate(([t0], self.times_s[inside], [t1]))
        powers = np.interp(times, self.times_s, self.power_w)
        return time_weighted_mean_w(times, powers)

    def energy_j(self, t0: float, t1: float) -> float:
        """Energy over [t0, t1] (Unix seconds), joules."""
        return self.mean_power_w(t0, t1) * (t1 - t0)

    def reading(self, t0: float, t1: float) -> PowerReading:
        """The window [t0, t1] (Unix seconds) as a measured :class:`PowerReading`."""
        mean = self.mean_power_w(t0, t1)
        return PowerReading(mean, mean * (t1 - t0), t1 - t0, SOURCE_NAME, True)


class PowerMeterCsvSource(PowerSource):
    """An external meter logging into a CSV file; windows are aligned by wall-clock time.

    The file is re-read when a window ends, since the meter may be appending to it.

    Args:
        path: The meter's CSV log (see the module docstring for its columns).
        wall_clock: Unix-time clock in seconds, the meter's time base.

    Raises:
        EnergyModelError: The file does not exist.
    """

    name = SOURCE_NAME

    def __init__(self, path: str | Path, wall_clock: Clock = time.time) -> None:
        super().__init__(wall_clock)
        self.path = Path(path)
        if not self.path.is_file():
            raise EnergyModelError(
                f"power-meter CSV {self.path} does not exist; start the meter's logger first"
            )

    def begin(self) -> PowerWindow:
        self._check_open()
        return MeterWindow(self.path, self._clock)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "measured": True, "path": str(self.path)}


class MeterWindow(PowerWindow):
    """A window of :class:`PowerMeterCsvSource`; ``t0_s``/``t1_s`` are Unix seconds."""

    def __init__(self, path: Path, wall_clock: Clock) -> None:
        self._path, self._clock = path, wall_clock
        self.t0_s = wall_clock()
        self.t1_s: float | None = None

    def end(self) -> PowerReading:
        if self.t1_s is not None:
            raise EnergyModelError(f"{SOURCE_NAME}: this window has already ended")
        self.t1_s = self._clock()
        return PowerMeterTrace.load(self._path, partial_ok=True).reading(self.t0_s, self.t1_s)
