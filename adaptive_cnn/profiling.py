"""What the profiler measures: layer configurations and networks drawn from the search space.

The layer sweep takes the distinct layers of random networks of every registered family
(so it covers the ranges the search space can produce) plus a small grid that reaches
every supported layer kind; the network set is random networks of every family, timed
end to end. Every descriptor comes from a real torch module.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from adaptive_cnn.networks import describe_arch, get_family, list_networks
from energy_models.layers import LayerDescriptor, describe_network
from energy_models.ops import Add, Mul
from energy_models.profiler import NetworkSpec, layer_id

GRID_SPATIAL = (4, 14, 28)
GRID_CHANNELS = (8, 32, 96)
# ONNX Runtime runs channels off its 4/8-channel blocks in other kernels (plain NCHW): its
# grid has such counts so that every kernel kind a network can run is timed (its large
# kernels are timed inside the networks, so the grid skips 96 channels).
ORT_GRID_CHANNELS = (5, 8, 12, 32)


@dataclass(frozen=True)
class SweepSize:
    """How much a profile measures.

    Attributes:
        layer_networks: random networks per family and input shape whose layers are swept.
        max_layers: cap on distinct layer configurations (a seeded sample beyond it).
        networks: networks timed end to end, spread over families and input shapes.
    """

    layer_networks: int
    max_layers: int
    networks: int


DEFAULT_SIZE = SweepSize(layer_networks=60, max_layers=1500, networks=150)
QUICK_SIZE = SweepSize(layer_networks=8, max_layers=150, networks=30)
#: input shapes of the sampled networks (C, H, W), quick profile or not
DEFAULT_SHAPES = ((1, 28, 28), (3, 32, 32))


# ONNX Runtime's predictor is kernel-level: its kernels are timed inside the networks,
# so its profile spends the time on networks; layers alone only cover the rarer kernels.
ORT_DEFAULT_SIZE = SweepSize(layer_networks=20, max_layers=300, networks=400)
ORT_QUICK_SIZE = SweepSize(layer_networks=4, max_layers=40, networks=150)


def sweep_size(
    quick: bool,
    layers: int | None = None,
    networks: int | None = None,
    runtime: str = "torch",
) -> SweepSize:
    """The profile's size for ``runtime`` (quick or default), caps replaced where given."""
    if runtime == "onnxruntime":
        base = ORT_QUICK_SIZE if quick else ORT_DEFAULT_SIZE
    else:
        base = QUICK_SIZE if quick else DEFAULT_SIZE
    return SweepSize(base.layer_networks, layers or base.max_layers, networks or base.networks)


def default_shapes(quick: bool) -> tuple[tuple[int, int, int], ...]:
    """The input shapes of a profile's sampled networks when none are given: both, quick
    or not (a quick profile of 1x28x28 networks alone mispriced the 3x32x32 networks
    users bring: their first, three-channel and strided convolutions were never timed)."""
    del quick  # the same shapes; a quick profile times fewer networks of each
    return DEFAULT_SHAPES


class _Pair(nn.Module):
    """Feeds a two-input op from one tensor: ``op(x, x)`` or ``op(x, gate(x))``."""

    def __init__(self, op: nn.Module, gate: bool) -> None:
        super().__init__()
        self.op, self.gate = op, nn.AdaptiveAvgPool2d(1) if gate else None

    def forward(self, x):
        return self.op(x, self.gate(x) if self.gate is not None else x)


def _grid_modules(c: int, hw: int) -> list[nn.Module]:
    modules: list[nn.Module] = [
        nn.Conv2d(c, c, 3, padding=1, bias=False),
        nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False),  # strided: the families have none dense
        nn.Conv2d(c, 2 * c, 1, bias=False),
        nn.Conv2d(c, c, 5, 2, 2, groups=c, bias=False),
        nn.Conv2d(c, c, 7, padding=3),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.ReLU6(),
        nn.LeakyReLU(),
        nn.SiLU(),
        nn.Sigmoid(),
        nn.Hardswish(),
        nn.Hardsigmoid(),
        nn.Tanh(),
        nn.GELU(),
        nn.Identity(),
        nn.Dropout(),
        nn.AdaptiveAvgPool2d(1),
        nn.AdaptiveMaxPool2d(1),
        _Pair(Add(), gate=False),
        _Pair(Mul(), gate=True),
        nn.Sequential(nn.Flatten(), nn.Linear(c * hw * hw, 64)),
    ]
    if hw >= 2:
        modules += [nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(2, ceil_mode=True)]
        modules += [nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1)]
    return modules


def grid_layers(channels: Sequence[int] = GRID_CHANNELS) -> list[LayerDescriptor]:
    """A small grid over every supported layer kind (channels x spatial size)."""
    layers = []
    for c in channels:
        for hw in GRID_SPATIAL:
            for module in _grid_modules(c, hw):
                layers += describe_network(module, (c, hw, hw))
    return layers


def grid_channels(runtime: str) -> tuple[int, ...]:
    """The grid's channel counts for a runtime (ONNX Runtime's adds unblocked ones)."""
    return ORT_GRID_CHANNELS if runtime == "onnxruntime" else GRID_CHANNELS


def sweep_layers(
    input_shapes: Sequence[tuple[int, int, int]],
    size: SweepSize,
    rng: np.random.Generator,
    num_classes: int = 10,
    grid_channels: Sequence[int] = GRID_CHANNELS,
) -> list[LayerDescriptor]:
    """Distinct layer configurations of random networks of every family, plus the grid
    (over ``grid_channels``).

    Returns:
        Layers with unique :func:`energy_models.profiler.layer_id`, in a seeded random order
        (so slow drift of the machine does not line up with layer size); the grid is
        always included, the sampled layers are capped at ``size.max_layers``.
    """
    sampled: dict[str, LayerDescriptor] = {}
    for shape in input_shapes:
        for name in list_networks():
            family = get_family(name)
            for _ in range(size.layer_networks):
                arch = family.sample(rng)
                for layer in describe_arch(f"{name}:{arch.to_str()}", shape, num_classes):
                    sampled.setdefault(layer_id(layer), replace(layer, name=""))
    keys = list(sampled)
    rng.shuffle(keys)
    chosen = {k: sampled[k] for k in keys[: size.max_layers]}
    for layer in grid_layers(grid_channels):
        chosen.setdefault(layer_id(layer), replace(layer, name=""))
    order = list(chosen)
    rng.shuffle(order)
    return [chosen[k] for k in order]


def _build(arch: str, shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    family_name, _, body = arch.partition(":")
    family = get_family(family_name)
    return family.build(family.from_str(body), shape, num_classes)


ANCHOR_PREFIX = "anchor:"


def _spec(
    key: str, arch: str, shape: tuple[int, int, int], num_classes: int, **meta
) -> NetworkSpec:
    return NetworkSpec(
        id=key,
        build=partial(_build, arch, shape, num_classes),
        input_shape=shape,
        layers=describe_arch(arch, shape, num_classes),
        meta={"arch": arch, "family": arch.partition(":")[0], "num_classes": num_classes, **meta},
    )


def anchor_set(shape: tuple[int, int, int], num_classes: int = 10) -> list[NetworkSpec]:
    """Every family's reference networks, with fixed ids, timed in every profile.

    They are the same in every profile of a device, so the ratio of their latencies in two
    profiles measures how much faster or slower the machine ran in one session than in
    the other (shared machines drift); the accuracy report shows it.
    """
    specs = []
    for name in list_networks():
        for ref, arch in get_family(name).references().items():
            full = f"{name}:{arch.to_str()}"
            key = f"{ANCHOR_PREFIX}{name}:{ref}@{'x'.join(map(str, shape))}"
            specs.append(_spec(key, full, shape, num_classes, anchor=True))
    return specs


def network_set(
    input_shapes: Sequence[tuple[int, int, int]],
    count: int,
    rng: np.random.Generator,
    num_classes: int = 10,
) -> list[NetworkSpec]:
    """The anchors plus ``count`` random networks (families and shapes taken in turn).

    Returns:
        The specs in a seeded random order, anchors spread among the others.
    """
    specs = _random_networks(input_shapes, count, rng, num_classes)
    specs += anchor_set(tuple(input_shapes[0]), num_classes)
    order = rng.permutation(len(specs))
    return [specs[i] for i in order]


def _random_networks(
    input_shapes: Sequence[tuple[int, int, int]],
    count: int,
    rng: np.random.Generator,
    num_classes: int,
) -> list[NetworkSpec]:
    families = list_networks()
    specs: dict[str, NetworkSpec] = {}
    attempts = 0
    while len(specs) < count and attempts < 20 * count:
        attempts += 1
        name = families[len(specs) % len(families)]
        shape = tuple(input_shapes[(len(specs) // len(families)) % len(input_shapes)])
        arch = f"{name}:{get_family(name).sample(rng).to_str()}"
        key = f"{arch}@{'x'.join(map(str, shape))}"
        if key in specs:
            continue
        specs[key] = _spec(key, arch, shape, num_classes)
    return list(specs.values())


@dataclass(frozen=True)
class ProfileRequest:
    """Everything one ``acnn profile`` run needs (see its ``--help`` for each field)."""

    out: str | Path
    device: Any  # energy_models.devices.DeviceProfile
    runtime: str
    threads: int
    size: SweepSize
    shapes: tuple[tuple[int, int, int], ...]
    seed: int = 0
    num_classes: int = 10
    warmup: int = 10
    repeats: int = 30
    rounds: int = 5
    quick: bool = False
    skip_layers: bool = False
    skip_networks: bool = False
    retake_noisy: bool = False
    power_csv: str | None = None
    time_limit_s: float | None = None


@dataclass(frozen=True)
class ProfileSummary:
    """Record counts of a profile directory after a run, and how the run ended."""

    layers: int
    networks: int
    noisy: int
    power: str
    label: str
    out_of_time: bool


def _power_spec(request: ProfileRequest) -> dict[str, Any]:
    spec = request.device.power.to_dict()
    if request.power_csv:
        spec = {
            "source": "power-meter-csv",
            "csv": request.power_csv,
            "idle_w": spec["idle_w"],
            "active_w": spec["active_w"],
        }
    return spec


def _settings(request: ProfileRequest, power: Any) -> dict[str, Any]:
    import torch

    block = {}
    if request.runtime == "onnxruntime":  # the kernel rules' layout block on this host
        from energy_models.runtimes import nchwc_block

        block = {"nchwc_block": nchwc_block()}
    return {
        **block,
        "device": request.device.name,
        "runtime": request.runtime,
        "threads": request.threads,
        "torch_version": torch.__version__,
        "warmup": request.warmup,
        "rounds": request.rounds,
        "repeats": request.repeats,
        "seed": request.seed,
        "input_shapes": [list(s) for s in request.shapes],
        "num_classes": request.num_classes,
        "quick": request.quick,
        "sizes": {
            "layer_networks": request.size.layer_networks,
            "max_layers": request.size.max_layers,
            "networks": request.size.networks,
        },
        "power": power.describe(),
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
    }


def take_profile(
    request: ProfileRequest, progress: Callable[..., Any] | None = None
) -> ProfileSummary:
    """Measure (or resume) a profile: the layer sweep, then the network set.

    Args:
        request: what to measure and where.
        progress: a factory ``progress(label)`` of objects with ``update(done, total,
            message)`` and ``close()`` (e.g. :class:`adaptive_cnn.progress.ProgressLine`),
            or None for silence.
    """
    from energy_models.power import make_power_source
    from energy_models.profile_store import LAYERS_FILE, NETWORKS_FILE, ProfileStore
    from energy_models.profiler import Profiler, TimingSettings
    from energy_models.runtimes import check_runtime

    check_runtime(request.runtime)
    power = make_power_source(_power_spec(request))
    label = "measured" if power.measured else "estimated"
    store = ProfileStore.open(request.out, _settings(request, power))
    deadline = time.monotonic() + request.time_limit_s if request.time_limit_s else None
    timing = TimingSettings(request.warmup, request.repeats, request.rounds)
    profiler = Profiler(
        store, request.runtime, request.threads, power, timing, deadline, request.retake_noisy
    )
    if progress:
        print(
            f"profiling {request.device.name} / {request.runtime} / {request.threads} threads;"
            f" power: {power.name} ({label})",
            file=sys.stderr,
        )
    try:
        if not request.skip_layers:
            layers = sweep_layers(
                request.shapes,
                request.size,
                np.random.default_rng(request.seed),
                request.num_classes,
                grid_channels(request.runtime),
            )
            _run(profiler.profile_layers, layers, progress, "layers  ")
        if not request.skip_networks and not profiler.out_of_time():
            nets = network_set(
                request.shapes,
                request.size.networks,
                np.random.default_rng([request.seed, 1]),
                request.num_classes,
            )
            _run(profiler.profile_networks, nets, progress, "networks")
    finally:
        power.close()
    layers_done, nets_done = store.done(LAYERS_FILE), store.done(NETWORKS_FILE)
    noisy = sum(bool(r.get("noisy")) for r in (*layers_done.values(), *nets_done.values()))
    return ProfileSummary(
        len(layers_done), len(nets_done), noisy, power.name, label, profiler.out_of_time()
    )


def _run(method, items, progress, label: str) -> None:
    bar = progress(label) if progress else None
    method(items, bar.update if bar else None)
    if bar:
        bar.close()
