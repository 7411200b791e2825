"""The on-disk profile: ``profile.json`` (settings) and append-only JSON-lines records.

Layout of a profile directory::

    profile.json      settings that every record shares (device, runtime, threads, ...)
    layers.jsonl      one record per timed layer configuration
    networks.jsonl    one record per timed network

Records are appended one line at a time and flushed to disk, so an interrupted profile
loses at most the line being written; a torn last line is skipped with a warning and the
profile resumes after the last complete record. A record re-taken later (``--retake-noisy``)
supersedes the earlier one with the same id.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_models.errors import EnergyModelError

SETTINGS_FILE = "profile.json"
LAYERS_FILE = "layers.jsonl"
NETWORKS_FILE = "networks.jsonl"
PROFILE_FORMAT = "acnn-profile"
PROFILE_VERSION = 1
# Settings that must agree for records to be comparable; the rest (sizes) may grow on resume.
IDENTITY_KEYS = (
    "device", "runtime", "threads", "torch_version", "warmup", "repeats", "nchwc_block",
)  # fmt: skip


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file, the latest per ``id``, in first-seen order.

    A line that does not parse is skipped with a warning naming file and line (a torn
    last line after a crash is the usual cause).
    """
    if not path.exists():
        return []
    latest: dict[str, dict[str, Any]] = {}
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                record = json.loads(raw)
                key = str(record["id"])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                warnings.warn(f"{path}:{number}: skipping a damaged record", stacklevel=2)
                continue
            latest[key] = record
    return list(latest.values())


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line durably (flushed and fsynced), sealing a torn last line first."""
    data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    with path.open("ab") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            f.write(b"\n")  # seal a torn line so the new record starts on its own
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


@dataclass
class ProfileStore:
    """A profile directory opened for appending (the profiler's only writer)."""

    root: Path
    settings: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path, settings: Mapping[str, Any]) -> ProfileStore:
        """Create ``root`` or reopen it to resume; settings must match an existing profile.

        Raises:
            EnergyModelError: ``root`` holds a profile taken with other identity settings.
        """
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        path = root / SETTINGS_FILE
        merged = {"format": PROFILE_FORMAT, "format_version": PROFILE_VERSION, **settings}
        if path.exists():
            existing = load_settings(root)
            # a profile from before a key was recorded resumes (nchwc_block: timed here)
            clashes = [
                k for k in IDENTITY_KEYS if k in existing and existing.get(k) != merged.get(k)
            ]
            if clashes:
                detail = ", ".join(f"{k}={existing.get(k)!r}" for k in clashes)
                raise EnergyModelError(
                    f"{root} holds a profile taken with {detail}; resume it with the same "
                    "settings or choose a new --out"
                )
            merged = {**existing, **merged}
        tmp = path.with_name(SETTINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(merged, indent=1) + "\n")
        tmp.replace(path)
        return cls(root, merged)

    def done(self, file: str) -> dict[str, dict[str, Any]]:
        """The records already in ``file`` by id."""
        return {r["id"]: r for r in read_records(self.root / file)}

    def append(self, file: str, record: Mapping[str, Any]) -> None:
        """Append one record durably."""
        append_record(self.root / file, record)


def load_settings(root: str | Path) -> dict[str, Any]:
    """``profile.json`` of a profile directory, validated.

    Raises:
        EnergyModelError: missing directory or file, corrupt JSON, or another format.
    """
    path = Path(root) / SETTINGS_FILE
    if not path.exists():
        raise EnergyModelError(f"{root} is not a profile directory (no {SETTINGS_FILE})")
    try:
        settings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EnergyModelError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(settings, dict) or settings.get("format") != PROFILE_FORMAT:
        raise EnergyModelError(f"{path} is not an acnn profile")
    if settings.get("format_version") != PROFILE_VERSION:
        raise EnergyModelError(
            f"{path} has profile format version {settings.get('format_version')!r}; "
            f"this acnn reads version {PROFILE_VERSION}"
        )
    return settings


@dataclass(frozen=True)
class ProfileData:
    """A profile directory read back: settings, layer records and network records."""

    root: Path
    settings: Mapping[str, Any]
    layers: tuple[Mapping[str, Any], ...]
    networks: tuple[Mapping[str, Any], ...]

    @classmethod
    def load(cls, root: str | Path) -> ProfileData:
        root = Path(root)
        settings = load_settings(root)
        return cls(
            root=root,
            settings=settings,
            layers=tuple(read_records(root / LAYERS_FILE)),
            networks=tuple(read_records(root / NETWORKS_FILE)),
        )
