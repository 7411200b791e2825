"""Design settings declared once: name, type, unit, default and help of each.

A setting is a dataclass field whose metadata holds a :class:`Setting`
(``field(default=..., metadata=setting(...))``, see :func:`declare`). Everything else is
derived from those declarations: the command line's flags (:func:`add_arguments`), the
checked conversion of a value from a flag or a YAML file (:func:`convert`), the flat
mapping a config file holds (:func:`values_of`), and which settings name the journalled
evaluations of a search (:func:`journal_keys`).

Pure logic: no I/O.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adaptive_cnn.errors import ConfigError
from energy_models.errors import EnergyModelError

KEY = "acnn_setting"


@dataclass(frozen=True)
class Setting:
    """How one setting is given and checked.

    Attributes:
        help: what it means (the flag's help, without the default).
        unit: its unit or kind of value, shown as the flag's metavar (``mJ``, ``EPOCHS``).
        flag: the command-line flag (default ``--`` + the name with dashes); ``""`` for a
            setting that has no flag.
        parse: converts a text or number with a unit (``"2mJ"``) to the stored value.
        choices: the values allowed.
        minimum, maximum: the inclusive range of a number.
        above: a number must be greater than this (an exclusive lower bound).
        journal: the setting changes what a search evaluates, so a journal written under
            another value of it cannot be resumed or reused.
        alias: another key a config file may use (``budget`` for ``budget_mj``).
        repeat: the flag is repeated, once per item of a tuple setting.
        label: its name in a message (default: the field name in words).
    """

    help: str
    unit: str = ""
    flag: str | None = None
    parse: Callable[[Any], Any] | None = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    journal: bool = False
    alias: str | None = None
    repeat: bool = False
    label: str | None = None


def declare(default: Any, help: str, **how: Any) -> Any:
    """A dataclass field holding a setting: ``budget_mj: float | None = declare(None, ...)``."""
    return dataclasses.field(default=default, metadata={KEY: Setting(help, **how)})


@dataclass(frozen=True)
class Declared:
    """One declared setting of a settings class: its field name, type and default."""

    name: str
    kind: type
    optional: bool
    default: Any
    setting: Setting

    @property
    def flag(self) -> str:
        if self.setting.flag is not None:
            return self.setting.flag
        return "--" + self.name.replace("_", "-")


def declared(cls: type) -> list[Declared]:
    """The settings of dataclass ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if KEY not in f.metadata:
            continue
        kind, optional = _base_type(hints[f.name])
        out.append(Declared(f.name, kind, optional, f.default, f.metadata[KEY]))
    return out


def _base_type(hint: Any) -> tuple[type, bool]:
    """(int, True) for ``int | None``; ``tuple`` for ``tuple[str, ...]``."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _base_type(rest[0])[0], True
    if origin is tuple:
        return tuple, False
    return hint, False


def convert(d: Declared, value: Any, source: str = "") -> Any:
    """``value`` as the setting stores it, checked; a wrong value is a :class:`ConfigError`
    naming the setting (``source``: where it came from, e.g. a file)."""
    where = f"{source}: {d.name}" if source else d.flag
    label = d.setting.label or d.name.replace("_", " ")
    try:
        return _checked(d, _typed(d, value))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {label} {exc}") from None
    except EnergyModelError as exc:  # a quantity with a unit that does not read
        raise ConfigError(f"{where}: {exc}") from None


def _typed(d: Declared, value: Any) -> Any:
    said_none = isinstance(value, str) and value.strip().lower() in ("none", "null")
    if value is None or (said_none and d.optional):
        if d.optional:
            return None
        raise ValueError("needs a value")
    if d.setting.parse is not None:
        return d.setting.parse(value)
    if d.kind is bool:
        return _boolean(value)
    if d.kind is int:
        return _integer(value)
    if d.kind is float:
        return _number(value)
    if d.kind is tuple:
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"must be a name or a list of names, got {value!r}")
        return tuple(i.strip() for i in items)
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    return value.strip()


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _integer(value: Any) -> int:
    """A whole number: 3 or "3"; 2.5, "2.5", True and "many" are refused, not rounded."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"must be a whole number, got {value!r}")


def _number(value: Any) -> float:
    """A finite number: 1, 0.5 or "1e-3"; "nan", "inf" and 1e400 are refused."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {value!r}")
    return number


def _shown(value: int | float) -> str:
    """A number for an error message; an integer too large for a float stays exact."""
    try:
        return f"{value:g}"
    except OverflowError:
        text = str(value)
        return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def _checked(d: Declared, value: Any) -> Any:
    s = d.setting
    if value is None:
        return None
    if s.choices and value not in s.choices:
        raise ValueError(f"must be one of {', '.join(map(str, s.choices))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        if s.minimum is not None and value < s.minimum:
            raise ValueError(f"must be >= {s.minimum:g}, got {_shown(value)}")
        if s.maximum is not None and value > s.maximum:
            raise ValueError(f"must be <= {s.maximum:g}, got {_shown(value)}")
        if s.above is not None and not value > s.above:
            raise ValueError(f"must be > {s.above:g}, got {_shown(value)}")
    return value


def values_of(
    classes: tuple[type, ...], mapping: Mapping[str, Any], source: str
) -> Iterator[tuple[str, Any]]:
    """The ``(name, value)`` of each setting of ``classes`` in ``mapping`` (a config file),
    converted and checked; aliases (``budget: 2mJ``) name their setting."""
    for cls in classes:
        for d in declared(cls):
            for key in (d.setting.alias, d.name):  # the name last: it wins (flags set it)
                if key is not None and key in mapping:
                    yield d.name, convert(d, mapping[key], source)


def known_keys(cls: type) -> set[str]:
    """Every key a config file may use for the settings of ``cls`` (aliases included)."""
    keys = set()
    for d in declared(cls):
        keys.add(d.name)
        if d.setting.alias:
            keys.add(d.setting.alias)
    return keys


def journal_keys(*classes: type) -> tuple[str, ...]:
    """The settings that name the journalled evaluations of a search."""
    return tuple(d.name for cls in classes for d in declared(cls) if d.setting.journal)


# --- the command line ----------------------------------------------------------------


def add_arguments(
    parser: argparse._ActionsContainer,
    cls: type,
    *,
    only: tuple[str, ...] | None = None,
    shown_defaults: Mapping[str, str] | None = None,
) -> None:
    """One flag per setting of ``cls`` (or of the settings named in ``only``): its help
    says the unit and the default (the declared one, or ``shown_defaults[name]`` where a
    command has its own). Each flag stores the raw text (None when not given);
    :func:`values_from_args` converts it."""
    for d in declared(cls):
        if d.setting.flag == "" or (only is not None and d.name not in only):
            continue
        help_text = _help(d, (shown_defaults or {}).get(d.name))
        if d.kind is bool:
            flag = d.flag if d.default is False else "--no-" + d.flag.removeprefix("--")
            parser.add_argument(
                flag, dest=d.name, action="store_const", const=not d.default, help=help_text
            )
            continue
        parser.add_argument(
            d.flag,
            dest=d.name,
            metavar=d.setting.unit or d.name.upper(),
            action="append" if d.setting.repeat else "store",
            help=help_text,
        )


def _help(d: Declared, shown: str | None = None) -> str:
    s = d.setting
    text = s.help
    if s.choices and d.kind is not bool:
        text += f"; one of {', '.join(map(str, s.choices))}"
    if d.kind is bool:
        return text
    if shown is None:
        default = d.default
        if isinstance(default, tuple):
            default = " ".join(default)
        if default is None:
            default = "none"
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    return f"{text} (default {shown})".replace("%", "%%")


def values_from_args(
    args: argparse.Namespace, cls: type, only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The settings of ``cls`` (or those in ``only``) given on the command line,
    converted and checked."""
    found = {}
    for d in declared(cls):
        if only is not None and d.name not in only:
            continue
        raw = getattr(args, d.name, None)
        if raw is not None:
            found[d.name] = convert(d, raw, "")
    return found


def validate(obj: Any) -> None:
    """Check (and normalise) every declared setting of dataclass instance ``obj`` in place:
    settings built in Python are held to the same rules as those read from a file."""
    for d in declared(type(obj)):
        object.__setattr__(obj, d.name, convert(d, getattr(obj, d.name), type(obj).__name__))
