"""Search-space dimensions: the one source of truth for a family's optimiser encoding.

A network family describes its fixed-length encoding as a tuple of these frozen
dimensions. The optimiser backend converts them with ``to_skopt()``; the families use
``contains`` to validate vectors and ``canonical`` to turn an optimiser's numpy scalars
back into the plain Python values an architecture holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from adaptive_cnn.errors import ConfigError

Prior = Literal["uniform", "log-uniform"]


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not _is_bool(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not _is_bool(value)


@dataclass(frozen=True)
class Integer:
    """An integer dimension with inclusive bounds.

    Attributes:
        name: the dimension's name, e.g. ``"filters_1"``.
        low: smallest allowed value (inclusive).
        high: largest allowed value (inclusive).
    """

    name: str
    low: int
    high: int

    def __post_init__(self) -> None:
        if not (_is_int(self.low) and _is_int(self.high)) or self.low > self.high:
            raise ConfigError(
                f"dimension {self.name!r}: bounds must be integers with low <= high, "
                f"got {self.low!r}..{self.high!r}"
            )

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is an integer (not a bool) within the bounds."""
        return _is_int(value) and self.low <= value <= self.high

    def canonical(self, value: Any) -> int:
        """The plain ``int`` for a contained value (numpy integers from an optimiser)."""
        return int(value)

    def sample(self, rng: np.random.Generator) -> int:
        """A uniformly drawn value."""
        return int(rng.integers(self.low, self.high + 1))

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Integer`` (scikit-optimize is imported lazily)."""
        from skopt.space import Integer as SkoptInteger

        return SkoptInteger(self.low, self.high, name=self.name)

    def __str__(self) -> str:
        return f"{self.name} in {self.low}..{self.high}"


@dataclass(frozen=True)
class Real:
    """A real dimension with inclusive bounds and a uniform or log-uniform prior.

    Attributes:
        name: the dimension's name.
        low: smallest allowed value (inclusive); > 0 for the log-uniform prior.
        high: largest allowed value (inclusive).
        prior: ``"uniform"`` or ``"log-uniform"``.
    """

    name: str
    low: float
    high: float
    prior: Prior = "uniform"

    def __post_init__(self) -> None:
        if self.prior not in ("uniform", "log-uniform"):
            raise ConfigError(
                f"dimension {self.name!r}: prior must be 'uniform' or 'log-uniform', "
                f"got {self.prior!r}"
            )
        bounds_ok = _is_real(self.low) and _is_real(self.high) and self.low <= self.high
        if not bounds_ok or not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(
                f"dimension {self.name!r}: bounds must be finite numbers with low <= high, "
                f"got {self.low!r}..{self.high!r}"
            )
        if self.prior == "log-uniform" and self.low <= 0:
            raise ConfigError(
                f"dimension {self.name!r}: a log-uniform prior needs low > 0, got {self.low!r}"
            )

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a finite number (not a bool) within the bounds."""
        return _is_real(value) and math.isfinite(value) and self.low <= value <= self.high

    def canonical(self, value: Any) -> float:
        """The plain ``float`` for a contained value."""
        return float(value)

    def sample(self, rng: np.random.Generator) -> float:
        """A value drawn from the prior."""
        if self.prior == "log-uniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Real`` (scikit-optimize is imported lazily)."""
        from skopt.space import Real as SkoptReal

        return SkoptReal(self.low, self.high, prior=self.prior, name=self.name)

    def __str__(self) -> str:
        return f"{self.name} in [{self.low}, {self.high}] ({self.prior})"


def _same_choice(value: Any, choice: Any) -> bool:
    # True == 1 in Python: a bool must only match a bool choice, and vice versa.
    if _is_bool(value) != _is_bool(choice):
        return False
    try:
        return bool(value == choice)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Categorical:
    """A dimension over a fixed tuple of choices (ints, floats, strings or bools).

    Attributes:
        name: the dimension's name.
        choices: the allowed values; the first one is the canonical filler value.
    """

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple) or not self.choices:
            raise ConfigError(
                f"dimension {self.name!r}: choices must be a non-empty tuple, got {self.choices!r}"
            )

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices, or -1 when it is not one of them."""
        return next((i for i, c in enumerate(self.choices) if _same_choice(value, c)), -1)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices (bools and ints never match each other)."""
        return self.index(value) >= 0

    def canonical(self, value: Any) -> Any:
        """The choice object itself for a contained value (numpy scalars become plain)."""
        return self.choices[self.index(value)]

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly drawn choice."""
        return self.choices[int(rng.integers(len(self.choices)))]

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Categorical`` (scikit-optimize is imported lazily)."""
        from skopt.space import Categorical as SkoptCategorical

        return SkoptCategorical(list(self.choices), name=self.name)

    def __str__(self) -> str:
        return f"{self.name} in {{{', '.join(map(repr, self.choices))}}}"


Dimension = Integer | Real | Categorical


def filler(dimension: Dimension) -> Any:
    """The fixed canonical value that fills an inactive dimension of an encoding.

    Args:
        dimension: the inactive dimension.

    Returns:
        Its lower bound, or its first choice for a categorical dimension.
    """
    if isinstance(dimension, Categorical):
        return dimension.choices[0]
    return dimension.low
