"""Power sources against fake sysfs trees, a replayed NVML trace and hand-computed means.

Windows run on a fake clock; sampled sources use a long ``interval_s`` (the sampler
thread then takes no sample of its own) except in the tests of the thread itself.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from energy_models import power_sources
from energy_models.errors import EnergyModelError
from energy_models.power import (
    SPEC_KEYS,
    DeclaredPowerModel,
    PowerReading,
    SamplingSource,
    make_power_source,
    time_weighted_mean_w,
)
from energy_models.power_meter import PowerMeterCsvSource, PowerMeterTrace
from energy_models.power_sources import JetsonInaSource, NvmlSource, RaplSource

NO_THREAD_SAMPLES = 3600.0  # seconds: longer than any test, so only begin/end samples


class FakeClock:
    """A clock that moves only when told to, seconds."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def _write(path: Path, text: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


# --------------------------------------------------------------------------- readings


def test_reading_labels_and_trapezoid_mean() -> None:
    measured = PowerReading(5.0, 10.0, 2.0, "rapl", True)
    assert measured.label == "measured"
    assert PowerReading(9.0, 9.0, 1.0, "declared", False).label == "estimated"
    assert measured.to_dict()["label"] == "measured"
    # (10 + 20) / 2 * 1 s + 20 W * 3 s = 75 J over 4 s; the plain mean would be 16.67 W
    assert time_weighted_mean_w([0.0, 1.0, 4.0], [10.0, 20.0, 20.0]) == pytest.approx(18.75)
    assert time_weighted_mean_w([3.0, 3.0], [4.0, 6.0]) == pytest.approx(5.0)
    with pytest.raises(EnergyModelError, match="negative"):
        PowerReading(1.0, 1.0, -1.0, "rapl", True)


# --------------------------------------------------------------------------- RAPL

MAX_UJ = 262_143_328_850


def _rapl_domain(root: Path, name: str, label: str, energy_uj: int) -> Path:
    _write(root / name / "name", label)
    _write(root / name / "energy_uj", energy_uj)
    _write(root / name / "max_energy_range_uj", MAX_UJ)
    return root / name / "energy_uj"


def _rapl_tree(root: Path) -> dict[str, Path]:
    return {
        "pkg0": _rapl_domain(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": _rapl_domain(root, "intel-rapl:0:0", "core", 5_000_000),  # sub-domain
        "pkg1": _rapl_domain(root, "intel-rapl:1", "package-1", MAX_UJ - 4_000_000),
        "psys": _rapl_domain(root, "intel-rapl:2", "psys", 7_000_000),  # includes packages
        "mmio": _rapl_domain(root, "intel-rapl-mmio:0", "package-0", 3_000_000),  # duplicate
    }


def test_rapl_sums_packages_across_a_wrap(tmp_path: Path) -> None:
    files = _rapl_tree(tmp_path)
    clock = FakeClock(10.0)
    with RaplSource(tmp_path, clock=clock) as rapl:
        assert [d.name for d in rapl.domains] == ["package-0", "package-1"]
        window = rapl.begin()
        _write(files["pkg0"], 21_000_000)  # +20 J
        _write(files["pkg1"], 6_000_000)  # 4 J to the wrap, 6 J after it: +10 J
        for other in ("core0", "psys", "mmio"):
            _write(files[other], 999_000_000)  # must not count
        clock.advance(2.0)
        reading = window.end()
    assert (reading.energy_j, reading.duration_s, reading.power_w) == pytest.approx((30, 2, 15))
    assert (reading.source, reading.label) == ("rapl", "measured")
    assert rapl.describe()["domains"][1]["max_energy_range_uj"] == MAX_UJ
    with pytest.raises(EnergyModelError, match="already ended"):
        window.end()
    with pytest.raises(EnergyModelError, match="closed"):
        rapl.begin()


def test_rapl_zero_length_window_and_missing_tree(tmp_path: Path) -> None:
    _rapl_tree(tmp_path / "powercap")
    with RaplSource(tmp_path / "powercap", clock=FakeClock()) as rapl:
        with pytest.raises(EnergyModelError, match="longer window"):
            rapl.begin().end()
    assert not RaplSource.available(tmp_path / "empty")
    with pytest.raises(EnergyModelError, match="no RAPL package domains"):
        RaplSource(tmp_path / "empty")


def test_rapl_permission_error_says_how_to_fix(tmp_path: Path, monkeypatch) -> None:
    files = _rapl_tree(tmp_path)
    if os.geteuid() == 0:  # root reads a chmod-000 file anyway: inject the kernel's refusal
        real_read = power_sources._read_text

        def refuse_energy(path: Path) -> str:
            if path.name == "energy_uj":
                raise PermissionError(13, "Permission denied", str(path))
            return real_read(path)

        monkeypatch.setattr(power_sources, "_read_text", refuse_energy)
    else:
        files["pkg0"].chmod(0)
    with pytest.raises(EnergyModelError, match="root") as info:
        RaplSource(tmp_path)
    assert "chmod" in str(info.value) and "udev" in str(info.value)
    assert not RaplSource.available(tmp_path)


# --------------------------------------------------------------------------- Jetson INA3221


def _hwmon_rail(hwmon: Path, n: int, label: str, mv: float, ma: float) -> None:
    _write(hwmon / f"in{n}_label", label)
    _write(hwmon / f"in{n}_input", mv)
    _write(hwmon / f"curr{n}_input", ma)


def _orin_hwmon(root: Path) -> Path:
    hwmon = root / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    _hwmon_rail(hwmon, 1, "VDD_IN", 5000, 1200)  # 6 W
    _hwmon_rail(hwmon, 2, "VDD_CPU_GPU_CV", 5000, 400)  # 2 W
    _hwmon_rail(hwmon, 3, "VDD_SOC", 5000, 300)  # 1.5 W
    _write(hwmon / "in7_label", "sum of shunt voltages")  # no curr7_input: not a rail
    _write(hwmon / "in7_input", 40)
    return hwmon


def test_jetson_hwmon_defaults_to_the_input_rail(tmp_path: Path) -> None:
    hwmon = _orin_hwmon(tmp_path)
    clock = FakeClock(100.0)
    with JetsonInaSource(tmp_path, interval_s=NO_THREAD_SAMPLES, clock=clock) as ina:
        assert ina.available_rails == ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")
        assert [r.name for r in ina.rails] == ["VDD_IN"]
        assert ina.sample_power_w() == pytest.approx(6.0)
        window = ina.begin()  # 6 W
        _write(hwmon / "curr1_input", 2000)  # 5 V * 2 A = 10 W
        clock.advance(4.0)
        reading = window.end()
    # trapezoid of 6 W -> 10 W over 4 s: mean 8 W, 32 J
    assert (reading.power_w, reading.energy_j, reading.duration_s) == pytest.approx((8, 32, 4))
    assert reading.source == "jetson-ina"


def test_jetson_hwmon_named_rails_and_unknown_names(tmp_path: Path) -> None:
    _orin_hwmon(tmp_path)
    with JetsonInaSource(tmp_path, rails=["VDD_CPU_GPU_CV", "VDD_SOC"]) as ina:
        assert ina.sample_power_w() == pytest.approx(2.0 + 1.5)
        assert ina.describe()["rails"] == ["VDD_CPU_GPU_CV", "VDD_SOC"]
    with pytest.raises(EnergyModelError, match="VDD_GPU") as info:
        JetsonInaSource(tmp_path, rails=["VDD_GPU"])
    assert "VDD_SOC" in str(info.value)  # lists the available rails


def test_jetson_legacy_iio_layout(tmp_path: Path) -> None:
    device = tmp_path / "ina3221x" / "6-0040" / "iio:device0"
    for n, (label, mw) in enumerate([("POM_5V_IN", 4000), ("POM_5V_GPU", 1500), ("NC", 0)]):
        _write(device / f"rail_name_{n}", label)
        _write(device / f"in_power{n}_input", mw)
    assert JetsonInaSource.available(tmp_path)
    with JetsonInaSource(tmp_path) as ina:
        assert ina.available_rails == ("POM_5V_IN", "POM_5V_GPU")  # NC: not connected
        assert ina.sample_power_w() == pytest.approx(4.0)


def test_jetson_without_an_input_rail_sums_all(tmp_path: Path) -> None:
    device = tmp_path / "ina3221x" / "1-0040" / "iio:device0"
    for n, (label, mw) in enumerate([("GPU", 2500), ("CPU", 1000), ("SOC", 700)]):
        _write(device / f"rail_name_{n}", label)
        _write(device / f"in_power{n}_input", mw)
    with JetsonInaSource(tmp_path) as ina:
        assert ina.sample_power_w() == pytest.approx(2.5 + 1.0 + 0.7)
    assert not JetsonInaSource.available(tmp_path / "none")
    with pytest.raises(EnergyModelError, match="no INA3221"):
        JetsonInaSource(tmp_path / "none")


# --------------------------------------------------------------------------- sampler thread


class RampSensor(SamplingSource):
    """p(t) = 10 W + 2 W/s * t; every read moves the fake clock 0.5 s on."""

    name = "ramp"

    def __init__(self, clock: FakeClock, interval_s: float, fail_after: int | None = None):
        super().__init__(interval_s=interval_s, clock=clock)
        self.fake_clock, self.calls, self.fail_after = clock, 0, fail_after

    def sample_power_w(self) -> float:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise OSError("sensor gone")
        power = 10.0 + 2.0 * self.fake_clock.t
        self.fake_clock.advance(0.5)
        return power

    def describe(self) -> dict:
        return {"name": self.name, "measured": True}


def _wait_for(condition, timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert condition()


def test_sampler_thread_samples_and_stops() -> None:
    sensor = RampSensor(FakeClock(), interval_s=0.001)
    window = sensor.begin()
    _wait_for(lambda: window.n_samples >= 4)
    reading = window.end()
    assert not window.running
    # samples at 0, 0.5, ..., 0.5 (n - 1) s of a linear ramp: the trapezoid mean is exact
    span = 0.5 * (sensor.calls - 1)
    assert sensor.calls >= 5
    assert reading.duration_s == pytest.approx(span)
    assert reading.power_w == pytest.approx(10.0 + 2.0 * span / 2)
    assert reading.energy_j == pytest.approx(reading.power_w * span)
    sensor.close()


def test_close_stops_open_windows_and_errors_surface() -> None:
    sensor = RampSensor(FakeClock(), interval_s=0.001)
    window = sensor.begin()
    sensor.close()
    sensor.close()  # idempotent
    assert not window.running
    failing = RampSensor(FakeClock(), interval_s=0.001, fail_after=2)
    window = failing.begin()
    _wait_for(lambda: not window.running)
    with pytest.raises(EnergyModelError, match="sensor gone"):
        window.end()
    failing.close()


# --------------------------------------------------------------------------- NVML

# A recorded trace: (time s, total energy mJ, power mW)
NVML_TRACE = [
    (0.0, 0, 60_000),
    (1.0, 60_000, 70_000),
    (2.0, 130_000, 80_000),
    (3.0, 210_000, 80_000),
]


class FakeNvml:
    """pynvml's API replaying NVML_TRACE at the fake clock's time."""

    class NVMLError(Exception):
        pass

    def __init__(self, clock: FakeClock, counter: bool = True, driver: bool = True) -> None:
        self.clock, self.counter, self.driver = clock, counter, driver
        self.shutdowns = 0

    def _now(self) -> tuple[float, int, int]:
        return [row for row in NVML_TRACE if row[0] <= self.clock.t][-1]

    def nvmlInit(self) -> None:
        if not self.driver:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Tesla P100"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.counter:
            raise self.NVMLError("Not Supported")
        return self._now()[1]

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return self._now()[2]


def test_nvml_energy_counter() -> None:
    clock = FakeClock(1.0)
    nvml = FakeNvml(clock)
    gpu = NvmlSource(nvml=nvml, clock=clock)
    assert (gpu.mode, gpu.device_name) == ("energy-counter", "Tesla P100")
    window = gpu.begin()
    clock.advance(2.0)
    reading = window.end()
    # (210000 - 60000) mJ = 150 J over 2 s
    assert (reading.energy_j, reading.power_w) == pytest.approx((150, 75))
    gpu.close()
    gpu.close()
    assert nvml.shutdowns == 1


def test_nvml_falls_back_to_sampling_power() -> None:
    clock = FakeClock(1.0)
    with NvmlSource(
        nvml=FakeNvml(clock, counter=False), interval_s=NO_THREAD_SAMPLES, clock=clock
    ) as gpu:
        assert gpu.describe()["mode"] == "power-sampling"
        window = gpu.begin()  # 70 W
        clock.advance(2.0)  # 80 W
        reading = window.end()
    assert (reading.power_w, reading.energy_j, reading.duration_s) == pytest.approx((75, 150, 2))


def test_nvml_errors(monkeypatch) -> None:
    clock = FakeClock()
    with pytest.raises(EnergyModelError, match="no GPU with index 3"):
        NvmlSource(3, nvml=FakeNvml(clock))
    with pytest.raises(EnergyModelError, match="Driver Not Loaded"):
        NvmlSource(nvml=FakeNvml(clock, driver=False))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    with pytest.raises(EnergyModelError, match="pip install nvidia-ml-py"):
        NvmlSource()


# --------------------------------------------------------------------------- power-meter CSV

T0 = 1_700_000_000.0  # Unix seconds


def _ramp_csv(path: Path, rows: int = 11) -> Path:
    # power_w = 10 + 2 (t - T0), one row a second
    lines = ["timestamp,power_w"] + [f"{T0 + i},{10 + 2 * i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_trace_mean_of_a_linear_ramp(tmp_path: Path) -> None:
    trace = PowerMeterTrace.load(_ramp_csv(tmp_path / "meter.csv"))
    # a linear ramp's mean over [a, b] is its value at (a + b) / 2 = T0 + 4.875
    assert trace.mean_power_w(T0 + 2.5, T0 + 7.25) == pytest.approx(10 + 2 * 4.875)
    assert trace.energy_j(T0 + 2.5, T0 + 7.25) == pytest.approx(19.75 * 4.75)
    assert trace.mean_power_w(T0 + 3.5, T0 + 3.5) == pytest.approx(17.0)
    with pytest.raises(EnergyModelError, match="not covered"):
        trace.mean_power_w(T0 + 9.0, T0 + 11.0)
    with pytest.raises(EnergyModelError, match="before it begins"):
        trace.mean_power_w(T0 + 3.0, T0 + 2.0)


def test_trace_interpolates_at_the_edges() -> None:
    text = "timestamp_s,power_mw\n0,0\n1,10000\n2,10000\n3,0\n"
    trace = PowerMeterTrace.parse(text)
    # [0.5, 1]: 5 -> 10 W, 3.75 J; [1, 2]: 10 J; [2, 2.5]: 10 -> 5 W, 3.75 J; 17.5 J / 2 s
    assert trace.mean_power_w(0.5, 2.5) == pytest.approx(8.75)


def test_trace_from_voltage_and_current() -> None:
    trace = PowerMeterTrace.parse("timestamp,voltage_v,current_a\n0,5.0,1.0\n2,5.0,3.0\n")
    assert trace.mean_power_w(0.0, 2.0) == pytest.approx((5.0 + 15.0) / 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timestamp,power_w\n0,1\n2,1\n1,1\n", r"m\.csv:4: timestamp 1\.0 is not after 2\.0"),
        ("timestamp,power_w\n0,1\n1,abc\n", r"m\.csv:3: power_w is not a number"),
        ("timestamp,power_w\n0,1\n1,nan\n", r"m\.csv:3: power_w is missing or not finite"),
        ("timestamp,power_w\n0,1\n1\n", r"m\.csv:3: power_w is missing"),
        ("timestamp,power_w\n0,1\n", r"m\.csv: 1 data row\(s\)"),
        ("time,power_w\n0,1\n1,1\n", r"m\.csv: no timestamp column"),
        ("timestamp,watts\n0,1\n1,1\n", r"m\.csv: no power column"),
        ("", r"m\.csv: empty file"),
    ],
)
def test_trace_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(EnergyModelError, match=message) as info:
        PowerMeterTrace.load(tmp_path / "m.csv")
    assert "\n" not in str(info.value)


def test_meter_source_rereads_the_growing_log(tmp_path: Path) -> None:
    path = _ramp_csv(tmp_path / "meter.csv", rows=5)  # covers T0 .. T0 + 4
    wall = FakeClock(T0 + 2.5)
    with PowerMeterCsvSource(path, wall_clock=wall) as meter:
        window = meter.begin()
        wall.t = T0 + 7.25
        _ramp_csv(path, rows=11)  # the meter kept logging
        with path.open("a") as log:
            log.write(f"{T0 + 11},3")  # a line being written: no newline yet
        reading = window.end()
    assert (reading.power_w, reading.duration_s) == pytest.approx((19.75, 4.75))
    assert (reading.source, reading.label) == ("power-meter-csv", "measured")
    assert (window.t0_s, window.t1_s) == (T0 + 2.5, T0 + 7.25)
    with pytest.raises(EnergyModelError, match="does not exist"):
        PowerMeterCsvSource(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- declared model


def test_declared_model_is_estimated() -> None:
    clock = FakeClock(5.0)
    model = DeclaredPowerModel(idle_w=2.0, active_w=9.0, note="datasheet", clock=clock)
    with model.measure() as m:
        clock.advance(3.0)
    assert (m.reading.power_w, m.reading.energy_j, m.reading.duration_s) == (9.0, 27.0, 3.0)
    assert (m.reading.measured, m.reading.label, m.reading.source) == (
        False,
        "estimated",
        "declared",
    )
    assert model.idle_w == 2.0 and not model.measured
    assert model.describe() == {
        "name": "declared",
        "measured": False,
        "idle_w": 2.0,
        "active_w": 9.0,
        "note": "datasheet",
    }
    with pytest.raises(EnergyModelError, match="below idle_w"):
        DeclaredPowerModel(idle_w=5.0, active_w=3.0)
    with pytest.raises(EnergyModelError, match="idle_w"):
        DeclaredPowerModel(idle_w=-1.0, active_w=3.0)


def test_measurement_reading_only_after_the_block() -> None:
    measurement = DeclaredPowerModel(1.0, 2.0, clock=FakeClock()).measure()
    with pytest.raises(EnergyModelError, match="after the `with` block"):
        _ = measurement.reading


# --------------------------------------------------------------------------- factory


def _factory(spec: dict, tmp_path: Path, nvml=None):
    return make_power_source(
        spec,
        powercap_root=tmp_path / "powercap",
        i2c_root=tmp_path / "i2c",
        nvml=nvml or FakeNvml(FakeClock(), driver=False),
        clock=FakeClock(),
    )


def test_auto_falls_back_to_the_declared_model(tmp_path: Path) -> None:
    source = _factory({"source": "auto", "idle_w": 2.0, "active_w": 9.0, "note": "vm"}, tmp_path)
    assert isinstance(source, DeclaredPowerModel) and source.active_w == 9.0
    with pytest.raises(EnergyModelError, match="no power sensor found.*idle_w"):
        _factory({"source": "auto"}, tmp_path)


def test_auto_prefers_jetson_then_rapl_then_nvml(tmp_path: Path) -> None:
    declared = {"idle_w": 2.0, "active_w": 9.0}
    gpu = _factory(declared, tmp_path, nvml=FakeNvml(FakeClock()))
    assert isinstance(gpu, NvmlSource)
    gpu.close()
    _rapl_tree(tmp_path / "powercap")
    with _factory(declared, tmp_path) as rapl:
        assert isinstance(rapl, RaplSource)
    _orin_hwmon(tmp_path / "i2c")
    with _factory(declared, tmp_path) as ina:
        assert isinstance(ina, JetsonInaSource)


def test_explicit_sources(tmp_path: Path) -> None:
    _orin_hwmon(tmp_path / "i2c")
    with _factory({"source": "jetson-ina", "rails": ["VDD_SOC"]}, tmp_path) as ina:
        assert ina.describe()["rails"] == ["VDD_SOC"]
    csv_path = _ramp_csv(tmp_path / "meter.csv")
    with _factory({"source": "power-meter-csv", "csv": str(csv_path)}, tmp_path) as meter:
        assert meter.describe() == {
            "name": "power-meter-csv",
            "measured": True,
            "path": str(csv_path),
        }
    with pytest.raises(EnergyModelError, match="csv: PATH"):
        _factory({"source": "power-meter-csv"}, tmp_path)
    with pytest.raises(EnergyModelError, match="no RAPL"):
        _factory({"source": "rapl"}, tmp_path)


def test_factory_rejects_unknown_keys_and_sources(tmp_path: Path) -> None:
    with pytest.raises(EnergyModelError, match="'idle_watts'") as info:
        _factory({"idle_watts": 2.0}, tmp_path)
    assert all(key in str(info.value) for key in SPEC_KEYS)
    with pytest.raises(EnergyModelError, match="'battery'") as info:
        _factory({"source": "battery"}, tmp_path)
    assert "power-meter-csv" in str(info.value)
    with pytest.raises(EnergyModelError, match="rails"):
        _factory({"source": "jetson-ina", "rails": "VDD_IN"}, tmp_path)
