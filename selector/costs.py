"""What an image pays on the device when it reaches each stage of a cascade."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selector.errors import SelectorError


@dataclass(frozen=True)
class StageCosts:
    """Per-stage costs of an S-stage cascade, stage 0 first (cheapest).

    Every cost is paid by an image that *reaches* the stage, so an image exiting at stage
    ``s`` pays the sum over stages ``0..s``. Arrays are stored as read-only copies.

    Attributes:
        energy_mj: (S,) device energy in mJ; for the cloud stage the radio energy to send
            the image plus the device's idle energy while it waits for the answer.
        latency_ms: (S,) latency added in ms.
        payload_bytes: (S,) bytes sent off the device (non-zero for the cloud stage).
        remote: (S,) bool, the stage runs off the device; only the last stage may be remote.
    """

    energy_mj: np.ndarray
    latency_ms: np.ndarray
    payload_bytes: np.ndarray
    remote: np.ndarray

    def __post_init__(self) -> None:
        energy = _cost_vector("energy_mj", self.energy_mj)
        size = energy.shape[0]
        latency = _cost_vector("latency_ms", self.latency_ms, size)
        payload = _cost_vector("payload_bytes", self.payload_bytes, size)
        remote = np.array(self.remote)
        if remote.shape != (size,) or remote.dtype != np.bool_:
            raise SelectorError(f"remote must be a boolean array of shape ({size},)")
        if remote[:-1].any():
            raise SelectorError("only the last stage may be remote (run off the device)")
        remote.setflags(write=False)
        for name, value in (
            ("energy_mj", energy),
            ("latency_ms", latency),
            ("payload_bytes", payload),
            ("remote", remote),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_stages(self) -> int:
        """Number of stages S."""
        return int(self.energy_mj.shape[0])


def _cost_vector(name: str, values: np.ndarray, size: int | None = None) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SelectorError(f"{name} must be an array of numbers") from None
    if array.ndim != 1 or array.shape[0] == 0:
        raise SelectorError(f"{name} must have shape (S,) with S >= 1, got {array.shape}")
    if size is not None and array.shape[0] != size:
        raise SelectorError(f"{name} has {array.shape[0]} stages, energy_mj has {size}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise SelectorError(f"{name} must be finite and non-negative, got {array.tolist()}")
    array.setflags(write=False)
    return array
