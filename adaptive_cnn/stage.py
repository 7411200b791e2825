"""A stage of a design as a runnable thing: native-scale pixels in, class probabilities out.

The same module is served by the cloud server, run on the device, exported and profiled,
so every runtime sees one definition of the preprocessing: the training one,
``((x / pixel_max) - mean) / std`` per channel, then the network, then softmax. The
runtimes themselves are :mod:`energy_models.runtimes`; a stage runs by default in the
runtime its design was priced for (:func:`deployed_runtime`).
"""

from __future__ import annotations

import torch
from torch import nn

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.run_folder import RunFolder, StageSpec
from energy_models.runtimes import Runner, check_runtime, compile_runner

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


class StageModel(nn.Module):
    """(N, C, H, W) float32 native-scale pixels -> (N, K) float32 class probabilities."""

    def __init__(self, network: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.network = network.eval()
        # The trainer's normaliser: multiply by 1/pixel_max in float32, then standardise.
        self.register_buffer("scale", torch.tensor(1.0 / preprocessing.pixel_max))
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, -1, 1, 1))
        self.float().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network((x * self.scale - self.mean) / self.std), dim=1)


def load_stage_model(run: RunFolder, stage: StageSpec | str) -> StageModel:
    """The stage's :class:`StageModel` with its trained weights, in eval mode."""
    spec = run.stage(stage) if isinstance(stage, str) else stage
    return StageModel(run.load_network(spec), run.input.preprocessing)


def example_input(run: RunFolder, batch: int = 2) -> torch.Tensor:
    """A deterministic native-scale batch to trace with (values in [0, pixel_max])."""
    generator = torch.Generator().manual_seed(0)
    pixel_max = run.input.preprocessing.pixel_max
    return torch.rand((batch, *run.input.shape), generator=generator) * pixel_max


def deployed_runtime(run: RunFolder, requested: str | None = None) -> str:
    """The runtime to run ``run``'s stages in: ``requested`` where one is asked for
    explicitly, else the runtime the design was priced for (:attr:`RunFolder.runtime`).
    Energies of a run in another runtime are labelled ``run.pricing.label(runtime)``."""
    runtime = requested or run.runtime
    check_runtime(runtime)
    return runtime


def stage_runner(
    run: RunFolder,
    stage: StageSpec | str,
    runtime: str | None = None,
    *,
    threads: int = 1,
    optimise: bool = False,
) -> Runner:
    """One stage as a runner: (N, C, H, W) native-scale images -> (N, K) probabilities.

    Args:
        run: the design run folder.
        stage: the stage or its name (``stage1``.. or ``cloud``).
        runtime: ``torch``, ``torchscript`` or ``onnxruntime``
            (:data:`energy_models.runtimes.RUNTIMES`); None: :func:`deployed_runtime`'s.
        threads: ONNX Runtime's intra-op threads.
        optimise: TorchScript frozen and optimised for a server (checked against eager
            torch), instead of the portable module ``acnn export`` writes.
    """
    return compile_runner(
        load_stage_model(run, stage),
        example_input(run),
        deployed_runtime(run, runtime),
        threads=threads,
        optimise=optimise,
        names=(INPUT_NAME, OUTPUT_NAME),
    )
