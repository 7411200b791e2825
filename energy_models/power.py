"""Power sources behind one interface: the device's mean power over a timing window.

A :class:`PowerSource` opens a window with :meth:`PowerSource.begin`; ending it
(:meth:`PowerWindow.end`) gives a :class:`PowerReading` with the mean power and the energy
over the window. Sensors live in :mod:`energy_models.power_sources` (Linux RAPL, NVIDIA
NVML, Jetson INA3221 rails) and :mod:`energy_models.power_meter` (an external meter's CSV
log). Where no sensor exists, :class:`DeclaredPowerModel` returns the device profile's
declared watts, and every reading says so: it is "estimated", never "measured".
:func:`make_power_source` builds a source from a device profile's ``power`` section.

Every source takes its clock as an argument (never patched), so tests drive windows with a
fake clock and replay recorded sensor traces.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from energy_models.errors import EnergyModelError

Clock = Callable[[], float]
T = TypeVar("T")

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
DEFAULT_I2C_ROOT = "/sys/bus/i2c/drivers"
SOURCE_CHOICES = ("auto", "rapl", "nvml", "jetson-ina", "power-meter-csv", "declared")
SPEC_KEYS = ("source", "idle_w", "active_w", "note", "csv", "rails", "index", "interval_s")


@dataclass(frozen=True)
class PowerReading:
    """The mean power and energy of one window.

    Attributes:
        power_w: Mean power over the window, in watts.
        energy_j: Energy over the window, in joules (``power_w * duration_s``).
        duration_s: Length of the window, in seconds.
        source: The source's name: ``rapl``, ``nvml``, ``jetson-ina``, ``power-meter-csv``
            or ``declared``.
        measured: False only for the declared model, whose readings are estimates.
    """

    power_w: float
    energy_j: float
    duration_s: float
    source: str
    measured: bool

    def __post_init__(self) -> None:
        if not self.duration_s >= 0:
            raise EnergyModelError(
                f"{self.source}: window of negative duration {self.duration_s} s"
            )

    @property
    def label(self) -> str:
        """``"measured"`` for a sensor's reading, ``"estimated"`` for a declared model's."""
        return "measured" if self.measured else "estimated"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields plus the label."""
        return {**asdict(self), "label": self.label}


class PowerWindow(ABC):
    """An open measurement window, returned by :meth:`PowerSource.begin`."""

    @abstractmethod
    def end(self) -> PowerReading:
        """Close the window and return its reading; a window ends once."""


class Measurement:
    """``with source.measure() as m: ...`` then ``m.reading``: one window as a context."""

    def __init__(self, source: PowerSource) -> None:
        self._source = source
        self._window: PowerWindow | None = None
        self._reading: PowerReading | None = None

    def __enter__(self) -> Measurement:
        self._window = self._source.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._window is not None
        if exc_type is None:
            self._reading = self._window.end()
            return
        try:  # still stop the window's threads, without hiding the body's exception
            self._window.end()
        except EnergyModelError:
            pass

    @property
    def reading(self) -> PowerReading:
        """The window's reading, available after the ``with`` block."""
        if self._reading is None:
            raise EnergyModelError("no reading yet: read .reading after the `with` block ends")
        return self._reading


class PowerSource(ABC):
    """A device's power source: opens windows, describes itself, releases its resources.

    Attributes:
        name: As in :attr:`PowerReading.source`.
        measured: Whether readings come from a sensor.
    """

    name: ClassVar[str]
    measured: ClassVar[bool] = True

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._closed = False

    @abstractmethod
    def begin(self) -> PowerWindow:
        """Start a measurement window now."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description: ``name``, ``measured`` and the source's settings."""

    def close(self) -> None:
        """Stop threads and release handles; idempotent."""
        self._closed = True

    def measure(self) -> Measurement:
        """A one-window context manager: ``with source.measure() as m: ...; m.reading``."""
        return Measurement(self)

    def _check_open(self) -> None:
        if self._closed:
            raise EnergyModelError(f"{self.name}: the power source is closed")

    def __enter__(self) -> PowerSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def time_weighted_mean_w(times_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Trapezoid-rule mean of power samples over their time span.

    Args:
        times_s: Sample times, non-decreasing, shape ``(n,)``, seconds.
        power_w: Power at those times, shape ``(n,)``, watts.

    Returns:
        The time-weighted mean power in watts; the plain mean if the span is zero.
    """
    t, p = np.asarray(times_s, dtype=float), np.asarray(power_w, dtype=float)
    span = t[-1] - t[0]
    if span <= 0:
        return float(p.mean())
    return float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(t)) / span)


class CounterWindow(PowerWindow, Generic[T]):
    """A window over a cumulative energy counter (RAPL, NVML): energy = stop - start."""

    def __init__(
        self, read: Callable[[], T], energy_j: Callable[[T, T], float], *, clock: Clock, source: str
    ) -> None:
        self._read, self._energy_j, self._clock, self._source = read, energy_j, clock, source
        self._t0 = clock()
        self._start = read()
        self._ended = False

    def end(self) -> PowerReading:
        if self._ended:
            raise EnergyModelError(f"{self._source}: this window has already ended")
        stop = self._read()
        duration = self._clock() - self._t0
        self._ended = True
        if duration <= 0:
            raise EnergyModelError(
                f"{self._source}: window of {duration} s; an energy counter needs a longer window"
            )
        energy = self._energy_j(self._start, stop)
        return PowerReading(energy / duration, energy, duration, self._source, True)


class SampledWindow(PowerWindow):
    """A window over an instantaneous power sensor, sampled by a background thread.

    One sample is taken at :meth:`__init__`, one every ``interval_s`` seconds (real time) by
    a daemon thread, and one at :meth:`end`; the reading is their trapezoid mean over the
    clock's times.
    """

    def __init__(
        self, sample_w: Callable[[], float], *, clock: Clock, interval_s: float, source: str
    ) -> None:
        self._sample_w, self._clock, self._interval_s = sample_w, clock, interval_s
        self._source = source
        self._times: list[float] = []
        self._powers: list[float] = []
        self._error: Exception | None = None
        self._ended = False
        self._stop = threading.Event()
        self._take()
        self._thread = threading.Thread(target=self._run, name=f"acnn-{source}", daemon=True)
        self._thread.start()

    @property
    def n_samples(self) -> int:
        """Samples taken so far."""
        return len(self._times)

    @property
    def running(self) -> bool:
        """Whether the sampler thread is alive."""
        return self._thread.is_alive()

    def _take(self) -> None:
        t = self._clock()
        self._powers.append(float(self._sample_w()))
        self._times.append(t)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._take()
            except Exception as exc:  # any failure: re-raised by end() in the caller's thread
                self._error = exc
                return

    def stop(self) -> None:
        """Stop the sampler thread and wait for it; idempotent."""
        self._stop.set()
        self._thread.join()

    def end(self) -> PowerReading:
        if self._ended:
            raise EnergyModelError(f"{self._source}: this window has already ended")
        self._ended = True
        self.stop()
        if self._error is not None:
            raise EnergyModelError(f"{self._source}: sampling failed: {self._error}") from (
                self._error
            )
        self._take()
        duration = self._times[-1] - self._times[0]
        mean = time_weighted_mean_w(self._times, self._powers)
        return PowerReading(mean, mean * duration, duration, self._source, True)


class SamplingSource(PowerSource):
    """A sensor read as instantaneous power (:meth:`sample_power_w`), sampled over windows."""

    def __init__(self, *, interval_s: float, clock: Clock) -> None:
        super().__init__(clock)
        if not (isinstance(interval_s, int | float) and interval_s > 0):
            raise EnergyModelError(
                f"interval_s must be a positive number of seconds: {interval_s!r}"
            )
        self.interval_s = float(interval_s)
        self._windows: weakref.WeakSet[SampledWindow] = weakref.WeakSet()

    @abstractmethod
    def sample_power_w(self) -> float:
        """Read the sensor once: instantaneous power in watts."""

    def begin(self) -> PowerWindow:
        self._check_open()
        window = SampledWindow(
            self.sample_power_w, clock=self._clock, interval_s=self.interval_s, source=self.name
        )
        self._windows.add(window)
        return window

    def close(self) -> None:
        for window in list(self._windows):
            window.stop()
        super().close()


class DeclaredPowerModel(PowerSource):
    """No sensor: the device profile's declared watts, labelled "estimated".

    Args:
        idle_w: Package power while idle (e.g. waiting for the network), watts.
        active_w: Package power with the profile's threads busy computing, watts.
        note: Where the figures come from.
        clock: Monotonic clock, seconds.
    """

    name = "declared"
    measured = False

    def __init__(
        self, idle_w: float, active_w: float, note: str = "", clock: Clock = time.monotonic
    ) -> None:
        super().__init__(clock)
        for key, value in (("idle_w", idle_w), ("active_w", active_w)):
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise EnergyModelError(f"declared power {key} must be watts >= 0, got {value!r}")
        if active_w < idle_w:
            raise EnergyModelError(f"declared active_w {active_w} W is below idle_w {idle_w} W")
        self.idle_w, self.active_w, self.note = float(idle_w), float(active_w), note

    def begin(self) -> PowerWindow:
        self._check_open()
        return _DeclaredWindow(self.active_w, self._clock)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "idle_w": self.idle_w,
            "active_w": self.active_w,
            "note": self.note,
        }


class _DeclaredWindow(PowerWindow):
    def __init__(self, power_w: float, clock: Clock) -> None:
        self._power_w, self._clock = power_w, clock
        self._t0 = clock()
        self._ended = False

    def end(self) -> PowerReading:
        if self._ended:
            raise EnergyModelError("declared: this window has already ended")
        self._ended = True
        duration = self._clock() - self._t0
        return PowerReading(self._power_w, self._power_w * duration, duration, "declared", False)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Env:
    """Where the factory looks for sensors, and the clocks it hands them."""

    powercap_root: str | Path
    i2c_root: str | Path
    nvml: Any
    clock: Clock
    wall_clock: Clock


def make_power_source(
    spec: Mapping[str, Any],
    *,
    powercap_root: str | Path = DEFAULT_POWERCAP_ROOT,
    i2c_root: str | Path = DEFAULT_I2C_ROOT,
    nvml: Any = None,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> PowerSource:
    """Build the power source a device profile's ``power`` section asks for.

    Args:
        spec: E.g. ``{"source": "auto", "idle_w": 2.0, "active_w": 9.0, "note": "..."}``.
            ``source`` is one of :data:`SOURCE_CHOICES` (default ``auto``); ``csv`` is the
            meter's log for ``power-meter-csv``; ``rails`` the Jetson rails to sum;
            ``index`` the NVML GPU; ``interval_s`` the sampling period of sampled sensors.
            ``auto`` tries Jetson INA rails, then RAPL (if readable), then NVML (if
            ``pynvml`` imports and finds the GPU), else the declared ``idle_w``/``active_w``.
        powercap_root: Linux powercap directory (RAPL).
        i2c_root: Linux I2C drivers directory (Jetson INA3221).
        nvml: An object with pynvml's API (tests pass a fake); None imports ``pynvml``.
        clock: Monotonic clock for windows, seconds.
        wall_clock: Unix-time clock for the power-meter CSV, seconds.

    Raises:
        EnergyModelError: Unknown keys or source, bad values, or no usable source.
    """
    _check_spec(spec)
    env = _Env(powercap_root, i2c_root, nvml, clock, wall_clock)
    kind = spec.get("source", "auto")
    return _auto_source(spec, env) if kind == "auto" else _build_source(kind, spec, env)


def _check_spec(spec: Mapping[str, Any]) -> None:
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise EnergyModelError(f"unknown power key(s) {unknown}; valid keys: {list(SPEC_KEYS)}")
    kind = spec.get("source", "auto")
    if kind not in SOURCE_CHOICES:
        raise EnergyModelError(f"unknown power source {kind!r}; valid: {list(SOURCE_CHOICES)}")
    rails = spec.get("rails")
    if rails is not None and not (
        isinstance(rails, list | tuple) and rails and all(isinstance(r, str) for r in rails)
    ):
        raise EnergyModelError(f"power rails must be a non-empty list of rail names: {rails!r}")
    index = spec.get("index", 0)
    if not (isinstance(index, int) and not isinstance(index, bool) and index >= 0):
        raise EnergyModelError(f"power index must be a GPU index >= 0: {index!r}")


def _build_source(kind: str, spec: Mapping[str, Any], env: _Env) -> PowerSource:
    # The sensors build on the base classes above, so they are imported here, not at the top.
    from energy_models.power_meter import PowerMeterCsvSource
    from energy_models.power_sources import JetsonInaSource, NvmlSource, RaplSource

    interval_s = spec.get("interval_s", 0.01)
    if kind == "rapl":
        return RaplSource(env.powercap_root, clock=env.clock)
    if kind == "nvml":
        return NvmlSource(spec.get("index", 0), env.nvml, interval_s, clock=env.clock)
    if kind == "jetson-ina":
        return JetsonInaSource(env.i2c_root, spec.get("rails"), interval_s, clock=env.clock)
    if kind == "power-meter-csv":
        if "csv" not in spec:
            raise EnergyModelError("power source 'power-meter-csv' needs `csv: PATH` (the log)")
        return PowerMeterCsvSource(spec["csv"], wall_clock=env.wall_clock)
    return _declared(spec, env)


def _declared(spec: Mapping[str, Any], env: _Env, tried: Sequence[str] = ()) -> PowerSource:
    missing = [key for key in ("idle_w", "active_w") if key not in spec]
    if missing:
        found = f"no power sensor found ({'; '.join(tried)}) and " if tried else ""
        raise EnergyModelError(
            f"{found}the power section lacks {missing}: declare the device's idle_w and "
            "active_w (watts) in its profile"
        )
    return DeclaredPowerModel(spec["idle_w"], spec["active_w"], spec.get("note", ""), env.clock)


def _auto_source(spec: Mapping[str, Any], env: _Env) -> PowerSource:
    from energy_models.power_sources import JetsonInaSource, RaplSource

    if JetsonInaSource.available(env.i2c_root):
        return _build_source("jetson-ina", spec, env)
    if RaplSource.available(env.powercap_root):
        return _build_source("rapl", spec, env)
    nvml = _try_nvml(spec, env)
    if nvml is not None:
        return nvml
    tried = [
        f"jetson-ina: no INA3221 rails under {env.i2c_root}",
        f"rapl: no readable counters under {env.powercap_root}",
        "nvml: no pynvml module or no GPU",
    ]
    return _declared(spec, env, tried)


def _try_nvml(spec: Mapping[str, Any], env: _Env) -> PowerSource | None:
    if env.nvml is None and importlib.util.find_spec("pynvml") is None:
        return None
    try:
        return _build_source("nvml", spec, env)
    except EnergyModelError:
        return None
