"""On-board power sensors: Linux RAPL, NVIDIA NVML, Jetson INA3221 rails.

Each is a :class:`~energy_models.power.PowerSource`. Sysfs roots, the NVML module and the
clock are arguments, so tests build fake sysfs trees and replay recorded NVML traces.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_models.errors import EnergyModelError
from energy_models.power import (
    DEFAULT_I2C_ROOT,
    DEFAULT_POWERCAP_ROOT,
    Clock,
    CounterWindow,
    PowerSource,
    PowerWindow,
    SamplingSource,
)

_RAPL_DOMAIN = re.compile(r"[a-z]+-rapl:\d+")  # top level only: not intel-rapl:0:1
_INPUT_RAIL_TOKENS = {"IN", "VIN"}  # VDD_IN, POM_5V_IN, VIN_SYS_5V0


def _read_text(path: Path) -> str:
    return path.read_text()


def _read_number(path: Path) -> float:
    try:
        return float(_read_text(path).strip())
    except (OSError, ValueError) as exc:
        raise EnergyModelError(f"cannot read a number from {path}: {exc}") from exc


# --------------------------------------------------------------------------- RAPL


@dataclass(frozen=True)
class RaplDomain:
    """A top-level RAPL domain (a CPU package).

    Attributes:
        path: Its powercap directory, e.g. ``/sys/class/powercap/intel-rapl:0``.
        name: Its ``name`` file, e.g. ``package-0``.
        max_energy_range_uj: Where ``energy_uj`` wraps to zero, microjoules.
    """

    path: Path
    name: str
    max_energy_range_uj: int

    def read_uj(self) -> int:
        """The cumulative energy counter, microjoules."""
        path = self.path / "energy_uj"
        try:
            return int(_read_text(path).strip())
        except PermissionError as exc:
            raise EnergyModelError(
                f"cannot read {path}: RAPL counters are root-only on recent kernels; run as "
                f"root, or make them readable: `sudo chmod a+r {self.path.parent}/*-rapl:*/"
                "energy_uj` (until reboot) or a udev rule doing the same"
            ) from exc
        except (OSError, ValueError) as exc:
            raise EnergyModelError(f"cannot read a number from {path}: {exc}") from exc

    def delta_uj(self, start: int, stop: int) -> int:
        """Energy between two counter values, microjoules, across at most one wrap."""
        return stop - start if stop >= start else stop + self.max_energy_range_uj - start


def find_rapl_domains(root: str | Path = DEFAULT_POWERCAP_ROOT) -> list[RaplDomain]:
    """Top-level ``*-rapl:N`` domains under ``root``, without ``psys``.

    The ``psys`` (platform) domain already includes the packages; summing it would count
    them twice.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    domains = []
    for path in sorted(root.iterdir()):
        if not _RAPL_DOMAIN.fullmatch(path.name) or not (path / "energy_uj").exists():
            continue
        name = _read_text(path / "name").strip() if (path / "name").exists() else path.name
        if not name.startswith("psys"):
            max_uj = int(_read_number(path / "max_energy_range_uj"))
            domains.append(RaplDomain(path, name, max_uj))
    return domains


class RaplSource(PowerSource):
    """Linux powercap RAPL: the sum of the CPU packages' energy counters.

    A window longer than one counter period (``max_energy_range_uj`` at the package's
    power, tens of minutes) cannot be told from a shorter one.

    Args:
        root: The powercap directory.
        clock: Monotonic clock, seconds.

    Raises:
        EnergyModelError: No package domain, or counters not readable (root-only).
    """

    name = "rapl"

    def __init__(
        self, root: str | Path = DEFAULT_POWERCAP_ROOT, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(clock)
        self.root = Path(root)
        self.domains = tuple(find_rapl_domains(self.root))
        if not self.domains:
            raise EnergyModelError(f"no RAPL package domains (*-rapl:N/energy_uj) under {root}")
        self._read_uj()  # fail now, not in the first window, when counters are root-only

    @classmethod
    def available(cls, root: str | Path = DEFAULT_POWERCAP_ROOT) -> bool:
        """Whether RAPL package counters exist under ``root`` and are readable."""
        try:
            cls(root)
        except EnergyModelError:
            return False
        return True

    def _read_uj(self) -> tuple[int, ...]:
        return tuple(domain.read_uj() for domain in self.domains)

    def _energy_j(self, start: tuple[int, ...], stop: tuple[int, ...]) -> float:
        pairs = zip(self.domains, start, stop, strict=True)
        return sum(domain.delta_uj(a, b) for domain, a, b in pairs) / 1e6

    def begin(self) -> PowerWindow:
        self._check_open()
        return CounterWindow(self._read_uj, self._energy_j, clock=self._clock, source=self.name)

    def describe(self) -> dict[str, Any]:
        domains = [
            {"path": str(d.path), "name": d.name, "max_energy_range_uj": d.max_energy_range_uj}
            for d in self.domains
        ]
        return {"name": self.name, "measured": True, "root": str(self.root), "domains": domains}


# --------------------------------------------------------------------------- NVML


def _import_pynvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise EnergyModelError(
            "NVML power needs the pynvml module: pip install nvidia-ml-py"
        ) from exc


class NvmlSource(SamplingSource):
    """NVIDIA NVML: the GPU's energy counter, or its sampled power where unsupported.

    The total-energy counter (millijoules, Volta and later) is preferred; when NVML reports
    it unsupported, power (milliwatts) is sampled every ``interval_s`` by a thread.

    Args:
        index: The GPU's NVML index.
        nvml: An object with pynvml's API; None imports ``pynvml`` (``nvidia-ml-py``).
        interval_s: Sampling period when sampling, seconds.
        clock: Monotonic clock, seconds.

    Raises:
        EnergyModelError: No pynvml, no driver, no such GPU, or no power reading.
    """

    name = "nvml"

    def __init__(
        self,
        index: int = 0,
        nvml: Any = None,
        interval_s: float = 0.01,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(interval_s=interval_s, clock=clock)
        self._nvml = _import_pynvml() if nvml is None else nvml
        self.index = index
        self._initialised = False
        try:
            self._handle = self._open_device(index)
            self.device_name = self._device_name()
            self.mode = "energy-counter" if self._has_counter() else "power-sampling"
            if self.mode == "power-sampling":
                self.sample_power_w()  # fail now if the GPU reports no power at all
        except EnergyModelError:
            self.close()
            raise

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(*args)
        except self._nvml.NVMLError as exc:
            raise EnergyModelError(f"NVML {function} failed for GPU {self.index}: {exc}") from exc

    def _open_device(self, index: int) -> Any:
        self._call("nvmlInit")
        self._initialised = True
        count = self._call("nvmlDeviceGetCount")
        if not 0 <= index < count:
            raise EnergyModelError(f"NVML: no GPU with index {index}; {count} GPU(s) found")
        return self._call("nvmlDeviceGetHandleByIndex", index)

    def _device_name(self) -> str:
        name = self._call("nvmlDeviceGetName", self._handle)
        return name.decode() if isinstance(name, bytes) else str(name)  # bytes: older pynvml

    def _has_counter(self) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError:
            return False
        return True

    def read_energy_mj(self) -> int:
        """The GPU's cumulative energy counter, millijoules."""
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption", self._handle))

    def sample_power_w(self) -> float:
        return self._call("nvmlDeviceGetPowerUsage", self._handle) / 1e3

    def _energy_j(self, start_mj: int, stop_mj: int) -> float:
        if stop_mj < start_mj:
            raise EnergyModelError("NVML energy counter went backwards (driver reloaded?)")
        return (stop_mj - start_mj) / 1e3

    def begin(self) -> PowerWindow:
        if self.mode == "power-sampling":
            return super().begin()
        self._check_open()
        return CounterWindow(
            self.read_energy_mj, self._energy_j, clock=self._clock, source=self.name
        )

    def close(self) -> None:
        super().close()
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # closing must not fail; the driver drops the session at exit anyway

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": True,
            "index": self.index,
            "device": self.device_name,
            "mode": self.mode,
            "interval_s": self.interval_s,
        }


# --------------------------------------------------------------------------- Jetson INA3221


@dataclass(frozen=True)
class InaRail:
    """One INA3221 power rail in sysfs.

    Attributes:
        name: Its label, e.g. ``VDD_IN``.
        power_path: Legacy L4T iio layout: ``in_power{N}_input``, milliwatts.
        voltage_path: hwmon layout: ``in{N}_input``, millivolts.
        current_path: hwmon layout: ``curr{N}_input``, milliamperes.
    """

    name: str
    power_path: Path | None = None
    voltage_path: Path | None = None
    current_path: Path | None = None

    def read_w(self) -> float:
        """The rail's instantaneous power, watts."""
        if self.power_path is not None:
            return _read_number(self.power_path) / 1e3
        assert self.voltage_path is not None and self.current_path is not None
        return _read_number(self.voltage_path) * _read_number(self.current_path) / 1e6


def _numbered(paths: Sequence[Path], pattern: str) -> list[tuple[int, Path]]:
    matches = [(re.fullmatch(pattern, p.name), p) for p in paths]
    return sorted((int(m.group(1)), p) for m, p in matches if m)


def _hwmon_rails(root: Path) -> list[InaRail]:
    rails = []
    for hwmon in sorted(root.glob("ina3221/*/hwmon/hwmon*")):
        for n, label in _numbered(list(hwmon.glob("in*_label")), r"in(\d+)_label"):
            volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
            if volt.exists() and curr.exists():
                rails.append(InaRail(_read_text(label).strip(), None, volt, curr))
    return rails


def _iio_rails(root: Path) -> list[InaRail]:
    rails = []
    for device in sorted(root.glob("ina3221x/*/iio:device*")):
        for n, label in _numbered(list(device.glob("rail_name_*")), r"rail_name_(\d+)"):
            power = device / f"in_power{n}_input"
            if power.exists():
                rails.append(InaRail(_read_text(label).strip(), power_path=power))
    return rails


def find_ina_rails(root: str | Path = DEFAULT_I2C_ROOT) -> list[InaRail]:
    """INA3221 rails under ``root``, hwmon layout then legacy iio; unconnected (NC) skipped."""
    root = Path(root)
    rails = [r for r in _hwmon_rails(root) + _iio_rails(root) if r.name.upper() != "NC"]
    seen: dict[str, int] = {}
    for i, rail in enumerate(rails):  # two sensors may label rails alike: keep names unique
        seen[rail.name] = seen.get(rail.name, 0) + 1
        if seen[rail.name] > 1:
            rails[i] = InaRail(f"{rail.name}#{seen[rail.name]}", *_paths(rail))
    return rails


def _paths(rail: InaRail) -> tuple[Path | None, Path | None, Path | None]:
    return rail.power_path, rail.voltage_path, rail.current_path


def _is_input_rail(name: str) -> bool:
    return bool(_INPUT_RAIL_TOKENS & set(re.split(r"[_\s]+", name.upper())))


def _select_rails(found: Sequence[InaRail], wanted: Sequence[str] | None) -> tuple[InaRail, ...]:
    if wanted is None:
        total = [rail for rail in found if _is_input_rail(rail.name)]
        return (total[0],) if total else tuple(found)
    by_name = {rail.name: rail for rail in found}
    unknown = [name for name in wanted if name not in by_name]
    if unknown or not wanted:
        raise EnergyModelError(
            f"unknown Jetson power rail(s) {unknown}; available: {sorted(by_name)}"
        )
    return tuple(by_name[name] for name in wanted)


class JetsonInaSource(SamplingSource):
    """Jetson INA3221 power rails (hwmon or legacy L4T iio sysfs), sampled by a thread.

    Args:
        root: The I2C drivers directory.
        rails: Rail labels to sum; None means the board's total-input rail (a label with an
            ``IN`` token, e.g. ``VDD_IN``, ``POM_5V_IN``) if any, else all rails.
        interval_s: Sampling period, seconds.
        clock: Monotonic clock, seconds.

    Raises:
        EnergyModelError: No rails, unknown rail names, or unreadable rails.
    """

    name = "jetson-ina"

    def __init__(
        self,
        root: str | Path = DEFAULT_I2C_ROOT,
        rails: Sequence[str] | None = None,
        interval_s: float = 0.01,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(interval_s=interval_s, clock=clock)
        self.root = Path(root)
        found = find_ina_rails(self.root)
        if not found:
            raise EnergyModelError(
                f"no INA3221 power rails under {root} (looked for ina3221/*/hwmon/hwmon*/"
                "in*_label and ina3221x/*/iio:device*/rail_name_*)"
            )
        self.available_rails = tuple(rail.name for rail in found)
        self.rails = _select_rails(found, rails)
        self.sample_power_w()  # fail now on an unreadable rail

    @classmethod
    def available(cls, root: str | Path = DEFAULT_I2C_ROOT) -> bool:
        """Whether any INA3221 rail exists under ``root``."""
        return bool(find_ina_rails(root))

    def sample_power_w(self) -> float:
        return sum(rail.read_w() for rail in self.rails)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": True,
            "root": str(self.root),
            "rails": [rail.name for rail in self.rails],
            "available_rails": list(self.available_rails),
            "interval_s": self.interval_s,
        }
