"""Predicted device costs of cascade stages, the a-priori screen, and the default predictor.

Local stages cost what the layer-wise predictor says (energy, latency) and what the memory
model says; the cloud stage costs the radio energy to send the image plus the device's
idle energy while it waits, from the device profile's link. Nothing here trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_cnn.networks import describe_arch
from energy_models.devices import DeviceProfile
from energy_models.estimate import estimate_layers
from energy_models.predictor import EnergyPredictor
from selector import StageCosts


@dataclass(frozen=True)
class StageEstimate:
    """Predicted cost of one local network at batch 1 on the device."""

    arch: str
    energy_mj: float
    latency_ms: float
    memory_bytes: int
    params: int
    macs: int


class CostModel:
    """Stage costs of candidate cascades for one device, predictor, link and input.

    Args:
        predictor: the device's layer-wise energy predictor.
        device: the device profile (memory limit, idle power, links).
        link: link name to the cloud stage, or ``none``.
        input_shape: (C, H, W) of one image; the cloud payload is its uint8 pixels.
        num_classes: classifier outputs.
        cloud_latency_ms: the cloud model's inference time per image.
    """

    def __init__(
        self,
        predictor: EnergyPredictor,
        device: DeviceProfile,
        link: str,
        input_shape: tuple[int, int, int],
        num_classes: int,
        cloud_latency_ms: float,
    ) -> None:
        self.predictor, self.device = predictor, device
        self.link = None if link == "none" else device.link(link)
        self.input_shape, self.num_classes = input_shape, num_classes
        self.cloud_latency_ms = cloud_latency_ms
        self.payload_bytes = math.prod(input_shape)  # native uint8 pixels
        self._memo: dict[str, StageEstimate] = {}

    @property
    def estimated(self) -> bool:
        """True when stage energies rest on a declared power model."""
        return self.predictor.estimated

    def local(self, arch: str) -> StageEstimate:
        """Predicted cost of one local network (memoised by architecture string)."""
        if arch not in self._memo:
            layers = describe_arch(arch, self.input_shape, self.num_classes)
            e = estimate_layers(layers, self.input_shape, self.predictor)
            self._memo[arch] = StageEstimate(
                arch=arch,
                energy_mj=e.energy_mj,
                latency_ms=e.latency_ms,
                memory_bytes=e.memory.total_bytes("fp32"),
                params=e.memory.params,
                macs=sum(layer.macs for layer in layers),
            )
        return self._memo[arch]

    def cloud(self) -> tuple[float, float, float]:
        """(energy_mj, latency_ms, payload_bytes) of sending one image to the cloud."""
        if self.link is None:
            raise ValueError("this cascade has no cloud stage (link none)")
        energy = self.link.offload_energy_mj(
            self.payload_bytes,
            idle_power_w=self.device.power.idle_w,
            cloud_latency_ms=self.cloud_latency_ms,
        )
        latency = self.link.offload_latency_ms(
            self.payload_bytes, cloud_latency_ms=self.cloud_latency_ms
        )
        return float(energy), float(latency), float(self.payload_bytes)

    def stage_costs(self, stages: Sequence[str]) -> StageCosts:
        """Costs of the local stages, then the cloud stage when there is a link."""
        local = [self.local(a) for a in stages]
        energy = [s.energy_mj for s in local]
        latency = [s.latency_ms for s in local]
        payload = [0.0] * len(local)
        remote = [False] * len(local)
        if self.link is not None:
            e, t, b = self.cloud()
            energy, latency, payload, remote = (
                energy + [e],
                latency + [t],
                payload + [b],
                [
                    *remote,
                    True,
                ],
            )
        return StageCosts(
            energy_mj=np.asarray(energy),
            latency_ms=np.asarray(latency),
            payload_bytes=np.asarray(payload),
            remote=np.asarray(remote),
        )

    def screen(
        self, stages: Sequence[str], budget_mj: float | None, later_stage_factor: float = 10.0
    ) -> str | None:
        """Why a cascade cannot meet its constraints before any training, or None.

        Every image pays stage 1, so stage 1 alone above the budget is infeasible. A later
        local stage costing more than ``later_stage_factor`` x the budget could serve at
        most 1/factor of the images within it: such designs are not worth training. Every
        network must fit the device's memory limit.
        """
        first = self.local(stages[0])
        if budget_mj is not None and first.energy_mj > budget_mj:
            return f"stage 1 alone needs {first.energy_mj:.3g} mJ > budget {budget_mj:g} mJ"
        for i, arch in enumerate(stages[1:], start=2):
            energy = self.local(arch).energy_mj
            if budget_mj is not None and energy > later_stage_factor * budget_mj:
                return (
                    f"stage {i} needs {energy:.3g} mJ > {later_stage_factor:g} x the budget: "
                    f"it could serve under {100 / later_stage_factor:.0f}% of the images"
                )
        limit = self.device.memory_limit_bytes
        for i, arch in enumerate(stages, start=1):
            memory = self.local(arch).memory_bytes
            if memory > limit:
                return f"stage {i} needs {memory} B of memory > the device's {limit} B"
        return None


def predictor_identity(predictor: EnergyPredictor, path: Path | None) -> dict[str, Any]:
    """What identifies the predictor a design was priced with (``pricing.predictor`` of a
    run folder): its triple, torch version, date, kind, power source and file."""
    return {
        "device": predictor.device,
        "runtime": predictor.runtime,
        "threads": predictor.threads,
        "torch_version": predictor.torch_version,
        "created": predictor.created,
        "kind": "kernel-level" if predictor.kernels else "layer-wise",
        "power_source": predictor.power_source,
        "estimated": predictor.estimated,
        "file": None if path is None else str(path),
        "profile": predictor.provenance.get("profile"),
    }


def default_predictor(
    device: DeviceProfile,
    cache_root: Path,
    say: Callable[[str], Any] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> Path:
    """This machine's predictor for ``device``, profiling and fitting it once if missing.

    A quick profile (about a minute) is taken with the device's runtime and threads and
    cached under ``cache_root/predictors``; later runs reuse it.

    Args:
        device: the device profile (runtime, threads, power source).
        cache_root: the training cache's root folder.
        say: prints one line of news.
        progress: a progress-bar factory for the profile (see ``take_profile``).
    """
    import torch

    from adaptive_cnn.profiling import ProfileRequest, default_shapes, sweep_size, take_profile
    from energy_models.fitting import fit_predictor
    from energy_models.profile_store import ProfileData
    from energy_models.runtimes import ORT_SESSION_TAG

    # kernel-level predictor, timed with acnn's session options
    level = f"-kernels-{ORT_SESSION_TAG}" if device.runtime == "onnxruntime" else ""
    tag = f"{device.name}-{device.runtime}{level}-{device.threads}t-torch{torch.__version__}"
    root = cache_root / "predictors"
    path = root / f"{tag}.json"
    if path.exists():
        return path
    if say:
        say(f"no energy predictor for {tag} yet: profiling this machine once (quick)")
    request = ProfileRequest(
        out=root / f"{tag}-profile",
        device=device,
        runtime=device.runtime,
        threads=device.threads,
        size=sweep_size(True, runtime=device.runtime),
        shapes=default_shapes(True),
        quick=True,
        rounds=3,
    )
    take_profile(request, progress=progress)
    root.mkdir(parents=True, exist_ok=True)
    fit_predictor(ProfileData.load(request.out)).save(path)
    return path
