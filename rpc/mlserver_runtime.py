"""An MLServer runtime that serves one stage of a design (a test and benchmark peer).

MLServer imports this module in its own process (``implementation`` in
model-settings.json): it is never imported by acnn itself, and it must not be imported
where tritonclient is, since both register ``inference.*`` protobuf messages.
``parameters.uri`` is the run folder, ``parameters.extra.stage`` the stage name and
``parameters.extra.runtime`` how it runs (``torchscript``, ``torch`` or ``onnxruntime``,
as in acnn serve).
"""

from __future__ import annotations

import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from adaptive_cnn.run_folder import load_run
from adaptive_cnn.stage import OUTPUT_NAME, stage_runner


class AcnnStageRuntime(MLModel):
    """Native-scale images in, probabilities out: the same StageModel acnn serve runs,
    compiled the same way."""

    async def load(self) -> bool:
        params = self.settings.parameters
        extra = (params.extra if params is not None else None) or {}
        threads = int(extra.get("threads", 1))
        torch.set_num_threads(threads)
        stage, runtime = str(extra.get("stage", "cloud")), str(extra.get("runtime", "torchscript"))
        self._run = stage_runner(
            load_run(params.uri), stage, runtime, threads=threads, optimise=True
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        probs = self._run(images)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(OUTPUT_NAME, probs)],
        )
