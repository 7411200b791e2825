"""A stage as the runtime runs it: native-scale pixels in, class probabilities out.

The same module is served by the cloud server, run on the device and exported, so every
runtime sees one definition of the preprocessing: the training one,
``((x / pixel_max) - mean) / std`` per channel, then the network, then softmax.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adaptive_cnn.data.types import Preprocessing
from rpc.run_folder import RunFolder, StageSpec

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


def run_torch(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Probabilities (N, K) float32 of ``model`` on (N, C, H, W) native-scale images."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    # A new thread's OpenMP pool takes torch's thread count only once torch is asked for it;
    # oneDNN kernels (optimised TorchScript) do not ask, so a server's first batch on its
    # batcher thread would run on every core and round differently from the next ones.
    torch.get_num_threads()
    if torch.is_inference_mode_enabled():  # a caller entered it once for many calls
        return model(x).numpy()
    with torch.inference_mode():
        return model(x).numpy()
