"""The loop closed on the device: each local stage timed per image, as energy, beside the
design's prediction.

:class:`StageMeter` is the one owner of the measurement: the on-device client
(:class:`rpc.edge.EdgeClassifier`) and :func:`check_energy` (``acnn check-energy``) run
every local stage call through :meth:`StageMeter.call`, which times it with
``time.perf_counter`` around the stage's runner. A latency becomes energy as latency x the
device's power (:class:`LatencyEnergy`): the mean power a sensor read over the run where
the device profile has one that can be read (RAPL, NVML, Jetson rails: "measured"), else
the profile's declared active power ("estimated from latency x declared power").

:func:`check_energy` runs a design's local stages at batch 1 on a dataset split in the
runtime and threads the design was priced for, and compares per stage and for the whole
cascade (each image charged the stages it passed) the measured-latency energy with the
predicted one; :func:`write_energy_check` saves it as ``RUN_DIR/energy_check.json``.
Only the local compute is compared: radio energy is the link model's, not measured.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn.errors import RunFolderError
from adaptive_cnn.run_folder import RunFolder
from energy_models.power import Clock, PowerSource, PowerWindow, make_power_source
from energy_models.runtimes import Runner
from selector import ExitPolicy, confidence

CHECK_FILE = "energy_check.json"
DECLARED_LABEL = "estimated from latency x declared power"
SPLITS = ("test", "val", "train")


@dataclass(frozen=True)
class LatencyEnergy:
    """How measured latencies become energy: ``energy_mj = latency_ms x power_w``.

    Attributes:
        power_w: a sensor's mean power over the timed run, or the declared active power.
        source: the power source's name (``rapl``, ``declared``, ...).
        measured: True where the power is a sensor's reading.
    """

    power_w: float
    source: str
    measured: bool

    @property
    def label(self) -> str:
        """``measured`` (a sensor's power) or ``estimated from latency x declared power``."""
        return "measured" if self.measured else DECLARED_LABEL

    def energy_mj(self, latency_ms: float) -> float:
        return latency_ms * self.power_w

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def device_power(run: RunFolder) -> PowerSource:
    """The power source of the device ``run`` was designed for (its profile's sensor where
    one can be read, else its declared model)."""
    from energy_models.devices import load_device
    from energy_models.errors import EnergyModelError

    try:
        device = load_device(run.device)
    except EnergyModelError as exc:  # e.g. designed with a profile file no longer there
        raise EnergyModelError(
            f"{run.path}: the device profile {run.device!r} it was designed for cannot be "
            f"loaded, and measured energies need its power model ({exc})"
        ) from None
    return make_power_source(device.power.to_dict())


def deployed_threads(run: RunFolder, requested: int | None = None) -> int:
    """Threads to run ``run``'s stages with: ``requested``, else the threads the design was
    priced for, else (a run folder that does not record them) its device profile's."""
    if requested is not None:
        return requested
    if run.threads is not None:
        return run.threads
    from energy_models.devices import load_device

    return load_device(run.device).threads


class StageMeter:
    """Times every call of a local stage, per image, and turns the times into energy.

    Args:
        power: the device's power source; a window is open from :meth:`start` to
            :meth:`finish`.
        clock: the timer around each call, seconds (``time.perf_counter``).
    """

    def __init__(self, power: PowerSource, clock: Clock = time.perf_counter) -> None:
        self.power, self._clock = power, clock
        self.latency_ms: dict[int, list[float]] = {}  # image -> ms of each stage it passed
        self._calls: list[tuple[Sequence[int], float]] = []  # (rows, ms per image)
        self._window: PowerWindow | None = None

    def start(self) -> None:
        """Forget earlier calls and open the power window."""
        self.latency_ms, self._calls = {}, []
        self._window = self.power.begin()

    def call(self, runner: Runner, images: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """``runner(images)``, its time shared equally by the images ``rows`` (one per
        image of the batch, in order): at batch 1 the image's own latency."""
        started = self._clock()
        probs = runner(images)
        # one append per call: the per-image bookkeeping waits for finish(), off the
        # client's path (its routing overhead is benchmarked)
        self._calls.append((rows, (self._clock() - started) * 1e3 / len(rows)))
        return probs

    def finish(self) -> LatencyEnergy:
        """Close the window: the power that converts this run's latencies to energy."""
        if self._window is None:
            raise RuntimeError("StageMeter.finish before start")
        reading, self._window = self._window.end(), None
        for rows, ms in self._calls:
            for row in np.asarray(rows).tolist():
                self.latency_ms.setdefault(row, []).append(ms)
        self._calls = []
        if reading.measured and reading.duration_s > 0 and math.isfinite(reading.power_w):
            return LatencyEnergy(reading.power_w, reading.source, True)
        declared = getattr(self.power, "active_w", reading.power_w)
        return LatencyEnergy(float(declared), reading.source, False)

    def image_ms(self, row: int) -> list[float]:
        """The latency of each stage image ``row`` passed, ms (empty if it ran none);
        known once :meth:`finish` has run."""
        return self.latency_ms.get(row, [])


def warm_up(runners: Sequence[Runner], image: np.ndarray, calls: int) -> None:
    """Run each runner ``calls`` times on one image (batch 1), untimed: first calls of a
    session allocate and pick kernels, which a device does once, not per image."""
    for runner in runners:
        for _ in range(calls):
            runner(image)


@dataclass(frozen=True)
class StageCheck:
    """One local stage: predicted and measured-latency energy per call."""

    name: str
    arch: str
    calls: int
    predicted_mj: float
    measured_mj: float
    mean_latency_ms: float
    median_latency_ms: float

    @property
    def ratio(self) -> float:
        """measured / predicted (nan where nothing was predicted or nothing ran)."""
        return _ratio(self.measured_mj, self.predicted_mj)

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in {**asdict(self), "ratio": self.ratio}.items()}


@dataclass(frozen=True)
class EnergyCheck:
    """What :func:`check_energy` found; per image energies are means over the images.

    Attributes:
        stages: one :class:`StageCheck` per local stage.
        images: images run.
        exits: images per exit (``stage1``.. and ``cloud`` for images the local stages
            pass on; those are charged every local stage, and no radio energy).
        predicted_mj_per_image: mean over images of the predicted energy of the local
            stages each image passed.
        measured_mj_per_image: the same with each stage's measured-latency energy.
        energy: how latencies became energy (and its label).
        runtime, threads: what the stages ran in.
        pricing_label: ``priced for X, run in Y`` where ``runtime`` is not the priced one.
        config: the settings that made the check.
        pass_ratios: the whole cascade's measured / predicted of each pass over the
            images (:func:`check_energy`'s ``passes``); the figures above pool all passes.
    """

    stages: tuple[StageCheck, ...]
    images: int
    exits: Mapping[str, int]
    predicted_mj_per_image: float
    measured_mj_per_image: float
    energy: LatencyEnergy
    runtime: str
    threads: int
    pricing_label: str
    config: Mapping[str, Any] = field(default_factory=dict)
    pass_ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        """Whole cascade: measured / predicted energy per image."""
        return _ratio(self.measured_mj_per_image, self.predicted_mj_per_image)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "runtime": self.runtime,
            "threads": self.threads,
            "pricing_label": self.pricing_label,
            "energy": self.energy.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "exits": dict(self.exits),
            "cascade": {
                "predicted_mj_per_image": self.predicted_mj_per_image,
                "measured_mj_per_image": self.measured_mj_per_image,
                "ratio": _plain(self.ratio),
                "pass_ratios": [_plain(r) for r in self.pass_ratios],
            },
            "scope": "local compute only; radio energy is the link model's, not measured",
            "config": dict(self.config),
        }


def check_energy(
    run: RunFolder,
    images: np.ndarray,
    *,
    runtime: str | None = None,
    threads: int | None = None,
    warmup: int = 10,
    passes: int = 1,
    power: PowerSource | None = None,
    progress: Callable[[int, int], Any] | None = None,
    clock: Clock = time.perf_counter,
) -> EnergyCheck:
    """Run ``run``'s local stages on ``images`` one at a time, as the device meets them,
    and compare each stage's measured-latency energy with the design's prediction.

    On a shared machine one pass's figure drifts with the machine (here +-15% between
    passes minutes apart): ``passes`` > 1 runs the images again and pools every pass,
    and the result keeps each pass's ratio.

    Args:
        run: the design run folder.
        images: (N, C, H, W) native-scale pixels, N >= 1.
        runtime: the stages' runtime; None: the one the design was priced for.
        threads: intra-op threads; None: :func:`deployed_threads`'s.
        warmup: untimed calls of each stage before the first image.
        passes: times the images are run, >= 1.
        power: the device's power source (default :func:`device_power`).
        progress: called with (images done, images) after each image (of all passes).
        clock: the timer around each stage call, seconds.
    """
    from adaptive_cnn.stage import deployed_runtime, stage_runner

    if passes < 1:
        raise RunFolderError(f"check-energy needs at least one pass, got {passes}")
    from energy_models.runtimes import set_threads

    runtime, threads = deployed_runtime(run, runtime), deployed_threads(run, threads)
    before = _torch_threads()
    set_threads(threads)
    try:
        runners = [stage_runner(run, s, runtime, threads=threads) for s in run.local_stages]
        power = power or device_power(run)
        checks = []
        for done in range(passes):
            shown = None if progress is None else _offset(progress, done, len(images), passes)
            checks.append(
                measure_cascade(
                    run.local_stages,
                    runners,
                    run.policy,
                    images,
                    power=power,
                    runtime=runtime,
                    threads=threads,
                    warmup=warmup,
                    pricing_label=run.pricing.label(runtime),
                    config={"priced_for": run.pricing.to_dict(), "passes": passes},
                    progress=shown,
                    clock=clock,
                )  # fmt: skip
            )
    finally:
        set_threads(before)
    return pool_passes(checks)


def _offset(progress: Callable[[int, int], Any], done: int, per_pass: int, passes: int):
    return lambda i, _n: progress(done * per_pass + i, per_pass * passes)


def pool_passes(checks: Sequence[EnergyCheck]) -> EnergyCheck:
    """One check from several passes over the same images: energies pooled over every
    call of every pass (each pass's latencies at that pass's power), each pass's
    whole-cascade ratio kept. A stage's median is the median of the passes' medians."""
    first = checks[0]
    if len(checks) == 1:
        return replace(first, pass_ratios=(first.ratio,))
    stages = []
    for i, stage in enumerate(first.stages):
        ran = [c.stages[i] for c in checks if c.stages[i].calls]
        calls = sum(s.calls for s in ran)
        stages.append(
            replace(
                stage,
                calls=calls,
                measured_mj=_weighted([s.measured_mj for s in ran], [s.calls for s in ran]),
                mean_latency_ms=_weighted([s.mean_latency_ms for s in ran], [s.calls for s in ran]),
                median_latency_ms=float(np.median([s.median_latency_ms for s in ran]))
                if ran
                else math.nan,
            )  # fmt: skip
        )
    measured = [c.measured_mj_per_image for c in checks]
    timed_ms = sum(m / c.energy.power_w for m, c in zip(measured, checks, strict=True))
    energy = LatencyEnergy(
        sum(measured) / timed_ms if timed_ms > 0 else first.energy.power_w,  # time-weighted
        "+".join(dict.fromkeys(c.energy.source for c in checks)),
        all(c.energy.measured for c in checks),
    )
    return replace(
        first,
        stages=tuple(stages),
        exits=first.exits,  # the same images through the same policy every pass
        predicted_mj_per_image=float(np.mean([c.predicted_mj_per_image for c in checks])),
        measured_mj_per_image=float(np.mean(measured)),
        energy=energy,
        pass_ratios=tuple(c.ratio for c in checks),
    )


def _weighted(values: Sequence[float], weights: Sequence[int]) -> float:
    total = sum(weights)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else math.nan


def measure_cascade(
    stages: Sequence[Any],
    runners: Sequence[Runner],
    policy: ExitPolicy,
    images: np.ndarray,
    *,
    power: PowerSource,
    runtime: str,
    threads: int,
    warmup: int = 10,
    pricing_label: str = "",
    config: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    clock: Clock = time.perf_counter,
) -> EnergyCheck:
    """Any cascade of local stages timed per image at batch 1: a design's
    (:func:`check_energy`) or a fixed baseline's.

    Args:
        stages: the local stages, each with ``name``, ``arch`` and ``energy_mj`` (the
            predicted energy per call).
        runners: one runner per stage, in ``runtime`` with ``threads`` threads (the caller
            has set torch's threads for eager runtimes).
        policy: the exit rule; it drives ``len(stages)`` stages, or one more (a cloud stage
            that the images passing every local stage are sent on to, untimed).
        images: (N, C, H, W) native-scale pixels, N >= 1.
        power: the device's power source.
        runtime, threads: what the runners run in (recorded).
        warmup: untimed calls of each stage before the first image.
        pricing_label: ``priced for X, run in Y`` where ``runtime`` is not the priced one.
        config: more settings to record with the check.
        progress: called with (images done, images) after each image.
        clock: the timer around each stage call, seconds.
    """
    if not len(images):
        raise RunFolderError("check-energy needs at least one image")
    if len(runners) != len(stages) or policy.n_stages not in (len(stages), len(stages) + 1):
        raise ValueError(
            f"{len(stages)} stages, {len(runners)} runners and a policy for "
            f"{policy.n_stages} stages do not make one cascade"
        )
    meter = StageMeter(power, clock)
    names = [s.name for s in stages]
    exits = _run_cascade(policy, runners, names, images.astype(np.float32), meter, warmup, progress)
    energy = meter.finish()
    settings = {
        "runtime": runtime,
        "threads": threads,
        "warmup": warmup,
        "batch_size": 1,
        **dict(config or {}),
    }
    return _compare(stages, meter, exits, energy, pricing_label, settings)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _run_cascade(
    policy: ExitPolicy, runners, names, images, meter: StageMeter, warmup: int, progress
) -> list[str]:
    """Each image through the local stages until the policy lets it exit; its exit."""
    import torch

    exits = []
    with torch.inference_mode():  # entered once: per call it costs as much as a tiny stage
        warm_up(runners, images[:1], warmup)
        meter.start()
        for i in range(len(images)):
            exits.append(_one_image(policy, runners, names, images[i : i + 1], i, meter))
            if progress is not None:
                progress(i + 1, len(images))
    return exits


def _one_image(policy: ExitPolicy, runners, names, image, row: int, meter: StageMeter) -> str:
    for s, runner in enumerate(runners):
        probs = meter.call(runner, image, (row,))
        if policy.exits_from_scores(s, confidence(probs, policy.metric))[0]:
            return names[s]
    return "cloud"  # passed every local stage: the design sends it on


def _compare(local, meter, exits, energy: LatencyEnergy, label: str, config) -> EnergyCheck:
    per_stage: list[list[float]] = [[] for _ in local]
    predicted = measured = 0.0
    for row in range(len(exits)):
        times = meter.image_ms(row)
        for s, ms in enumerate(times):
            per_stage[s].append(ms)
        predicted += sum(stage.energy_mj for stage in local[: len(times)])
        measured += sum(energy.energy_mj(ms) for ms in times)
    stages = tuple(
        _stage_check(stage, ms, energy) for stage, ms in zip(local, per_stage, strict=True)
    )
    counts = {name: exits.count(name) for name in dict.fromkeys(exits)}
    return EnergyCheck(
        stages, len(exits), counts, predicted / len(exits), measured / len(exits), energy,
        config["runtime"], config["threads"], label, config,
    )  # fmt: skip


def _stage_check(stage, times_ms: list[float], energy: LatencyEnergy) -> StageCheck:
    mean = float(np.mean(times_ms)) if times_ms else math.nan
    median = float(np.median(times_ms)) if times_ms else math.nan
    return StageCheck(
        stage.name, stage.arch, len(times_ms), stage.energy_mj, energy.energy_mj(mean), mean,
        median,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    """JSON has no nan: a figure that does not exist (a stage no image reached) is null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _ratio(measured: float, predicted: float) -> float:
    return measured / predicted if predicted > 0 and math.isfinite(measured) else math.nan


def load_split(run: RunFolder, split: str, data_dir: str | None = None):
    """(images, labels) of ``split`` of the dataset ``run`` was designed on, split as the
    design split it (the summary's ``config``: dataset, data_dir, split_seed)."""
    from adaptive_cnn.data import load_dataset

    if split not in SPLITS:
        raise RunFolderError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    config = run.summary.get("config") or {}
    name = config.get("dataset", run.input.dataset)
    seed = int(config.get("split_seed", 0))
    dataset = load_dataset(name, data_dir=data_dir or config.get("data_dir"), seed=seed)
    if tuple(dataset.input_shape) != tuple(run.input.shape):
        raise RunFolderError(
            f"{name} images are {dataset.input_shape}, the design's input is {run.input.shape}"
        )
    data = getattr(dataset, split)
    return data.images, data.labels


def write_energy_check(run: RunFolder, check: EnergyCheck) -> Path:
    """Save ``check`` as ``RUN_DIR/energy_check.json`` (atomically); return its path."""
    path = run.path / CHECK_FILE
    partial = path.with_name(f".{CHECK_FILE}.partial")
    partial.write_text(json.dumps(check.to_dict(), indent=1) + "\n")
    os.replace(partial, path)
    return path
