"""A design run folder as the runtime reads it: stages, exit policy, input spec, link.

``acnn design`` writes ``result.json`` (and the same summary as ``design.yaml``) next to
the weights of every stage. Only plain data is read: JSON, YAML with ``safe_load``, and
state dicts with ``torch.load(weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.networks import create_network
from rpc.errors import RunFolderError
from selector import ExitPolicy
from selector.errors import SelectorError

DEVICE = "device"


@dataclass(frozen=True)
class StageSpec:
    """One stage of the design.

    Attributes:
        name: served model name, ``stage1``..``stageN`` or ``cloud``.
        arch: architecture string for :func:`adaptive_cnn.networks.create_network`.
        where: ``"device"`` or ``"cloud over <link>"``.
        weights: path of the stage's state dict.
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
class RunFolder:
    """The parts of a design that the server, the client and ``acnn export`` need."""

    path: Path
    stages: tuple[StageSpec, ...]
    policy: ExitPolicy
    input: InputSpec
    link: str
    device: str
    energy_source: str
    cloud_latency_ms: float

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

    def load_network(self, stage: StageSpec) -> nn.Module:
        """The stage's network with its trained weights, in eval mode (logits out)."""
        c, h, w = self.input.shape
        network = create_network(stage.arch, (c, h, w), self.input.num_classes)
        if not stage.weights.is_file():
            raise RunFolderError(f"weights {stage.weights} of {stage.name} are missing")
        try:
            state = torch.load(stage.weights, map_location="cpu", weights_only=True)
            network.load_state_dict(state)
        except (RuntimeError, OSError, ValueError) as exc:
            raise RunFolderError(f"cannot load {stage.weights} into {stage.arch}: {exc}") from exc
        return network.eval()


def load_run(path: str | Path) -> RunFolder:
    """Read a run folder written by ``acnn design`` (``result.json`` or ``design.yaml``)."""
    root = Path(path)
    summary = _read_summary(root)
    try:
        return _parse(root, summary)
    except (KeyError, TypeError, ValueError, SelectorError) as exc:
        raise RunFolderError(f"{root}: malformed design summary ({exc!r})") from exc


def _read_summary(root: Path) -> Mapping[str, Any]:
    if (root / "result.json").is_file():
        data = json.loads((root / "result.json").read_text())
    elif (root / "design.yaml").is_file():
        data = yaml.safe_load((root / "design.yaml").read_text())
    else:
        raise RunFolderError(
            f"{root} holds no result.json or design.yaml: pass the --out folder of a "
            "finished `acnn design` run"
        )
    if not isinstance(data, Mapping):
        raise RunFolderError(f"{root}: the design summary is not a mapping")
    return data


def _parse(root: Path, summary: Mapping[str, Any]) -> RunFolder:
    stages = tuple(_stage(root, i, s) for i, s in enumerate(summary["stages"], start=1))
    if not stages or stages[0].remote or any(s.remote for s in stages[:-1]):
        raise RunFolderError(f"{root}: a design needs local stages first and at most one cloud")
    policy = ExitPolicy.from_dict(summary["policy"])
    if policy.n_stages != len(stages):
        raise RunFolderError(
            f"{root}: the exit policy drives {policy.n_stages} stages, the design has {len(stages)}"
        )
    config = summary.get("config") or {}
    return RunFolder(
        path=root,
        stages=stages,
        policy=policy,
        input=_input(summary["input"]),
        link=str(summary.get("link", "none")),
        device=str(summary.get("device", config.get("device", "local"))),
        energy_source=str(summary.get("energy_source", "estimated")),
        cloud_latency_ms=float(config.get("cloud_latency_ms", 0.0)),
    )


def _stage(root: Path, index: int, data: Mapping[str, Any]) -> StageSpec:
    where = str(data.get("where", DEVICE))
    payload = data.get("payload_bytes")
    return StageSpec(
        name=f"stage{index}" if where == DEVICE else "cloud",
        arch=str(data["arch"]),
        where=where,
        weights=root / str(data["weights"]),
        energy_mj=float(data.get("energy_mj", 0.0)),
        payload_bytes=None if payload is None else float(payload),
    )


def _input(data: Mapping[str, Any]) -> InputSpec:
    c, h, w = (int(d) for d in data["shape"])
    return InputSpec(
        dataset=str(data["dataset"]),
        shape=(c, h, w),
        num_classes=int(data["num_classes"]),
        class_names=tuple(str(n) for n in data["class_names"]),
        preprocessing=Preprocessing.from_dict(data["preprocessing"]),
    )
