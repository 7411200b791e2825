"""The run folder of a design: its format, its one writer and its one reader.

``acnn design --out RUN_DIR`` leaves, in this order:

- ``stage1.pt`` .. ``stageN.pt`` (and ``cloud.pt`` with a cloud stage): state dicts of the
  stages' networks (tensors only, read back with ``torch.load(weights_only=True)``);
- ``design.yaml`` and ``result.json``: the same summary (``result.json`` last, atomically,
  so its presence means the design finished). Every key of :func:`write_run`'s summary is
  kept; the runtime reads ``stages`` (``arch``, ``weights``, ``where``, ``energy_mj``,
  ``payload_bytes``), ``policy`` (:class:`selector.ExitPolicy`), ``input`` (dataset, shape
  (C, H, W), classes, preprocessing), ``link``, ``device``, ``energy_source``,
  ``config.cloud_latency_ms`` and ``pricing`` (the runtime and threads the energies were
  priced for and the predictor's identity; :class:`Pricing`), and ``format_version`` says
  which format wrote them;
- ``search.csv``, ``pareto.csv``, ``baselines.csv``: the search and baseline tables;
  ``frontier.csv`` and ``frontier.yaml``: the summary's ``frontier`` (a ``bo`` run's
  designs across budgets from the networks it trained fully,
  :mod:`adaptive_cnn.design.frontier`) as a table and as YAML with the energies' label;
  ``frontier/netN.pt``: the weights of the networks its points use.

The journal (``journal.jsonl``) is the designer's own format. Reading trusts nothing:
JSON, YAML with ``safe_load``, every path must resolve inside the folder, weights load
with ``weights_only=True``; any defect is a :class:`RunFolderError` naming the file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch
import yaml
from torch import nn

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.errors import ArchitectureError, RunFolderError
from adaptive_cnn.networks import create_network, parse_arch
from energy_models.devices import RUNTIMES
from selector import ExitPolicy
from selector.errors import SelectorError

FORMAT_VERSION = 1
"""Format of the files :func:`write_run` writes (``format_version`` in ``result.json``).
A summary without the key predates it (or is hand-written) and is read as version 1."""

RESULT_FILE = "result.json"
YAML_FILE = "design.yaml"
CLOUD_WEIGHTS = "cloud.pt"
TABLES = ("search.csv", "pareto.csv", "baselines.csv")
FRONTIER_TABLE = "frontier.csv"  # the designs across budgets (bo runs)
FRONTIER_YAML = "frontier.yaml"  # the same points, with the energies' label
FRONTIER_WEIGHTS = "frontier"  # folder of the frontier's networks' weights
DEVICE = "device"
HISTORICAL_RUNTIME = "torch"
"""What a summary without ``pricing`` was priced for: before acnn recorded the runtime,
every device profile it shipped for this machine priced designs on eager torch."""


def stage_weights(index: int) -> str:
    """File name of local stage ``index`` (1-based) in a run folder."""
    return f"stage{index}.pt"


@dataclass(frozen=True)
class StageSpec:
    """One stage of the design.

    Attributes:
        name: served model name, ``stage1``..``stageN`` or ``cloud``.
        arch: architecture string for :func:`adaptive_cnn.networks.create_network`.
        where: ``"device"`` or ``"cloud over <link>"``.
        weights: path of the stage's state dict (a file inside the run folder).
        energy_mj: predicted device energy per image (an estimate from the design).
        payload_bytes: bytes the design assumed per offloaded image (cloud stage only).
    """

    name: str
    arch: str
    where: str
    weights: Path
    energy_mj: float
    payload_bytes: float | None = None

    @property
    def remote(self) -> bool:
        return self.where != DEVICE


@dataclass(frozen=True)
class InputSpec:
    """What one input image is: (C, H, W) in the dataset's native pixel scale."""

    dataset: str
    shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    preprocessing: Preprocessing


@dataclass(frozen=True)
class Pricing:
    """What a design's energies were priced for (``pricing`` in the summary).

    Attributes:
        runtime: the inference runtime of the predictor (one of
            :data:`energy_models.devices.RUNTIMES`): the one to deploy the stages in.
        threads: intra-op threads the predictor was profiled with; None where unrecorded.
        predictor: the predictor's identity (device, runtime, threads, torch version,
            created, kind, file); empty where unrecorded.
        recorded: False for a run folder written before ``pricing`` existed, read as
            :data:`HISTORICAL_RUNTIME`.
    """

    runtime: str
    threads: int | None = None
    predictor: Mapping[str, Any] = field(default_factory=dict)
    recorded: bool = True

    def describe(self) -> str:
        """``onnxruntime, 2 threads``; an unrecorded pricing says so."""
        if not self.recorded:
            return (
                f"{self.runtime} (not recorded in the run folder: the runtime every design "
                "was priced for before acnn recorded it)"
            )
        threads = "" if self.threads is None else f", {self.threads} thread(s)"
        return f"{self.runtime}{threads}"

    def label(self, runtime: str) -> str:
        """``priced for X, run in Y`` where ``runtime`` is not the priced one, else ``""``."""
        return "" if runtime == self.runtime else f"priced for {self.runtime}, run in {runtime}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "threads": self.threads,
            "predictor": dict(self.predictor),
            "recorded": self.recorded,
        }


UNRECORDED = Pricing(HISTORICAL_RUNTIME, recorded=False)


@dataclass(frozen=True)
class RunFolder:
    """A design run folder as read back: the stages, exit policy, input and link that the
    server, the client and ``acnn export`` need, and the whole summary (``summary``, for
    ``acnn report`` and the reproductions)."""

    path: Path
    stages: tuple[StageSpec, ...]
    policy: ExitPolicy
    input: InputSpec
    link: str
    device: str
    energy_source: str
    cloud_latency_ms: float
    pricing: Pricing = UNRECORDED
    summary: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def runtime(self) -> str:
        """The runtime the design was priced for: the one its stages run in by default."""
        return self.pricing.runtime

    @property
    def threads(self) -> int | None:
        """The threads the design was priced for (None where the folder does not say)."""
        return self.pricing.threads

    @property
    def local_stages(self) -> tuple[StageSpec, ...]:
        return tuple(s for s in self.stages if not s.remote)

    @property
    def cloud_stage(self) -> StageSpec | None:
        return next((s for s in self.stages if s.remote), None)

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise RunFolderError(f"{self.path} has no stage {name!r}; it has {self.stage_names()}")

    def stage_names(self) -> str:
        return ", ".join(s.name for s in self.stages)

    def at_budget(self, budget_mj: float) -> RunFolder:
        """The design as the frontier's most accurate point (on validation) within
        ``budget_mj`` of device energy per image: its stages, weights and thresholds, the
        cloud stage as before. A device low on battery drops to a cheaper point this way
        without re-designing.

        Raises:
            RunFolderError: the folder has no frontier, or even its cheapest point costs
                more than ``budget_mj``.
        """
        points = self.summary.get("frontier") or []
        if not points:
            raise RunFolderError(
                f"{self.path} has no frontier (written by acnn design's bo method): it "
                "cannot switch designs by budget"
            )
        fits = [p for p in points if p["val_energy_mj"] <= budget_mj * (1 + 1e-9)]
        if not fits:
            cheapest = min(p["val_energy_mj"] for p in points)
            raise RunFolderError(
                f"no design of {self.path}'s frontier fits {budget_mj:g} mJ per image; its "
                f"cheapest costs {cheapest:.3g} mJ (estimated)"
            )
        point = max(fits, key=lambda p: (p["val_accuracy"], -p["val_energy_mj"]))
        f = _Fields(self.path / RESULT_FILE)
        row = _frontier_point(point, "frontier", f)
        if len(row.thresholds) != len(row.archs) - (0 if self.cloud_stage else 1):
            f.fail("frontier", "a point's thresholds do not match its stages")
        local = tuple(
            StageSpec(stage_weights(i).removesuffix(".pt"), arch, DEVICE,
                      _inside(self.path, w, "frontier", f), e)
            for i, (arch, w, e) in enumerate(
                zip(row.archs, row.weights, row.energy_mj, strict=True), start=1
            )
        )  # fmt: skip
        cloud = () if self.cloud_stage is None else (self.cloud_stage,)
        policy = ExitPolicy(row.thresholds, self.policy.metric)
        return dataclasses.replace(self, stages=local + cloud, policy=policy)

    def load_network(self, stage: StageSpec) -> nn.Module:
        """The stage's network with its trained weights, in eval mode (logits out)."""
        try:
            network = create_network(stage.arch, self.input.shape, self.input.num_classes)
        except ArchitectureError as exc:
            raise RunFolderError(f"{self.path}: {stage.name} cannot be built ({exc})") from None
        state = load_weights(stage.weights)
        try:
            network.load_state_dict(state)
        except RuntimeError as exc:
            raise RunFolderError(
                f"{stage.weights}: does not fit {stage.arch} of {stage.name} ({_brief(exc)})"
            ) from None
        return network.eval()


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict saved by :func:`write_weights`: tensors keyed by name, nothing else.

    ``weights_only`` refuses any pickled object other than tensors and plain containers,
    without running it; every failure (a foreign pickle, a text file, a truncated file)
    is a :class:`RunFolderError` naming the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notes of the weights_only loader
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle (KeyError for a text file) is the file's
        raise RunFolderError(
            f"{path}: not a state dict of tensors saved by acnn design ({_brief(exc)})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise RunFolderError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise RunFolderError(f"{path}: {key} holds NaN or infinite values")
    return dict(state)


def load_run(path: str | Path) -> RunFolder:
    """Read and validate a run folder written by ``acnn design``.

    The summary comes from ``result.json`` (``design.yaml`` where only it exists); every
    value the runtime uses is type-checked, and every weights file must exist inside the
    folder. Weights themselves are read by :meth:`RunFolder.load_network`.

    Raises:
        RunFolderError: naming the file and what is wrong with it.
    """
    root = Path(path)
    source, summary = read_summary(root)
    return _parse(root, summary, _Fields(source))


def read_summary(root: Path) -> tuple[Path, Mapping[str, Any]]:
    """The summary file of a run folder and its content (a mapping), not yet validated."""
    root = Path(root)
    if (root / RESULT_FILE).is_file():
        source = root / RESULT_FILE
        data = _read(source, json.loads, "is not valid JSON")
    elif (root / YAML_FILE).is_file():
        source = root / YAML_FILE
        data = _read(source, yaml.safe_load, "is not plain YAML")
    else:
        raise RunFolderError(
            f"{root} holds no {RESULT_FILE}: the design has not finished (pass the --out "
            "folder of a finished `acnn design` run)"
        )
    if not isinstance(data, Mapping):
        raise RunFolderError(f"{source}: the design summary is a {type(data).__name__}, not a map")
    return source, data


def _read(source: Path, parse, problem: str) -> Any:
    try:
        return parse(source.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and UnicodeError are both
        raise RunFolderError(f"{source} {problem} ({_brief(exc)})") from None
    except OSError as exc:
        raise RunFolderError(f"{source}: cannot read it ({exc.strerror or exc})") from None


# --- the writer ------------------------------------------------------------------------


def write_weights(
    run_dir: Path,
    stage_states: Sequence[Mapping[str, torch.Tensor]],
    cloud_state: Mapping[str, torch.Tensor] | None = None,
) -> list[Path]:
    """Save the local stages' state dicts as ``stage1.pt``.. and the cloud's as ``cloud.pt``."""
    run_dir = Path(run_dir)
    paths = [run_dir / stage_weights(i) for i in range(1, len(stage_states) + 1)]
    states = list(stage_states)
    if cloud_state is not None:
        paths.append(run_dir / CLOUD_WEIGHTS)
        states.append(cloud_state)
    for state, path in zip(states, paths, strict=True):
        torch.save(dict(state), path)
    return paths


def write_frontier_weights(
    run_dir: Path, states: Mapping[str, Mapping[str, torch.Tensor]]
) -> dict[str, str]:
    """Save the state dict of each network (architecture -> state) the frontier uses as
    ``frontier/netN.pt``; return architecture -> that path, relative to the folder."""
    folder = Path(run_dir) / FRONTIER_WEIGHTS
    folder.mkdir(exist_ok=True)
    paths = {}
    for i, (arch, state) in enumerate(sorted(states.items()), start=1):
        name = f"{FRONTIER_WEIGHTS}/net{i}.pt"
        torch.save(dict(state), Path(run_dir) / name)
        paths[arch] = name
    return paths


def write_run(
    run_dir: Path,
    summary: Mapping[str, Any],
    *,
    search_rows: Sequence[Mapping[str, Any]],
    pareto_rows: Sequence[Mapping[str, Any]],
    baseline_rows: Sequence[Mapping[str, Any]],
    frontier_rows: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write a finished design's summary and tables (its weights already written by
    :func:`write_weights`); return the path of ``result.json``.

    The summary is checked as :func:`load_run` will read it before anything is written,
    and ``result.json`` is written last and atomically: a folder that has it is complete.

    Args:
        run_dir: the run folder.
        summary: what ``acnn design --json`` prints; ``format_version`` is added in front.
        search_rows, pareto_rows, baseline_rows: rows of search.csv, pareto.csv and
            baselines.csv (one mapping per row, the first row's keys as the header).
        frontier_rows: rows of frontier.csv, the designs across budgets (also the
            summary's ``frontier``); none: no file.
    """
    run_dir = Path(run_dir)
    document = {"format_version": FORMAT_VERSION, **summary}
    _parse(run_dir, document, _Fields(run_dir / RESULT_FILE))
    (run_dir / YAML_FILE).write_text(yaml.safe_dump(document, sort_keys=False))
    for name, rows in zip(TABLES, (search_rows, pareto_rows, baseline_rows), strict=True):
        _write_csv(run_dir / name, rows)
    if frontier_rows:
        _write_csv(run_dir / FRONTIER_TABLE, frontier_rows)
        frontier = {"energy_source": summary.get("energy_source"), "points": list(frontier_rows)}
        (run_dir / FRONTIER_YAML).write_text(yaml.safe_dump(frontier, sort_keys=False))
    result = run_dir / RESULT_FILE
    partial = result.with_name(f".{RESULT_FILE}.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(partial, result)
    return result


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --- validation ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    """Typed reads of one summary file's values; a defect names the file and the key."""

    source: Path

    def fail(self, where: str, problem: str) -> NoReturn:
        raise RunFolderError(f"{self.source}: {where} {problem}")

    def required(self, data: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in data:
            self.fail(f"{where}.{key}" if where else key, "is missing")
        return data[key]

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, f"must be a mapping, got {_show(value)}")
        return value

    def sequence(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list | tuple):
            self.fail(where, f"must be a list, got {_show(value)}")
        return list(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(where, f"must be a non-empty string, got {_show(value)}")
        return value

    def number(self, value: Any, where: str, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number, got {_show(value)}")
        if not math.isfinite(value):
            self.fail(where, f"must be finite, got {value}")
        if positive and value <= 0:
            self.fail(where, f"must be > 0, got {value}")
        return float(value)

    def count(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(where, f"must be a whole number >= 1, got {_show(value)}")
        return value


def _parse(root: Path, summary: Mapping[str, Any], f: _Fields) -> RunFolder:
    _check_version(summary, f)
    _figures(summary, f)
    listed = f.sequence(f.required(summary, "stages", ""), "stages")
    stages = tuple(_stage(root, i, s, f) for i, s in enumerate(listed, start=1))
    if not stages or stages[0].remote or any(s.remote for s in stages[:-1]):
        f.fail("stages", "must be local stages first, then at most one cloud stage")
    policy = _policy(f.mapping(f.required(summary, "policy", ""), "policy"), f)
    if policy.n_stages != len(stages):
        f.fail("policy", f"drives {policy.n_stages} stages, the design has {len(stages)}")
    for i, point in enumerate(summary.get("frontier") or []):  # its networks' weights
        for name in point["weights"].split(" | "):
            _inside(root, name, f"frontier[{i}]", f)
    config = f.mapping(summary.get("config") or {}, "config")
    # the profile as the design was given it (a YAML path stays a path, so that the
    # device can be loaded again), else its name
    device = config.get("device") or summary.get("device", "local")
    return RunFolder(
        path=root,
        stages=stages,
        policy=policy,
        input=_input(f.mapping(f.required(summary, "input", ""), "input"), f),
        link=f.string(summary.get("link", "none"), "link"),
        device=f.string(device, "device"),
        energy_source=f.string(summary.get("energy_source", "estimated"), "energy_source"),
        cloud_latency_ms=f.number(config.get("cloud_latency_ms", 0.0), "config.cloud_latency_ms"),
        pricing=_pricing(summary.get("pricing"), f),
        summary=summary,
    )


def _pricing(data: Any, f: _Fields) -> Pricing:
    if data is None:  # written before acnn recorded what a design was priced for
        return UNRECORDED
    data = f.mapping(data, "pricing")
    runtime = f.string(f.required(data, "runtime", "pricing"), "pricing.runtime")
    if runtime not in RUNTIMES:
        f.fail("pricing.runtime", f"is {runtime!r}; use one of {', '.join(RUNTIMES)}")
    threads = data.get("threads")
    predictor = f.mapping(data.get("predictor") or {}, "pricing.predictor")
    for key, value in predictor.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            f.fail(f"pricing.predictor.{key}", f"must be a plain value, got {_show(value)}")
    return Pricing(
        runtime=runtime,
        threads=None if threads is None else f.count(threads, "pricing.threads"),
        predictor=dict(predictor),
    )


#: the design's figures in result.json and how each is checked (where it is present: the
#: runtime needs none of them; ``acnn report`` needs them all, see :func:`require_figures`)
FIGURES: dict[str, str] = {
    "energy_mj": "amount",
    "val_energy_mj": "amount",
    "budget_mj": "optional amount",
    "min_accuracy": "optional number",
    "test_accuracy": "fraction",
    "val_accuracy": "fraction",
    "offload_rate": "fraction",
    "bytes_per_image": "amount",
    "latency_ms": "amount",
    "exit_fractions": "fractions",
    "thresholds": "thresholds",
    "evaluations": "whole",
    "trained_infeasible": "whole",
    "oracle": "oracle",
    "energy_note": "string",
    "baselines": "rows",
    "reranked": "rows",
    "rerank_skipped": "rows",
    "combination": "combination",
    "frontier": "frontier",
}


#: the figures every finished design reports (the others depend on the method)
REPORTED = (
    "energy_mj", "test_accuracy", "val_accuracy", "offload_rate", "bytes_per_image",
    "exit_fractions", "thresholds", "evaluations", "trained_infeasible", "oracle",
    "energy_note",
)  # fmt: skip


def _figures(summary: Mapping[str, Any], f: _Fields) -> None:
    for key, kind in FIGURES.items():
        if key in summary:
            _figure(summary[key], key, kind, f)


def _figure(value: Any, key: str, kind: str, f: _Fields) -> None:
    if kind.startswith("optional "):
        if value is not None:
            _figure(value, key, kind.removeprefix("optional "), f)
    elif kind == "number":
        f.number(value, key)
    elif kind == "amount":  # energy, bytes, time: never negative
        if f.number(value, key) < 0:
            f.fail(key, f"must be >= 0, got {value}")
    elif kind == "fraction":
        if not 0.0 <= f.number(value, key) <= 1.0:
            f.fail(key, f"must lie in [0, 1], got {value}")
    elif kind == "fractions":
        for i, v in enumerate(f.sequence(value, key)):
            _figure(v, f"{key}[{i}]", "fraction", f)
    elif kind == "thresholds":  # +inf is "never exit here"
        for i, v in enumerate(f.sequence(value, key)):
            if not (isinstance(v, int | float) and v == math.inf):
                f.number(v, f"{key}[{i}]")
    elif kind == "whole":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            f.fail(key, f"must be a whole number >= 0, got {_show(value)}")
    elif kind == "oracle":
        oracle = f.mapping(value, key)
        _figure(f.required(oracle, "energy_mj", key), f"{key}.energy_mj", "amount", f)
        _figure(f.required(oracle, "test_accuracy", key), f"{key}.test_accuracy", "fraction", f)
    elif kind == "combination":  # what combining the fully trained networks found
        found = f.mapping(value, key)
        for count in ("admissible", "scored"):
            _figure(f.required(found, count, key), f"{key}.{count}", "whole", f)
        _figure(f.required(found, "seconds", key), f"{key}.seconds", "amount", f)
    elif kind == "frontier":  # the designs across budgets, cheapest first
        for i, row in enumerate(f.sequence(value, key)):
            _frontier_point(f.mapping(row, f"{key}[{i}]"), f"{key}[{i}]", f)
    elif kind == "string":
        f.string(value, key)
    elif kind == "rows":
        for i, row in enumerate(f.sequence(value, key)):
            f.mapping(row, f"{key}[{i}]")


def require_figures(run: RunFolder) -> Mapping[str, Any]:
    """The summary of ``run`` with every design figure present (what ``acnn report``
    shows); a folder without them is a :class:`RunFolderError`."""
    source, _ = read_summary(run.path)
    f = _Fields(source)
    for key in REPORTED:
        f.required(run.summary, key, "")
    if len(run.summary["exit_fractions"]) != len(run.stages):
        f.fail("exit_fractions", f"must give one fraction per stage ({len(run.stages)})")
    return run.summary


def _check_version(summary: Mapping[str, Any], f: _Fields) -> None:
    version = summary.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        f.fail(
            "format_version",
            f"is {_show(version)}; this acnn reads format {FORMAT_VERSION} (written by "
            "another acnn version: use that one, or design the run again)",
        )


def _stage(root: Path, index: int, data: Any, f: _Fields) -> StageSpec:
    at = f"stages[{index - 1}]"
    data = f.mapping(data, at)
    where = f.string(data.get("where", DEVICE), f"{at}.where")
    arch = f.string(f.required(data, "arch", at), f"{at}.arch")
    try:
        parse_arch(arch)
    except ArchitectureError as exc:
        f.fail(f"{at}.arch", f"is not an architecture ({_brief(exc)})")
    payload = data.get("payload_bytes")
    return StageSpec(
        name=f"stage{index}" if where == DEVICE else "cloud",
        arch=arch,
        where=where,
        weights=_inside(root, f.string(f.required(data, "weights", at), f"{at}.weights"), at, f),
        energy_mj=f.number(data.get("energy_mj", 0.0), f"{at}.energy_mj"),
        payload_bytes=None if payload is None else f.number(payload, f"{at}.payload_bytes"),
    )


def _frontier_point(point: Mapping[str, Any], at: str, f: _Fields) -> FrontierRow:
    """One frontier point checked whole: figures in range, architectures that parse, one
    weights file and one energy per stage, one threshold per exit (numbers or inf)."""
    for name in ("budget_mj", "val_energy_mj", "test_energy_mj", "bytes_per_image"):
        _figure(f.required(point, name, at), f"{at}.{name}", "amount", f)
    for name in ("val_accuracy", "test_accuracy"):
        _figure(f.required(point, name, at), f"{at}.{name}", "fraction", f)
    archs = f.string(f.required(point, "stages", at), f"{at}.stages").split(" | ")
    for arch in archs:
        try:
            parse_arch(arch)
        except ArchitectureError as exc:
            f.fail(f"{at}.stages", f"holds {arch!r}, not an architecture ({_brief(exc)})")
    weights = f.string(f.required(point, "weights", at), f"{at}.weights").split(" | ")
    energies = _numbers(f.required(point, "stage_energy_mj", at), f"{at}.stage_energy_mj", f)
    thresholds = _numbers(f.required(point, "thresholds", at), f"{at}.thresholds", f, inf=True)
    if not len(archs) == len(weights) == len(energies) or any(e < 0 for e in energies):
        f.fail(at, "needs one weights file and one energy >= 0 per stage")
    return FrontierRow(tuple(archs), tuple(weights), tuple(energies), tuple(thresholds))


@dataclass(frozen=True)
class FrontierRow:
    """A frontier point's stages as the runtime needs them (strings parsed)."""

    archs: tuple[str, ...]
    weights: tuple[str, ...]
    energy_mj: tuple[float, ...]
    thresholds: tuple[float, ...]


def _numbers(value: Any, at: str, f: _Fields, inf: bool = False) -> list[float]:
    """Space-separated numbers of a frontier row (finite; ``inf`` too where allowed)."""
    if not isinstance(value, str):
        f.fail(at, f"must be a string of numbers, got {_show(value)}")
    try:
        numbers = [float(x) for x in value.split()]
    except ValueError:
        f.fail(at, f"must be a string of numbers, got {_show(value)}")
    if not all(math.isfinite(x) or (inf and x == math.inf) for x in numbers):
        f.fail(at, f"must hold finite numbers, got {_show(value)}")
    return numbers


def _inside(root: Path, name: str, at: str, f: _Fields) -> Path:
    """``root / name``, which must be an existing file inside ``root`` (symlinks resolved)."""
    path = root / name
    folder, target = root.resolve(), path.resolve()
    if Path(name).is_absolute() or folder not in target.parents:
        f.fail(f"{at}.weights", f"{name!r} lies outside the run folder; name a file inside it")
    if not target.is_file():
        f.fail(f"{at}.weights", f"{name!r}: the file {path} is missing")
    return path


def _policy(data: Mapping[str, Any], f: _Fields) -> ExitPolicy:
    thresholds = f.sequence(f.required(data, "thresholds", "policy"), "policy.thresholds")
    for i, t in enumerate(thresholds):  # +inf is allowed: that stage never lets images exit
        if isinstance(t, bool) or not isinstance(t, int | float) or math.isnan(t):
            f.fail(f"policy.thresholds[{i}]", f"must be a number or inf, got {_show(t)}")
    try:
        return ExitPolicy.from_dict(data)
    except (SelectorError, KeyError, TypeError, ValueError) as exc:
        f.fail("policy", f"is not an exit policy ({_brief(exc)})")


def _input(data: Mapping[str, Any], f: _Fields) -> InputSpec:
    shape = f.sequence(f.required(data, "shape", "input"), "input.shape")
    if len(shape) != 3:
        f.fail("input.shape", f"must be [C, H, W], got {_show(shape)}")
    c, h, w = (f.count(d, f"input.shape[{i}]") for i, d in enumerate(shape))
    num_classes = f.count(f.required(data, "num_classes", "input"), "input.num_classes")
    names = f.sequence(f.required(data, "class_names", "input"), "input.class_names")
    if len(names) != num_classes:
        f.fail("input.class_names", f"has {len(names)} names for {num_classes} classes")
    return InputSpec(
        dataset=f.string(f.required(data, "dataset", "input"), "input.dataset"),
        shape=(c, h, w),
        num_classes=num_classes,
        class_names=tuple(f.string(n, f"input.class_names[{i}]") for i, n in enumerate(names)),
        preprocessing=_preprocessing(data, c, f),
    )


def _preprocessing(data: Mapping[str, Any], channels: int, f: _Fields) -> Preprocessing:
    at = "input.preprocessing"
    pre = f.mapping(f.required(data, "preprocessing", "input"), at)
    per_channel = {}
    for key in ("mean", "std"):
        values = f.sequence(f.required(pre, key, at), f"{at}.{key}")
        if len(values) != channels:
            f.fail(f"{at}.{key}", f"has {len(values)} values for {channels} channels")
        per_channel[key] = tuple(
            f.number(v, f"{at}.{key}[{i}]", positive=key == "std") for i, v in enumerate(values)
        )
    pixel_max = f.number(f.required(pre, "pixel_max", at), f"{at}.pixel_max", positive=True)
    return Preprocessing(pixel_max, per_channel["mean"], per_channel["std"])


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _brief(exc: BaseException) -> str:
    """One line of an exception's message (torch's run to paragraphs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    marker = "WeightsUnpickler error: "
    if marker in text:  # the reason, not torch's advice to trust the file
        text = "refused by weights_only: " + text.split(marker, 1)[1]
    return text if len(text) <= 200 else text[:197] + "..."
