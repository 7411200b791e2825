"""The journal of a search: ``journal.jsonl`` (one finished evaluation a line) and the
settings it was written under (``config.yaml`` beside it).

Every finished evaluation is appended durably as soon as it finishes, so a search killed
at any point resumes without repeating finished work. A journal is resumed, or reused by
another search, only under the settings that name its evaluations
(:data:`~adaptive_cnn.design.config.JOURNAL_KEYS`); :func:`mismatches` lists the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from adaptive_cnn.design.config import JOURNAL_KEYS, SEARCH_SETTINGS, DesignConfig
from adaptive_cnn.design.settings import declared
from adaptive_cnn.errors import ConfigError
from energy_models.profile_store import append_record, read_records

JOURNAL = "journal.jsonl"
CONFIG_FILE = "config.yaml"
BUDGET_TOLERANCE = 1e-9  # relative: the budget may be a derived float


def append(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one finished evaluation, flushed and fsynced."""
    append_record(Path(run_dir) / JOURNAL, record)


def records(run_dir: Path) -> list[dict[str, Any]]:
    """The journalled evaluations by index (a torn last line is skipped with a warning)."""
    return sorted(read_records(Path(run_dir) / JOURNAL), key=lambda r: r["index"])


def exists(run_dir: Path) -> bool:
    return (Path(run_dir) / JOURNAL).exists()


def write_config(run_dir: Path, config: DesignConfig) -> None:
    """Save the run's resolved settings beside its journal."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    (Path(run_dir) / CONFIG_FILE).write_text(text)


def read_config(run_dir: Path) -> DesignConfig:
    """The settings a run was started with (``config.yaml``), checked like any file's."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is {run_dir} an acnn design run?") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path} is not valid YAML: {first}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of design settings")
    return DesignConfig.from_dict(_without_legacy_keys(data), str(path))


def _without_legacy_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """Runs written before the settings were split by method saved every method's
    settings flat; another method's settings at their defaults are dropped (any other
    value is still refused by :meth:`DesignConfig.from_dict`)."""
    own = SEARCH_SETTINGS.get(data.get("method", "bo"))
    if own is None:
        return dict(data)
    defaults = {}
    for other in SEARCH_SETTINGS.values():
        if other is not own:
            defaults.update({d.name: d.default for d in declared(other)})
    return {k: v for k, v in data.items() if k not in defaults or defaults[k] != v}


def mismatches(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The settings that name the evaluations where ``saved`` (a journal's config, flat)
    differs from ``wanted``, readable: ``"seed 0 (wanted 1)"``.

    The budget is compared with a relative tolerance; every key of
    :data:`JOURNAL_KEYS` must be equal. A key missing from ``saved`` (an older journal,
    written before the setting existed) takes the setting's declared default, the
    behaviour the code had then.
    """
    defaults = DesignConfig.from_dict({"budget_mj": 1.0, "method": saved.get("method", "bo")})
    default_of = defaults.to_dict()
    found = []
    a, b = saved.get("budget_mj"), wanted.get("budget_mj")
    if (a is None) != (b is None) or (
        a is not None and not math.isclose(a, b, rel_tol=BUDGET_TOLERANCE)
    ):
        found.append(f"budget_mj {_shown(a)} (wanted {_shown(b)})")
    for key in JOURNAL_KEYS:
        value = saved.get(key, default_of.get(key))
        if _norm(value) != _norm(wanted.get(key, default_of.get(key))):
            found.append(f"{key} {value!r} (wanted {wanted.get(key)!r})")
    return found


def _shown(value: Any) -> str:
    return "none" if value is None else f"{value:.6g}"


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
