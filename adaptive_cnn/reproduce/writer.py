"""The output folder of one reproduction run: config.json, raw data, table.md, plots.

Every file is written to a temporary name and renamed into place, so a run that fails
half-way never leaves a torn file and never removes a file it finished earlier.
``config.json`` is written when the run starts (``status: running``) and rewritten when
it ends: ``finished`` with the wall time and the headline figures, or ``failed`` with
the error. It also records the resolved options, this machine and the library versions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

CONFIG_FILE = "config.json"
VERSIONED = ("acnn", "torch", "numpy", "scipy", "scikit-learn", "matplotlib")


class ResultWriter:
    """Writes one experiment's files into ``out`` (created if missing).

    Args:
        out: the output folder.
        experiment: the experiment's name.
        options: the resolved options (paths become strings); experiments may add the
            values they resolve later through :meth:`resolve`.
        command: the command line that started the run.
        quiet: no progress lines on stderr.
        stream: where progress goes (stderr by default).
    """

    def __init__(
        self,
        out: str | os.PathLike,
        experiment: str,
        options: Mapping[str, Any],
        command: Sequence[str] = (),
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.out = Path(out)
        self.experiment = experiment
        self.options = {k: _plain(v) for k, v in options.items()}
        self.command = list(command)
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.files: list[str] = []
        self._start = time.perf_counter()
        self._started = _now()
        self.out.mkdir(parents=True, exist_ok=True)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._start

    def say(self, message: str) -> None:
        """One progress line on stderr (unless quiet), stamped with the elapsed time."""
        if not self.quiet:
            print(f"[{self.elapsed_s:6.1f} s] {message}", file=self.stream, flush=True)

    def resolve(self, **values: Any) -> None:
        """Record options the experiment resolved itself (default paths, derived values)."""
        self.options.update({k: _plain(v) for k, v in values.items()})

    def write_json(self, name: str, data: Any) -> Path:
        """``name`` as indented JSON (NaN written as null)."""
        return self.write_text(name, json.dumps(_plain(data), indent=1) + "\n")

    def write_csv(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """``rows`` (dicts with the same keys) as CSV with a header line."""
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return self.write_text(name, buffer.getvalue())

    def write_text(self, name: str, text: str) -> Path:
        """``text`` into ``out/name`` atomically."""
        return self._commit(name, lambda tmp: tmp.write_text(text))

    def save_figure(self, name: str, figure: Any, dpi: int = 120) -> Path:
        """A matplotlib figure as PNG, atomically; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        try:
            return self._commit(name, lambda tmp: figure.savefig(tmp, dpi=dpi, format="png"))
        finally:
            plt.close(figure)

    def start(self) -> None:
        """Write ``config.json`` with ``status: running`` (keeping an earlier run's, to put
        back if this one fails before it writes anything)."""
        path = self.out / CONFIG_FILE
        self._previous_config = path.read_text() if path.is_file() else None
        self._write_config("running")

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Rewrite ``config.json``: finished, wall time, headline figures."""
        self._write_config("finished", summary=summary)

    def fail(self, error: BaseException) -> None:
        """Rewrite ``config.json``: failed, with the error; finished files stay. A run that
        failed before writing any file (bad input) puts an earlier run's config back, so
        that its finished results keep their record."""
        previous = getattr(self, "_previous_config", None)
        if previous is not None and not self.files:
            path = self.out / CONFIG_FILE
            tmp = path.with_name(f".{CONFIG_FILE}.tmp")
            tmp.write_text(previous)
            tmp.replace(path)
            return
        self._write_config("failed", error=f"{type(error).__name__}: {error}")

    def _commit(self, name: str, write: Any) -> Path:
        path = self.out / name
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            write(tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        if name not in self.files and name != CONFIG_FILE:
            self.files.append(name)
        self.say(f"wrote {path}")
        return path

    def _write_config(self, status: str, **extra: Any) -> None:
        record = {
            "experiment": self.experiment,
            "status": status,
            "command": " ".join(self.command),
            "options": self.options,
            "started_utc": self._started,
            "ended_utc": None if status == "running" else _now(),
            "wall_seconds": None if status == "running" else round(self.elapsed_s, 2),
            "files": list(self.files),
            "machine": machine_info(),
            "versions": library_versions(),
            **extra,
        }
        text = json.dumps(_plain(record), indent=1) + "\n"
        path = self.out / CONFIG_FILE
        tmp = path.with_name(f".{CONFIG_FILE}.tmp")
        tmp.write_text(text)
        tmp.replace(path)


def machine_info() -> dict[str, Any]:
    """This machine: OS, CPU model, cores, memory, Python, torch threads."""
    info: dict[str, Any] = {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        import psutil

        info["physical_cpus"] = psutil.cpu_count(logical=False)
        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        pass
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def library_versions() -> dict[str, str | None]:
    """Installed versions of acnn and the libraries its figures depend on, and the commit."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["git_commit"] = _git_commit()
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    """HEAD of the source checkout (``+dirty`` with uncommitted changes), or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'+dirty' if dirty else ''}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """JSON-safe: paths to strings, numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value
