"""Profiler, profile store and runtimes: fake clocks for timing logic, real runs for the rest."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from energy_models.errors import EnergyModelError
from energy_models.layers import describe_network
from energy_models.power import DeclaredPowerModel, PowerReading, PowerSource, PowerWindow
from energy_models.profile_store import (
    LAYERS_FILE,
    NETWORKS_FILE,
    ProfileData,
    ProfileStore,
    read_records,
)
from energy_models.profiler import (
    NetworkSpec,
    Profiler,
    Timing,
    TimingSettings,
    combine_rounds,
    layer_id,
    time_callable,
)
from energy_models.runtimes import available_runtimes, prepare

SETTINGS = {
    "device": "test",
    "runtime": "torch",
    "threads": 1,
    "torch_version": "x",
    "warmup": 2,
    "repeats": 30,
}


class FakeClock:
    """Advances by a scripted step per call (seconds)."""

    def __init__(self, steps):
        self.t, self.steps, self.i = 0.0, list(steps), 0

    def __call__(self) -> float:
        now = self.t
        self.t += self.steps[self.i % len(self.steps)]
        self.i += 1
        return now


class FixedWindow(PowerWindow):
    def end(self) -> PowerReading:
        return PowerReading(3.0, 0.3, 0.1, "fake", True)


class FakeMeter(PowerSource):
    name, measured = "fake", True

    def __init__(self):
        super().__init__(lambda: 0.0)

    def begin(self) -> PowerWindow:
        return FixedWindow()

    def describe(self):
        return {"name": self.name}


def test_time_callable_reports_median_and_percentiles_of_the_calls() -> None:
    # each timed call sees clock before/after: durations cycle 1, 2, 3 ... ms via the steps
    calls = []
    durations_ms = [float(1 + i % 5) for i in range(30)]  # 1..5 ms, six times each
    steps = []
    for d in durations_ms:
        steps += [d / 1e3, 0.0]  # 'before' -> 'after' advances d; 'after' -> next 'before' 0
    clock = FakeClock([0.0] + steps)  # first call: window start
    timing = time_callable(
        lambda: calls.append(1),
        TimingSettings(warmup=3, repeats=30),
        DeclaredPowerModel(1.0, 5.0),
        clock=clock,
        wall_clock=lambda: 100.0,
    )
    assert len(calls) == 33 and timing.calls == 30
    assert timing.median_ms == pytest.approx(3.0)
    assert timing.p10_ms == pytest.approx(np.percentile(durations_ms, 10))
    assert timing.power.power_w == 5.0 and timing.power.label == "estimated"
    record = timing.to_record()
    assert record["energy_mj"] == pytest.approx(3.0 * 5.0)  # ms x W = mJ
    assert record["energy_label"] == "estimated" and record["power_source"] == "declared"


def test_measured_source_extends_the_window_to_its_minimum() -> None:
    clock = FakeClock([0.001])  # every clock read advances 1 ms
    n = []
    timing = time_callable(
        lambda: n.append(1),
        TimingSettings(warmup=0, repeats=30, min_window_s=0.2),
        FakeMeter(),
        clock=clock,
    )
    assert timing.calls > 30  # 30 calls x ~3 ms of clock reads < 200 ms window
    assert timing.power.label == "measured"


def test_spread_flags_noisy_measurements() -> None:
    steps = []
    for d in [1.0] * 20 + [10.0] * 10:
        steps += [d / 1e3, 0.0]
    timing = time_callable(
        lambda: None,
        TimingSettings(warmup=0, repeats=30),
        DeclaredPowerModel(1, 2),
        clock=FakeClock([0.0] + steps),
    )
    assert timing.spread > 0.25 and timing.noisy


def test_store_resumes_and_refuses_other_settings(tmp_path) -> None:
    store = ProfileStore.open(tmp_path, SETTINGS)
    store.append(LAYERS_FILE, {"id": "a", "v": 1})
    again = ProfileStore.open(tmp_path, {**SETTINGS, "seed": 3})  # non-identity key may change
    assert again.done(LAYERS_FILE) == {"a": {"id": "a", "v": 1}}
    with pytest.raises(EnergyModelError, match="threads=1"):
        ProfileStore.open(tmp_path, {**SETTINGS, "threads": 2})


def test_torn_last_line_is_skipped_and_sealed(tmp_path) -> None:
    store = ProfileStore.open(tmp_path, SETTINGS)
    store.append(LAYERS_FILE, {"id": "a", "v": 1})
    with (tmp_path / LAYERS_FILE).open("a") as f:
        f.write('{"id": "b", "v"')  # a crash mid-write
    with pytest.warns(UserWarning, match="damaged"):
        assert [r["id"] for r in read_records(tmp_path / LAYERS_FILE)] == ["a"]
    store.append(LAYERS_FILE, {"id": "c", "v": 3})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ids = [r["id"] for r in read_records(tmp_path / LAYERS_FILE)]
    assert ids == ["a", "c"]


def test_later_record_with_the_same_id_supersedes(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "v": 1}, {"id": "a", "v": 2}]))
    assert read_records(path) == [{"id": "a", "v": 2}]


def test_profile_data_refuses_a_folder_without_a_profile(tmp_path) -> None:
    with pytest.raises(EnergyModelError, match="not a profile directory"):
        ProfileData.load(tmp_path)
    (tmp_path / "profile.json").write_text("{oops")
    with pytest.raises(EnergyModelError, match="not valid JSON"):
        ProfileData.load(tmp_path)


def _tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    )


def test_profiler_measures_layers_and_networks_then_resumes(tmp_path) -> None:
    layers = describe_network(_tiny_net(), (1, 8, 8))
    spec = NetworkSpec("tiny", _tiny_net, (1, 8, 8), layers, {"family": "custom"})
    store = ProfileStore.open(tmp_path, SETTINGS)
    profiler = Profiler(
        store, "torch", 1, DeclaredPowerModel(1.0, 4.0), TimingSettings(warmup=2, repeats=30)
    )
    assert profiler.profile_layers(layers) == len(layers)
    assert profiler.profile_networks([spec]) == 1
    data = ProfileData.load(tmp_path)
    assert {r["id"] for r in data.layers} == {layer_id(x) for x in layers}
    net = data.networks[0]
    assert net["family"] == "custom" and net["macs"] == sum(x.macs for x in layers)
    assert net["latency_ms"] > 0 and net["energy_label"] == "estimated"
    assert net["p10_ms"] <= net["latency_ms"] <= net["p90_ms"]
    for key in ("cpu_util_pct", "load_1m", "t0", "t1", "noisy"):
        assert key in net
    again = Profiler(ProfileStore.open(tmp_path, SETTINGS), "torch", 1, DeclaredPowerModel(1, 4))
    assert again.profile_layers(layers) == 0 and again.profile_networks([spec]) == 0


def test_deadline_stops_before_new_measurements(tmp_path) -> None:
    layers = describe_network(_tiny_net(), (1, 8, 8))
    profiler = Profiler(
        ProfileStore.open(tmp_path, SETTINGS), "torch", 1, DeclaredPowerModel(1, 4), deadline=0.0
    )
    assert profiler.profile_layers(layers) == 0
    assert not (tmp_path / LAYERS_FILE).exists()
    assert not (tmp_path / NETWORKS_FILE).exists()


@pytest.mark.parametrize("runtime", available_runtimes())
def test_runtimes_compute_what_torch_computes(runtime: str) -> None:
    torch.manual_seed(0)
    net = _tiny_net().eval()
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        expected = net(x).numpy()
    with torch.inference_mode():
        out = prepare(_copy(net), (x,), runtime, threads=1)()
    out = out[0] if isinstance(out, list) else out.numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def _copy(net: nn.Module) -> nn.Module:
    twin = _tiny_net()
    twin.load_state_dict(net.state_dict())
    return twin


def _round(median_ms: float, power_w: float, duration_s: float) -> Timing:
    reading = PowerReading(power_w, power_w * duration_s, duration_s, "fake", True)
    return Timing(
        median_ms, 0.9 * median_ms, 1.1 * median_ms, 30, 0.0, 1.0, reading, None, None, 10.0, 0.5
    )


def test_rounds_combine_to_the_median_and_time_weighted_power() -> None:
    record = combine_rounds([_round(1.0, 4.0, 1.0), _round(1.1, 8.0, 3.0), _round(1.05, 2.0, 0.0)])
    assert record["latency_ms"] == pytest.approx(1.05)
    assert record["round_medians_ms"] == [1.0, 1.1, 1.05]
    assert record["power_w"] == pytest.approx((4.0 * 1 + 8.0 * 3) / 4)  # weighted by duration
    assert record["energy_mj"] == pytest.approx(1.05 * 7.0)
    assert not record["noisy"]  # (1.1 - 1.0) / 1.05 < 0.25
    disagreeing = combine_rounds([_round(1.0, 1, 1), _round(1.0, 1, 1), _round(1.5, 1, 1)])
    assert disagreeing["noisy"]  # (1.5 - 1.0) / 1.0 > 0.25
