"""Radio energy and latency of sending an image to the cloud over one link (pure numpy).

The uplink power model is the linear one of Huang et al., "A Close Examination of
Performance and Power Characteristics of 4G LTE Networks" (MobiSys 2012): while sending at
throughput ``t_u`` (Mbit/s) the radio draws ``P_u = α_u · t_u + β`` watts. After the
transfer the radio stays in a high-power *tail* state before it sleeps; its energy
(tail power × tail time) is charged per transfer. For one small transfer over LTE the tail
dominates: offloading single images over LTE is expensive unless transfers are batched,
which ``tail_share`` (the fraction of the tail charged to each transfer) expresses.

Units are in the names: ``*_mbps`` is Mbit/s (10**6 bits per second), ``*_w`` watts,
``*_mj`` millijoules, ``*_ms`` milliseconds, ``*_bytes`` bytes. Watts × milliseconds are
millijoules, which is why the formulas below carry no conversion factor for energy.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from energy_models.errors import EnergyModelError

NO_LINK = "none"
"""The link name that means "no cloud stage": every image is answered on the device."""

BITS_PER_BYTE = 8

_NUMBER_FIELDS = (
    "uplink_mbps",
    "downlink_mbps",
    "base_power_w",
    "power_per_mbps_w",
    "tail_energy_mj",
    "rtt_ms",
    "tail_share",
)
_REQUIRED_FIELDS = _NUMBER_FIELDS[:-1]  # tail_share defaults to 1.0
_TEXT_FIELDS = ("name", "source")


@dataclass(frozen=True)
class LinkModel:
    """One network link of the device (WiFi, LTE, 3G or user-defined).

    Attributes:
        name: the link's name (``"wifi"``), used by ``--link``.
        uplink_mbps: uplink throughput, Mbit/s (> 0).
        downlink_mbps: downlink throughput, Mbit/s (> 0).
        base_power_w: β, the radio's power floor while transmitting, W.
        power_per_mbps_w: α_u, extra watts per Mbit/s of uplink throughput.
        tail_energy_mj: energy of the radio's tail state after a transfer
            (tail power × tail time), mJ.
        rtt_ms: round-trip time to the cloud server, ms.
        source: citation of the figures (empty for a user's own link).
        tail_share: fraction of the tail energy charged per transfer, in [0, 1]: 1.0 when
            every image is sent on its own, less when transfers are batched.
    """

    name: str
    uplink_mbps: float
    downlink_mbps: float
    base_power_w: float
    power_per_mbps_w: float
    tail_energy_mj: float
    rtt_ms: float
    source: str = ""
    tail_share: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name == NO_LINK:
            raise EnergyModelError(
                f"link name must be a non-empty string other than {NO_LINK!r}, got {self.name!r}"
            )
        if not isinstance(self.source, str):
            raise EnergyModelError(f"link {self.name!r}: source must be text, got {self.source!r}")
        for key in _NUMBER_FIELDS:
            _check_number(self.name, key, getattr(self, key))
            object.__setattr__(self, key, float(getattr(self, key)))  # YAML ints -> floats
        for key in ("uplink_mbps", "downlink_mbps"):
            if getattr(self, key) <= 0:
                raise EnergyModelError(f"link {self.name!r}: {key} must be > 0")
        if self.tail_share > 1:
            raise EnergyModelError(
                f"link {self.name!r}: tail_share must be in [0, 1], got {self.tail_share}"
            )

    @property
    def uplink_power_w(self) -> float:
        """Radio power while sending at the link's uplink throughput: β + α_u · t_u, W."""
        return self.base_power_w + self.power_per_mbps_w * self.uplink_mbps

    def transfer_time_ms(self, payload_bytes: ArrayLike) -> np.ndarray | float:
        """Time to send ``payload_bytes`` at the uplink throughput, ms (same shape)."""
        return _scalar_or_array(_bytes(payload_bytes) * BITS_PER_BYTE / (self.uplink_mbps * 1e3))

    def downlink_time_ms(self, payload_bytes: ArrayLike) -> np.ndarray | float:
        """Time to receive ``payload_bytes`` at the downlink throughput, ms (same shape)."""
        return _scalar_or_array(_bytes(payload_bytes) * BITS_PER_BYTE / (self.downlink_mbps * 1e3))

    def send_energy_mj(self, payload_bytes: ArrayLike) -> np.ndarray | float:
        """Radio energy to send ``payload_bytes``, mJ (same shape).

        transfer time × (β + α_u · t_u) + tail_share × tail energy; zero bytes cost nothing
        because no transfer happens.
        """
        payload = _bytes(payload_bytes)
        energy = np.asarray(self.transfer_time_ms(payload)) * self.uplink_power_w
        tail = self.tail_share * self.tail_energy_mj
        return _scalar_or_array(np.where(payload > 0, energy + tail, 0.0))

    def offload_energy_mj(
        self,
        payload_bytes: ArrayLike,
        *,
        idle_power_w: float,
        cloud_latency_ms: float,
        response_bytes: ArrayLike = 0,
    ) -> np.ndarray | float:
        """Device energy of sending ``payload_bytes`` and waiting for the answer, mJ.

        Send energy + ``idle_power_w`` × (RTT + ``cloud_latency_ms`` + downlink time of
        ``response_bytes``). The radio is also powered during the wait, which the tail charge
        partly covers, so this errs slightly high (the safe side for a budget). Zero payload
        bytes: no offload happens, 0.
        """
        _check_number(self.name, "idle_power_w", idle_power_w)
        payload = _bytes(payload_bytes)
        wait_ms = self._wait_ms(cloud_latency_ms, response_bytes)
        energy = np.asarray(self.send_energy_mj(payload)) + idle_power_w * wait_ms
        return _scalar_or_array(np.where(payload > 0, energy, 0.0))

    def offload_latency_ms(
        self, payload_bytes: ArrayLike, *, cloud_latency_ms: float, response_bytes: ArrayLike = 0
    ) -> np.ndarray | float:
        """Time from the start of the upload to the answer, ms (same shape).

        Uplink transfer time + RTT + ``cloud_latency_ms`` + downlink time of
        ``response_bytes``. Zero payload bytes: no offload happens, 0.
        """
        payload = _bytes(payload_bytes)
        total = np.asarray(self.transfer_time_ms(payload)) + self._wait_ms(
            cloud_latency_ms, response_bytes
        )
        return _scalar_or_array(np.where(payload > 0, total, 0.0))

    def _wait_ms(self, cloud_latency_ms: float, response_bytes: ArrayLike) -> np.ndarray:
        _check_number(self.name, "cloud_latency_ms", cloud_latency_ms)
        response_ms = np.asarray(self.downlink_time_ms(response_bytes))
        return self.rtt_ms + cloud_latency_ms + response_ms

    def with_overrides(self, **numbers: float) -> LinkModel:
        """A copy with some numbers replaced (``link.with_overrides(rtt_ms=20)``)."""
        unknown = sorted(set(numbers) - set(_NUMBER_FIELDS))
        if unknown:
            raise EnergyModelError(
                f"link {self.name!r}: unknown number(s) {', '.join(unknown)}; "
                f"known: {', '.join(_NUMBER_FIELDS)}"
            )
        return dataclasses.replace(self, **numbers)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> LinkModel:
        """Build from a mapping of the field names (``name`` may come as an argument).

        Unknown keys and missing numbers are errors that name them.
        """
        if not isinstance(data, Mapping):
            raise EnergyModelError(f"link {name!r} must be a mapping of numbers, got {data!r}")
        label = name if name is not None else data.get("name")
        unknown = sorted(set(data) - set(_NUMBER_FIELDS) - set(_TEXT_FIELDS))
        if unknown:
            raise EnergyModelError(
                f"link {label!r}: unknown key(s) {', '.join(map(str, unknown))}"
                f"; known: {', '.join(_TEXT_FIELDS + _NUMBER_FIELDS)}"
            )
        missing = [key for key in _REQUIRED_FIELDS if key not in data]
        if missing:
            raise EnergyModelError(f"link {label!r}: missing {', '.join(missing)}")
        return cls(**{**data, "name": label})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able mapping; ``LinkModel.from_dict(link.to_dict()) == link``."""
        return dataclasses.asdict(self)


def links_from_mapping(
    data: Mapping[str, Any], *, base: Mapping[str, LinkModel] | None = None, origin: str = ""
) -> dict[str, LinkModel]:
    """Links of a ``{name: {key: number}}`` mapping, merged over ``base``.

    A name already in ``base`` needs only the numbers it changes; if it changes numbers but
    gives no ``source``, the source says which numbers were overridden and where. A new name
    must give every number. Returns ``base``'s links plus the new and changed ones.
    """
    links = dict(base or {})
    if not isinstance(data, Mapping):
        raise EnergyModelError(f"{origin}: links must be a mapping of link name to numbers")
    for name, values in data.items():
        values = {} if values is None else values
        if not isinstance(values, Mapping):
            raise EnergyModelError(f"{origin}: link {name!r} must be a mapping of numbers")
        links[str(name)] = _merge_link(str(name), values, links.get(str(name)), origin)
    return links


def _merge_link(
    name: str, values: Mapping[str, Any], base: LinkModel | None, origin: str
) -> LinkModel:
    where = f"{origin}: " if origin else ""
    if base is None:
        try:
            return LinkModel.from_dict(values, name=name)
        except EnergyModelError as exc:
            raise EnergyModelError(f"{where}{exc}") from None
    merged = {**base.to_dict(), **values}
    changed = sorted(k for k in values if k in _NUMBER_FIELDS and values[k] != getattr(base, k))
    if changed and "source" not in values:
        merged["source"] = (
            f"{base.source} [overridden{' in ' + origin if origin else ''}: {', '.join(changed)}]"
        )
    try:
        return LinkModel.from_dict(merged, name=name)
    except EnergyModelError as exc:
        raise EnergyModelError(f"{where}{exc}") from None


def _check_number(link: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EnergyModelError(f"link {link!r}: {key} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise EnergyModelError(f"link {link!r}: {key} must be finite and >= 0, got {value!r}")


def _bytes(payload_bytes: ArrayLike) -> np.ndarray:
    payload = np.asarray(payload_bytes, dtype=float)
    if payload.size and (not np.all(np.isfinite(payload)) or np.any(payload < 0)):
        raise EnergyModelError("payload bytes must be finite and >= 0")
    return payload


def _scalar_or_array(values: np.ndarray | float) -> np.ndarray | float:
    values = np.asarray(values, dtype=float)
    return float(values) if values.ndim == 0 else values
