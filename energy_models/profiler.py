"""The profiler: times layers alone and networks end to end, with power and system state.

This is the only module of acnn that times code or reads power sensors. Each measurement
runs ``warmup`` untimed calls, then at least ``repeats`` timed calls (more while a measured
power source needs a longer window), and records the median, the 10th/90th percentiles,
the mean power over the window with its source, and psutil's view of the CPU (frequency,
utilisation, load) so that noisy or throttled measurements are visible and can be re-taken.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import psutil
import torch
from torch import nn

from energy_models.layer_builder import build_layer, descriptor_to_dict
from energy_models.layers import LayerDescriptor
from energy_models.power import PowerReading, PowerSource
from energy_models.profile_store import LAYERS_FILE, NETWORKS_FILE, ProfileStore
from energy_models.runtimes import onnx_bytes, ort_node_times, prepare

KERNEL_CALLS = 100  # profiled calls per item for ONNX Runtime's per-node times

# Thresholds set from this machine's profiles (about the worst tenth is flagged): per-call
# spread is wide for microsecond layers, so with several rounds their agreement decides.
NOISY_SPREAD = 0.5  # one round: (p90 - p10) / median above this marks it noisy
THROTTLED_FREQUENCY = 0.9  # current / max CPU frequency below this marks it throttled
ROUND_DISAGREEMENT = 0.25  # (max - min) / median of round medians above this: noisy


@dataclass(frozen=True)
class TimingSettings:
    """How each layer or network is timed.

    Attributes:
        warmup: untimed calls before each round.
        repeats: timed calls per round (at least; more while a measured power source
            needs a longer window).
        rounds: rounds per measurement, interleaved with the other items of a chunk so
            that slow drift of a shared machine does not bias one item; the record's
            latency is the median of the round medians.
        min_window_s: with a measured power source, keep calling until the window is this
            long, so that the sensor sees the load.
        chunk: items measured together (round by round) before their records are written.
    """

    warmup: int = 10
    repeats: int = 30
    rounds: int = 3
    min_window_s: float = 0.2
    chunk: int = 40


@dataclass(frozen=True)
class Timing:
    """One round: per-call latency statistics, power over the window, system state."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    calls: int
    t0: float
    t1: float
    power: PowerReading
    cpu_freq_mhz: float | None
    cpu_freq_max_mhz: float | None
    cpu_util_pct: float
    load_1m: float

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / max(self.median_ms, 1e-12)

    @property
    def throttled(self) -> bool:
        return bool(
            self.cpu_freq_mhz
            and self.cpu_freq_max_mhz
            and self.cpu_freq_mhz < THROTTLED_FREQUENCY * self.cpu_freq_max_mhz
        )

    @property
    def noisy(self) -> bool:
        """Spread too wide, or the CPU ran below its top frequency."""
        return self.spread > NOISY_SPREAD or self.throttled

    def to_record(self) -> dict[str, Any]:
        """The fields every profile record carries."""
        return combine_rounds([self])


def combine_rounds(rounds: Sequence[Timing]) -> dict[str, Any]:
    """The record fields of a measurement taken in one or more rounds.

    Latency is the median of the round medians; power is the time-weighted mean over the
    rounds' windows; the measurement is noisy when the CPU was throttled, or when round
    medians disagree by more than :data:`ROUND_DISAGREEMENT` of their median (a single
    round: when its spread exceeds :data:`NOISY_SPREAD`).
    """
    medians = np.asarray([r.median_ms for r in rounds])
    latency = float(np.median(medians))
    durations = np.asarray([r.power.duration_s for r in rounds])
    powers = np.asarray([r.power.power_w for r in rounds])
    power = float(np.average(powers, weights=durations) if durations.sum() > 0 else powers.mean())
    disagreement = float((medians.max() - medians.min()) / max(latency, 1e-12))
    first, last = rounds[0], rounds[-1]
    return {
        "latency_ms": latency,
        "round_medians_ms": medians.tolist(),
        "p10_ms": float(np.median([r.p10_ms for r in rounds])),
        "p90_ms": float(np.median([r.p90_ms for r in rounds])),
        "calls": int(sum(r.calls for r in rounds)),
        "t0": first.t0,
        "t1": last.t1,
        "power_w": power,
        "energy_mj": latency * power,
        "power_source": first.power.source,
        "energy_label": first.power.label,
        "cpu_freq_mhz": last.cpu_freq_mhz,
        "cpu_util_pct": float(np.mean([r.cpu_util_pct for r in rounds])),
        "load_1m": last.load_1m,
        "noisy": bool(
            any(r.throttled for r in rounds)
            or (disagreement > ROUND_DISAGREEMENT if len(rounds) > 1 else first.noisy)
        ),
    }


def _cpu_freq() -> tuple[float | None, float | None]:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        return None, None
    if freq is None:
        return None, None
    return float(freq.current) or None, float(freq.max) or None


def time_callable(
    fn: Callable[[], Any],
    settings: TimingSettings,
    power: PowerSource,
    clock: Callable[[], float] = time.perf_counter,
    wall_clock: Callable[[], float] = time.time,
) -> Timing:
    """Time one round of ``fn`` (warm-up, repeats, median) while ``power`` measures it.

    Runs under ``torch.inference_mode()``, entered once so its cost is not timed, and with
    Python's garbage collector paused so that a collection does not land in a window.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        with torch.inference_mode():
            return _time_callable(fn, settings, power, clock, wall_clock)
    finally:
        if collecting:
            gc.enable()


def _time_callable(fn, settings, power, clock, wall_clock) -> Timing:
    for _ in range(settings.warmup):
        fn()
    psutil.cpu_percent(interval=None)  # start psutil's utilisation interval here
    durations: list[float] = []
    t0 = wall_clock()
    window = power.begin()
    start = clock()
    while len(durations) < settings.repeats or (
        power.measured and clock() - start < settings.min_window_s
    ):
        before = clock()
        fn()
        durations.append(clock() - before)
    reading = window.end()
    t1 = wall_clock()
    ms = np.asarray(durations) * 1e3
    freq, freq_max = _cpu_freq()
    return Timing(
        median_ms=float(np.median(ms)),
        p10_ms=float(np.percentile(ms, 10)),
        p90_ms=float(np.percentile(ms, 90)),
        calls=len(durations),
        t0=t0,
        t1=t1,
        power=reading,
        cpu_freq_mhz=freq,
        cpu_freq_max_mhz=freq_max,
        cpu_util_pct=float(psutil.cpu_percent(interval=None)),
        load_1m=float(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0,
    )


def layer_id(layer: LayerDescriptor) -> str:
    """A stable id of a layer configuration (its descriptor without the module path)."""
    d = descriptor_to_dict(layer)
    d.pop("name")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def kernel_records(
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    layers: Sequence[LayerDescriptor],
    network: str,
    threads: int,
) -> list[dict[str, Any]]:
    """What ONNX Runtime executes for ``module``: one record per node of its optimised
    graph (kernel kind, the layer it maps to, the row it is priced by, its median time per
    call from the runtime's profiler). A node that maps to no layer is an error naming it.
    """
    from energy_models.features import LayerTable
    from energy_models.kernels import graph_kernels

    module = module.eval()
    table = LayerTable.from_networks([layers])
    feeds = {f"input{i}": t.detach().numpy() for i, t in enumerate(inputs)}
    nodes = ort_node_times(onnx_bytes(module, tuple(inputs)), feeds, threads, KERNEL_CALLS)
    kernels = graph_kernels(table.kinds.tolist(), table.values, list(table.names), nodes, network)
    return [
        {
            "kind": k.kind,
            "layer": k.layers[0] if k.layers else "",
            "node": node.name,
            "row": list(k.row),
            "latency_ms": node.latency_ms,
        }
        for k, node in zip(kernels, nodes, strict=True)
    ]


@dataclass(frozen=True)
class NetworkSpec:
    """A network to time: id, a factory for the module, its input shape and metadata."""

    id: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    layers: tuple[LayerDescriptor, ...]
    meta: dict[str, Any]


class Progress(Protocol):
    def __call__(self, done: int, total: int, what: str) -> None: ...


def _pending(items: Sequence[Any], ids: Sequence[str], done: dict, retake_noisy: bool):
    for item, key in zip(items, ids, strict=True):
        old = done.get(key)
        if old is None or (retake_noisy and old.get("noisy")):
            yield item, key


@dataclass
class Profiler:
    """Runs the measurements of one profile and appends them to its store.

    Attributes:
        store: the profile directory being written.
        runtime: inference runtime to time in.
        threads: intra-op threads.
        power: the power source for every window.
        settings: warm-up/repeats.
        deadline: ``time.monotonic()`` after which no new measurement starts (None: none).
        retake_noisy: re-measure records flagged noisy on resume.
    """

    store: ProfileStore
    runtime: str
    threads: int
    power: PowerSource
    settings: TimingSettings = TimingSettings()
    deadline: float | None = None
    retake_noisy: bool = False

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _measure_chunk(self, fns: Sequence[Callable[[], Any]]) -> list[list[Timing]]:
        rounds: list[list[Timing]] = [[] for _ in fns]
        for _ in range(self.settings.rounds):
            for i, fn in enumerate(fns):
                rounds[i].append(time_callable(fn, self.settings, self.power))
        return rounds

    def _run(self, items: list, file: str, prepare_item, record_of, progress, what) -> int:
        done = 0
        for begin in range(0, len(items), self.settings.chunk):
            if self.out_of_time():
                break
            chunk = items[begin : begin + self.settings.chunk]
            timings = self._measure_chunk([prepare_item(item) for item, _ in chunk])
            for (item, key), rounds in zip(chunk, timings, strict=True):
                self.store.append(file, {"id": key, **record_of(item), **combine_rounds(rounds)})
            done += len(chunk)
            if progress:
                progress(done, len(items), what(chunk[-1][0]))
        return done

    def profile_layers(
        self, layers: Sequence[LayerDescriptor], progress: Progress | None = None
    ) -> int:
        """Time each layer configuration alone; returns the number measured now."""
        ids = [layer_id(layer) for layer in layers]
        todo = list(_pending(layers, ids, self.store.done(LAYERS_FILE), self.retake_noisy))

        def prepare_layer(layer: LayerDescriptor) -> Callable[[], Any]:
            module, inputs = build_layer(layer)
            return prepare(module, inputs, self.runtime, self.threads)

        def record_of(layer: LayerDescriptor) -> dict[str, Any]:
            record: dict[str, Any] = {"layer": descriptor_to_dict(layer)}
            if self.runtime == "onnxruntime":
                module, inputs = build_layer(layer)
                alone = (replace(layer, name=""),)  # the exported root module: no scope
                record["kernels"] = kernel_records(module, inputs, alone, layer.kind, self.threads)
            return record

        return self._run(
            todo,
            LAYERS_FILE,
            prepare_layer,
            record_of,
            progress,
            lambda layer: f"{layer.kind} {'x'.join(map(str, layer.in_shape))}",
        )

    def profile_networks(
        self, networks: Iterable[NetworkSpec], progress: Progress | None = None
    ) -> int:
        """Time each network end to end at batch 1; returns the number measured now."""
        networks = list(networks)
        ids = [n.id for n in networks]
        todo = list(_pending(networks, ids, self.store.done(NETWORKS_FILE), self.retake_noisy))

        def prepare_network(spec: NetworkSpec) -> Callable[[], Any]:
            x = torch.randn((1, *spec.input_shape), generator=torch.Generator().manual_seed(0))
            return prepare(spec.build(), (x,), self.runtime, self.threads)

        def record_of(spec: NetworkSpec) -> dict[str, Any]:
            record = {
                **spec.meta,
                "input_shape": list(spec.input_shape),
                "macs": sum(layer.macs for layer in spec.layers),
                "layers": [descriptor_to_dict(layer) for layer in spec.layers],
            }
            if self.runtime == "onnxruntime":
                x = torch.randn((1, *spec.input_shape), generator=torch.Generator().manual_seed(0))
                record["kernels"] = kernel_records(
                    spec.build(), (x,), spec.layers, spec.id, self.threads
                )
            return record

        return self._run(
            todo, NETWORKS_FILE, prepare_network, record_of, progress, lambda spec: spec.id
        )
