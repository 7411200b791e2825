"""Device profiles: the target device's CPU, runtime, power model or sensor, links and memory.

Profiles are YAML files. acnn ships some as package data (``energy_models/data/devices``);
a user's own, in ``$ACNN_DEVICES_DIR`` or else ``~/.config/acnn/devices``, override a
shipped profile of the same name. A profile looks like::

    name: phone                      # optional, defaults to the file name
    description: Snapdragon-845-class phone, big cluster
    cpu: 4x Cortex-A75 @ 2.8 GHz
    cores: 4                         # or auto: os.cpu_count() when loaded
    threads: 2                       # or auto: as many as cores
    memory_limit: 256MiB             # parsed by energy_models.units.parse_bytes
    runtime: torchscript             # torch | torchscript | onnxruntime
    power:                           # given to the profiler's power-source factory
      source: declared               # auto | rapl | nvml | jetson-ina | power-meter-csv | declared
      idle_w: 0.5                    # fallback model when no sensor can be read
      active_w: 4.0
      note: why these figures
      rails: [VDD_IN]                # source settings: rails, csv, index, interval_s
    links: [wifi, lte]               # or {wifi: {rtt_ms: 20}, ...}; omitted: every link
    sources: [citations of the figures]

This module does the file I/O of profiles and links; :mod:`energy_models.communication`
stays pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from energy_models.communication import NO_LINK, LinkModel, links_from_mapping
from energy_models.errors import EnergyModelError
from energy_models.units import parse_bytes, parse_power_w

POWER_SOURCES = ("auto", "rapl", "nvml", "jetson-ina", "power-meter-csv", "declared")
"""Where a device's power comes from; ``declared`` means the idle/active model, no sensor."""

RUNTIMES = ("torch", "torchscript", "onnxruntime")
"""Inference runtimes a device profile can name."""

DEVICES_DIR_ENV = "ACNN_DEVICES_DIR"
DEFAULT_USER_DIR = Path("~/.config/acnn/devices")
AUTO = "auto"

_PROFILE_KEYS = (
    "name",
    "description",
    "cpu",
    "cores",
    "threads",
    "memory_limit",
    "memory_limit_bytes",
    "runtime",
    "power",
    "links",
    "sources",
    "estimated",
)
_POWER_KEYS = ("source", "idle_w", "active_w", "note")
POWER_EXTRA_KEYS = ("csv", "rails", "index", "interval_s")
"""Source-specific power settings (as :func:`energy_models.power.make_power_source` takes)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PowerSpec:
    """How to get the device's power: a sensor source plus a declared idle/active model.

    Attributes:
        source: one of :data:`POWER_SOURCES`.
        idle_w: declared power of the idle device, W (used when no sensor can be read).
        active_w: declared power while running inference, W (>= ``idle_w``).
        note: why these figures (shown beside estimated energies).
        extra: source-specific settings (``rails`` of a Jetson, ``csv`` of a power meter).
    """

    source: str
    idle_w: float
    active_w: float
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("idle_w", "active_w"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise EnergyModelError(f"power: {key} must be a number of watts, got {value!r}")
            object.__setattr__(self, key, float(value))
        if self.source not in POWER_SOURCES:
            raise EnergyModelError(
                f"unknown power source {self.source!r}; use one of {', '.join(POWER_SOURCES)}"
            )
        if not 0 <= self.idle_w <= self.active_w:
            raise EnergyModelError(
                f"power: need 0 <= idle_w <= active_w, got idle_w={self.idle_w}, "
                f"active_w={self.active_w}"
            )
        clash = sorted(set(self.extra) & set(_POWER_KEYS))
        if clash:
            raise EnergyModelError(f"power: extra settings repeat {', '.join(clash)}")
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerSpec:
        """Build from a profile's ``power:`` mapping (watts as numbers or ``"500mW"``)."""
        if not isinstance(data, Mapping):
            raise EnergyModelError("power must be a mapping with source, idle_w, active_w")
        unknown = sorted(map(str, set(data) - set(_POWER_KEYS) - set(POWER_EXTRA_KEYS)))
        if unknown:
            raise EnergyModelError(
                f"power: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(_POWER_KEYS + POWER_EXTRA_KEYS)}"
            )
        missing = [key for key in ("source", "idle_w", "active_w") if key not in data]
        if missing:
            raise EnergyModelError(f"power: missing {', '.join(missing)}")
        return cls(
            source=str(data["source"]),
            idle_w=parse_power_w(data["idle_w"]),
            active_w=parse_power_w(data["active_w"]),
            note=str(data.get("note", "")),
            extra={k: v for k, v in data.items() if k not in _POWER_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        """The mapping a power-source factory takes: source, idle_w, active_w, note, extras."""
        return {
            "source": self.source,
            "idle_w": self.idle_w,
            "active_w": self.active_w,
            "note": self.note,
            **self.extra,
        }


@dataclass(frozen=True)
class DeviceProfile:
    """A target device (see the module docstring for its YAML form).

    Attributes:
        name: profile name (``"phone"``).
        description: one line for people.
        cpu: the processor, in words.
        cores: CPU cores available to inference.
        threads: inference threads to use (``torch.set_num_threads``).
        memory_limit_bytes: memory a local network may use (parameters + activations), bytes.
        runtime: one of :data:`RUNTIMES`.
        power: the power source and declared model.
        links: the device's network links by name.
        sources: citations of the profile's figures.
    """

    name: str
    description: str
    cpu: str
    cores: int
    threads: int
    memory_limit_bytes: int
    runtime: str
    power: PowerSpec
    links: Mapping[str, LinkModel]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("cores", "threads", "memory_limit_bytes"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EnergyModelError(f"device {self.name!r}: {key} must be a positive integer")
        if self.runtime not in RUNTIMES:
            raise EnergyModelError(
                f"device {self.name!r}: unknown runtime {self.runtime!r}; "
                f"use one of {', '.join(RUNTIMES)}"
            )
        object.__setattr__(self, "links", MappingProxyType(dict(self.links)))
        object.__setattr__(self, "sources", tuple(self.sources))

    @property
    def estimated(self) -> bool:
        """True when power comes from the declared model: energies are estimated."""
        return self.power.source == "declared"

    def link(self, name: str) -> LinkModel:
        """The link called ``name``; an unknown name is an error that lists the links."""
        if name not in self.links:
            known = ", ".join(self.links) or "(none)"
            raise EnergyModelError(
                f"device {self.name!r} has no link {name!r}; its links: {known} "
                f"(or {NO_LINK!r} for all-local)"
            )
        return self.links[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able mapping; :meth:`from_dict` reads it back to an equal profile."""
        return {
            "name": self.name,
            "description": self.description,
            "cpu": self.cpu,
            "cores": self.cores,
            "threads": self.threads,
            "memory_limit_bytes": self.memory_limit_bytes,
            "runtime": self.runtime,
            "power": self.power.to_dict(),
            "estimated": self.estimated,
            "links": {name: link.to_dict() for name, link in self.links.items()},
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        name: str | None = None,
        links: Mapping[str, LinkModel] | None = None,
        origin: str = "",
    ) -> DeviceProfile:
        """Build from a profile mapping, resolving ``auto`` cores/threads and link overrides.

        Args:
            data: the parsed YAML mapping.
            name: the name to use when ``data`` has none (a file's stem).
            links: the links catalog that names in ``links:`` refer to (default: shipped).
            origin: where ``data`` came from, for error messages.
        """
        try:
            return cls._from_dict(data, name, load_links() if links is None else links)
        except EnergyModelError as exc:
            raise EnergyModelError(f"{origin}: {exc}" if origin else str(exc)) from None

    @classmethod
    def _from_dict(
        cls, data: Mapping[str, Any], name: str | None, catalog: Mapping[str, LinkModel]
    ) -> DeviceProfile:
        if not isinstance(data, Mapping):
            raise EnergyModelError("a device profile must be a YAML mapping")
        unknown = sorted(map(str, set(data) - set(_PROFILE_KEYS)))
        if unknown:
            raise EnergyModelError(
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_PROFILE_KEYS)}"
            )
        cores = _count(data.get("cores", AUTO), "cores", default=os.cpu_count() or 1)
        profile = cls(
            name=str(data.get("name", name or "")),
            description=str(data.get("description", "")),
            cpu=str(data.get("cpu", "")),
            cores=cores,
            threads=_count(data.get("threads", AUTO), "threads", default=cores),
            memory_limit_bytes=_memory_limit(data),
            runtime=str(data.get("runtime", "torch")),
            power=PowerSpec.from_dict(data.get("power")),
            links=_select_links(data.get("links"), catalog),
            sources=_texts(data.get("sources", []), "sources"),
        )
        if "estimated" in data and data["estimated"] != profile.estimated:
            raise EnergyModelError(
                f"estimated: {data['estimated']} contradicts power source {profile.power.source!r}"
            )
        if not _NAME.match(profile.name):
            raise EnergyModelError(f"device name {profile.name!r} must be letters, digits, -_.")
        return profile


def load_links(path: str | os.PathLike | None = None) -> dict[str, LinkModel]:
    """The shipped links (``wifi``, ``lte``, ``3g``), merged with a user's links file.

    The user's YAML has the shipped file's layout: a mapping of link name to numbers. A
    shipped name needs only the numbers it changes; a new name must give them all.
    """
    shipped_file = resources.files("energy_models") / "data" / "links.yaml"
    links = links_from_mapping(_read_yaml(shipped_file), origin=str(shipped_file))
    if path is not None:
        user_file = Path(path).expanduser()
        if not user_file.is_file():
            raise EnergyModelError(f"links file {user_file} not found")
        links = links_from_mapping(_read_yaml(user_file), base=links, origin=str(user_file))
    return links


def user_devices_dir(user_dir: str | os.PathLike | None = None) -> Path | None:
    """The user's profile folder: ``user_dir``, else ``$ACNN_DEVICES_DIR``, else
    ``~/.config/acnn/devices``; ``None`` when that default folder does not exist.

    A folder given explicitly (argument or environment) that does not exist is an error.
    """
    explicit = user_dir if user_dir is not None else os.environ.get(DEVICES_DIR_ENV) or None
    folder = Path(explicit if explicit is not None else DEFAULT_USER_DIR).expanduser()
    if folder.is_dir():
        return folder
    if explicit is not None:
        raise EnergyModelError(f"devices folder {folder} does not exist")
    return None


def list_devices(user_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of every profile: shipped ones and the user's (sorted, each name once)."""
    names = {_stem(entry.name) for entry in _shipped_dir().iterdir() if _is_yaml(entry.name)}
    folder = user_devices_dir(user_dir)
    if folder is not None:
        names |= {_stem(p.name) for p in folder.iterdir() if _is_yaml(p.name) and p.is_file()}
    return sorted(names)


def load_device(
    name_or_path: str | os.PathLike,
    *,
    user_dir: str | os.PathLike | None = None,
    links_path: str | os.PathLike | None = None,
) -> DeviceProfile:
    """Load a profile by name (the user's folder first, then the shipped ones) or by path.

    Args:
        name_or_path: a profile name (``"phone"``) or the path of a ``.yaml`` file.
        user_dir: the user's profile folder (default: see :func:`user_devices_dir`).
        links_path: a user's links file merged over the shipped links (see
            :func:`load_links`).
    """
    text = os.fspath(name_or_path)
    catalog = load_links(links_path)
    if _is_yaml(text) or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise EnergyModelError(f"device profile {path} not found")
        return DeviceProfile.from_dict(
            _read_yaml(path), name=_stem(path.name), links=catalog, origin=str(path)
        )
    source = _find_profile(text, user_dir)
    profile = DeviceProfile.from_dict(
        _read_yaml(source), name=text, links=catalog, origin=str(source)
    )
    if profile.name != text:
        raise EnergyModelError(f"{source}: declares name {profile.name!r}; rename it {text!r}")
    return profile


def _find_profile(name: str, user_dir: str | os.PathLike | None) -> Traversable:
    if not _NAME.match(name):
        raise EnergyModelError(f"device name {name!r} must be letters, digits, -_.")
    folder = user_devices_dir(user_dir)
    for directory in ([folder] if folder is not None else []) + [_shipped_dir()]:
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    raise EnergyModelError(
        f"unknown device {name!r}; known: {', '.join(list_devices(user_dir))} "
        f"(or give the path of a .yaml profile)"
    )


def _select_links(spec: Any, catalog: Mapping[str, LinkModel]) -> dict[str, LinkModel]:
    if spec is None:
        return dict(catalog)
    if isinstance(spec, list | tuple):
        spec = {str(name): None for name in spec}
    if not isinstance(spec, Mapping):
        raise EnergyModelError("links must be a list of link names or a mapping of overrides")
    for name, values in spec.items():
        if name == NO_LINK:
            raise EnergyModelError(f"links: {NO_LINK!r} is implicit (all-local); do not list it")
        if values is None and name not in catalog:
            raise EnergyModelError(f"links: unknown link {name!r}; known: {', '.join(catalog)}")
    merged = links_from_mapping(spec, base=catalog)
    return {str(name): merged[str(name)] for name in spec}


def _count(value: Any, key: str, *, default: int) -> int:
    if value == AUTO:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EnergyModelError(f"{key} must be a positive integer or {AUTO!r}, got {value!r}")
    return value


def _memory_limit(data: Mapping[str, Any]) -> int:
    if "memory_limit" in data and "memory_limit_bytes" in data:
        raise EnergyModelError("give memory_limit or memory_limit_bytes, not both")
    for key in ("memory_limit_bytes", "memory_limit"):
        if key in data:
            return parse_bytes(data[key])
    raise EnergyModelError("missing memory_limit (e.g. memory_limit: 512MiB)")


def _texts(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise EnergyModelError(f"{key} must be a list of strings")
    return tuple(value)


def _read_yaml(source: Traversable | Path) -> Any:
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise EnergyModelError(f"{source}: malformed YAML{where} ({problem})") from None
    except UnicodeDecodeError as exc:
        raise EnergyModelError(f"{source}: not UTF-8 text ({exc.reason})") from None


def _shipped_dir() -> Traversable:
    return resources.files("energy_models") / "data" / "devices"


def _is_yaml(filename: str) -> bool:
    return filename.endswith((".yaml", ".yml"))


def _stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0]
