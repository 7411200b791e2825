"""Training configuration: the budget (epochs, subset) and the optimiser settings."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from adaptive_cnn.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained.

    Attributes:
        epochs: passes over the (possibly subsetted) training split; fractions allowed
            (0.5 = half an epoch), which is what proxy training during search uses.
        subset: train on this many training images (a seeded random subset), or all if None.
        batch_size: images per optimiser step.
        lr: peak learning rate of AdamW (linear warm-up, then cosine decay to zero).
        weight_decay: AdamW decoupled weight decay.
        warmup_fraction: share of the steps spent warming the learning rate up.
    """

    epochs: float = 3.0
    subset: int | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.03

    def __post_init__(self) -> None:
        # one numeric type per field: the config is part of the training-cache key, and
        # epochs=3 and epochs=3.0 must name the same training
        for name, kind in (("epochs", float), ("lr", float), ("weight_decay", float),
                           ("warmup_fraction", float), ("batch_size", int)):  # fmt: skip
            object.__setattr__(self, name, _number(name, getattr(self, name), kind))
        if self.subset is not None:
            object.__setattr__(self, "subset", _number("subset", self.subset, int))
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be > 0, got {self.epochs}")
        if self.subset is not None and self.subset < 1:
            raise ConfigError(f"subset must be a positive image count, got {self.subset}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (a YAML/JSON file); an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown training setting {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)


def _number(name: str, value: Any, kind: type) -> float | int:
    """``value`` as ``kind`` (an int only when it is a whole number); else a ConfigError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):  # inf would pass every range check below
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if kind is int and not number.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number) if kind is int else number
