"""Device energy per image of all-local, all-cloud and a designed cascade vs the link.

Pure numpy (no I/O): the design's per-stage outcomes on the validation and test splits,
its predicted local stage energies and the communication model give every strategy's
energy, accuracy and offload rate exactly for any link setting; sweeps vary the uplink
bandwidth or the round-trip time; crossovers are where two strategies' energies meet.

All-cloud energy per image (``energy_models.communication``), with payload ``b`` bytes,
uplink ``B`` Mbit/s, radio power ``β + α·B`` W, tail share × tail energy ``s·T`` mJ, idle
device power ``P`` W, round-trip time ``R`` ms and cloud inference time ``L`` ms::

    E_cloud = 8·b/(1000·B) · (β + α·B) + s·T + P·(R + L)        [mJ]

It falls with bandwidth towards the floor ``8·b·α/1000 + s·T + P·(R + L)`` and grows
linearly with the RTT, so the break-even points with a fixed local energy are closed form
(:func:`breakeven_bandwidth_mbps`, :func:`breakeven_rtt_ms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from energy_models.communication import BITS_PER_BYTE, LinkModel
from selector import CascadeData, StageCosts, evaluate, optimise_thresholds

ALL_LOCAL = "all-local (largest stage)"
LOCAL_CASCADE = "local cascade (no cloud)"
ALL_CLOUD = "all-cloud"
FIXED = "designed (fixed thresholds)"
REOPTIMISED = "designed (re-optimised)"
SWEEPS = {"uplink_mbps": "uplink bandwidth (Mbit/s)", "rtt_ms": "round-trip time (ms)"}
"""The link numbers the experiment sweeps, with their axis labels."""
STRATEGIES = (ALL_LOCAL, LOCAL_CASCADE, ALL_CLOUD, FIXED, REOPTIMISED)
# Pairs whose crossovers are reported: (a, b) means "a becomes cheaper than b".
PAIRS = (
    (ALL_CLOUD, ALL_LOCAL),
    (ALL_CLOUD, LOCAL_CASCADE),
    (ALL_CLOUD, FIXED),
    (FIXED, LOCAL_CASCADE),
    (REOPTIMISED, LOCAL_CASCADE),
    (REOPTIMISED, FIXED),
)


@dataclass(frozen=True)
class OffloadSetup:
    """A designed cascade (L local stages, then the cloud) as the sweep needs it.

    Attributes:
        local_energy_mj: (L,) predicted device energy of each local stage, mJ.
        local_latency_ms: (L,) predicted latency of each local stage, ms.
        payload_bytes: bytes sent per offloaded image.
        idle_power_w: the device's idle power while it waits for the cloud, W.
        cloud_latency_ms: the cloud model's inference time, ms.
        thresholds: (L,) the design's exit thresholds (local stages; the cloud answers).
        val: outcomes of the L + 1 stages on the validation split (thresholds are
            re-optimised on it).
        test: outcomes of the L + 1 stages on the test split (every figure is on it).
        target_val_accuracy: the re-optimised cascade's accuracy floor on validation.
    """

    local_energy_mj: tuple[float, ...]
    local_latency_ms: tuple[float, ...]
    payload_bytes: float
    idle_power_w: float
    cloud_latency_ms: float
    thresholds: tuple[float, ...]
    val: CascadeData
    test: CascadeData
    target_val_accuracy: float

    @property
    def n_local(self) -> int:
        return len(self.local_energy_mj)

    def cloud_energy_mj(self, link: LinkModel) -> float:
        """Device energy to send one image over ``link`` and wait for the answer, mJ."""
        return float(
            link.offload_energy_mj(
                self.payload_bytes,
                idle_power_w=self.idle_power_w,
                cloud_latency_ms=self.cloud_latency_ms,
            )
        )

    def costs(self, link: LinkModel) -> StageCosts:
        """Stage costs of the whole cascade with the cloud reached over ``link``."""
        latency = link.offload_latency_ms(
            self.payload_bytes, cloud_latency_ms=self.cloud_latency_ms
        )
        return StageCosts(
            energy_mj=np.asarray([*self.local_energy_mj, self.cloud_energy_mj(link)]),
            latency_ms=np.asarray([*self.local_latency_ms, float(latency)]),
            payload_bytes=np.asarray([0.0] * self.n_local + [self.payload_bytes]),
            remote=np.asarray([False] * self.n_local + [True]),
        )


@dataclass(frozen=True)
class StrategyPoint:
    """One strategy at one link setting (test split); energies are per image, mJ."""

    strategy: str
    energy_mj: float
    accuracy: float
    offload_rate: float
    thresholds: tuple[float, ...] = ()


def link_independent(setup: OffloadSetup) -> dict[str, StrategyPoint]:
    """All-local (largest stage alone) and the local cascade with no cloud exit."""
    largest = setup.n_local - 1
    local_data = CascadeData(
        setup.test.confidence[: setup.n_local], setup.test.correct[: setup.n_local]
    )
    local_costs = StageCosts(
        energy_mj=np.asarray(setup.local_energy_mj),
        latency_ms=np.asarray(setup.local_latency_ms),
        payload_bytes=np.zeros(setup.n_local),
        remote=np.zeros(setup.n_local, dtype=bool),
    )
    local = evaluate(local_data, local_costs, np.asarray(setup.thresholds[:largest]))
    return {
        ALL_LOCAL: StrategyPoint(
            ALL_LOCAL,
            setup.local_energy_mj[largest],
            float(setup.test.correct[largest].mean()),
            0.0,
        ),
        LOCAL_CASCADE: StrategyPoint(
            LOCAL_CASCADE,
            float(local.energy_mj[0]),
            float(local.accuracy[0]),
            0.0,
            setup.thresholds[:largest],
        ),
    }


def strategies_at(
    setup: OffloadSetup,
    link: LinkModel,
    reoptimise: bool = True,
    fixed_local: dict[str, StrategyPoint] | None = None,
) -> dict[str, StrategyPoint]:
    """Every strategy's energy, accuracy and offload rate over ``link`` (test split).

    The re-optimised cascade takes the least-energy thresholds on the validation split
    that keep the design's validation accuracy (``target_val_accuracy``) at this link's
    costs, then is evaluated on test like the others.
    """
    points = dict(fixed_local or link_independent(setup))
    costs = setup.costs(link)
    points[ALL_CLOUD] = StrategyPoint(
        ALL_CLOUD, float(costs.energy_mj[-1]), float(setup.test.correct[-1].mean()), 1.0
    )
    points[FIXED] = _evaluated(FIXED, setup.test, costs, setup.thresholds)
    if reoptimise:
        choice = optimise_thresholds(
            setup.val, costs, min_accuracy=min(setup.target_val_accuracy, 1.0)
        )
        points[REOPTIMISED] = _evaluated(REOPTIMISED, setup.test, costs, choice.thresholds)
    return points


def _evaluated(name: str, data: CascadeData, costs: StageCosts, thresholds) -> StrategyPoint:
    m = evaluate(data, costs, np.asarray(thresholds, dtype=float))
    return StrategyPoint(
        name,
        float(m.energy_mj[0]),
        float(m.accuracy[0]),
        float(m.offload_rate[0]),
        tuple(float(t) for t in thresholds),
    )


def sweep(
    setup: OffloadSetup,
    base: LinkModel,
    parameter: str,
    values: Sequence[float],
    reoptimise: bool = True,
    progress=None,
) -> list[dict[str, float | str]]:
    """Rows (parameter, value, strategy, energy_mj, accuracy, offload_rate) of a sweep.

    Args:
        setup: the design.
        base: the link whose other numbers stay fixed.
        parameter: a :class:`LinkModel` number, ``uplink_mbps`` or ``rtt_ms``.
        values: the settings to try.
        reoptimise: also re-optimise the thresholds at every setting.
        progress: called as ``progress(done, total)`` after each setting.
    """
    fixed_local = link_independent(setup)
    rows = []
    for i, value in enumerate(values):
        link = base.with_overrides(**{parameter: float(value)})
        for point in strategies_at(setup, link, reoptimise, fixed_local).values():
            rows.append(
                {
                    "parameter": parameter,
                    "value": float(value),
                    "strategy": point.strategy,
                    "energy_mj": point.energy_mj,
                    "accuracy": point.accuracy,
                    "offload_rate": point.offload_rate,
                }
            )
        if progress is not None:
            progress(i + 1, len(values))
    return rows


@dataclass(frozen=True)
class Crossing:
    """Where strategy ``a`` becomes cheaper (or dearer) than ``b`` along a sweep.

    Attributes:
        value: the parameter value of the crossing, interpolated between grid points.
        lower, upper: the grid points that bracket it.
        a_cheaper_above: True when ``a`` is the cheaper one above ``value``.
    """

    value: float
    lower: float
    upper: float
    a_cheaper_above: bool


def find_crossings(
    x: Sequence[float], energy_a: Sequence[float], energy_b: Sequence[float], log_x: bool = False
) -> list[Crossing]:
    """Sign changes of ``energy_a - energy_b`` along an increasing grid ``x``.

    Between two grid points of opposite sign the crossing is interpolated linearly in x
    (or in log x with ``log_x``); a grid point where the two are equal is a crossing only
    if the sign differs on its two sides. Ties (``|a - b|`` within 1e-9 relative) count
    as zero.
    """
    x = np.asarray(x, dtype=float)
    diff = np.asarray(energy_a, dtype=float) - np.asarray(energy_b, dtype=float)
    scale = np.maximum(np.abs(energy_a), np.abs(energy_b))
    sign = np.where(np.abs(diff) <= 1e-9 * np.maximum(scale, 1e-12), 0, np.sign(diff))
    nonzero = np.flatnonzero(sign)
    crossings = []
    for i, j in zip(nonzero[:-1], nonzero[1:], strict=True):
        if sign[i] == sign[j]:
            continue
        if j == i + 1:
            u = _scale(x[[i, j]], log_x)
            t = diff[i] / (diff[i] - diff[j])
            value = u[0] + t * (u[1] - u[0])
            value = float(np.exp(value) if log_x else value)
        else:  # exact ties in between: the middle of the tied run
            value = float(np.median(x[i + 1 : j]))
        crossings.append(Crossing(value, float(x[i]), float(x[j]), bool(sign[j] < 0)))
    return crossings


def _scale(x: np.ndarray, log_x: bool) -> np.ndarray:
    return np.log(x) if log_x else x


def breakeven_bandwidth_mbps(
    link: LinkModel,
    payload_bytes: float,
    idle_power_w: float,
    cloud_latency_ms: float,
    local_mj: float,
) -> float | None:
    """Uplink bandwidth above which all-cloud costs less than ``local_mj`` (closed form).

    Returns:
        The bandwidth in Mbit/s; 0.0 when the cloud is cheaper at any bandwidth; None when
        it never is (its floor at infinite bandwidth is at or above ``local_mj``).
    """
    bits_k = BITS_PER_BYTE * payload_bytes / 1e3
    floor = (
        bits_k * link.power_per_mbps_w
        + link.tail_share * link.tail_energy_mj
        + idle_power_w * (link.rtt_ms + cloud_latency_ms)
    )
    room = local_mj - floor
    if room <= 0:
        return None
    return bits_k * link.base_power_w / room


def breakeven_rtt_ms(
    link: LinkModel,
    payload_bytes: float,
    idle_power_w: float,
    cloud_latency_ms: float,
    local_mj: float,
) -> float | None:
    """Round-trip time below which all-cloud costs less than ``local_mj`` (closed form).

    Returns:
        The RTT in ms; ``inf`` when the device draws no idle power and the cloud is cheaper
        at any RTT; None when the cloud is dearer even at zero RTT.
    """
    at_zero = link.with_overrides(rtt_ms=0.0).offload_energy_mj(
        payload_bytes, idle_power_w=idle_power_w, cloud_latency_ms=cloud_latency_ms
    )
    room = local_mj - float(at_zero)
    if room <= 0:
        return None
    return float("inf") if idle_power_w == 0 else room / idle_power_w
