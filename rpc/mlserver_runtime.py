"""An MLServer runtime that serves one stage of a design (a test and benchmark peer).

MLServer imports this module in its own process (``implementation`` in
model-settings.json): it is never imported by acnn itself, and it must not be imported
where tritonclient is, since both register ``inference.*`` protobuf messages.
``parameters.uri`` is the run folder, ``parameters.extra.stage`` the stage name and
``parameters.extra.runtime`` how it runs (``torchscript`` or ``eager``, as in acnn serve).
"""

from __future__ import annotations

import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from rpc.export import example_input, serving_module
from rpc.models import OUTPUT_NAME, load_stage_model, run_torch
from rpc.run_folder import load_run


class AcnnStageRuntime(MLModel):
    """Native-scale images in, probabilities out: the same StageModel acnn serve runs,
    compiled the same way."""

    async def load(self) -> bool:
        params = self.settings.parameters
        extra = (params.extra if params is not None else None) or {}
        torch.set_num_threads(int(extra.get("threads", 1)))
        run = load_run(params.uri)
        model = load_stage_model(run, str(extra.get("stage", "cloud")))
        runtime = str(extra.get("runtime", "torchscript"))
        self._model = serving_module(model, example_input(run), runtime)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        probs = run_torch(self._model, images)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(OUTPUT_NAME, probs)],
        )
