"""An MLServer runtime that serves one stage of a design (a test and benchmark peer).

MLServer imports this module in its own process (``implementation`` in
model-settings.json): it is never imported by acnn itself, and it must not be imported
where tritonclient is, since both register ``inference.*`` protobuf messages.
``parameters.extra.runtime`` says how the stage runs, as in acnn serve:

- ``onnxruntime``: ``parameters.uri`` is the stage's ONNX file (the bytes acnn serve's
  session runs, written by :func:`rpc.mlserver_peer.start_mlserver`), run in an ONNX
  Runtime session with the session options of :func:`energy_models.runtimes.ort_session`.
  Only onnxruntime and numpy are imported, so MLServer may live in a venv of its own.
- ``torchscript`` or ``torch``: ``parameters.uri`` is the run folder and
  ``parameters.extra.stage`` the stage name; needs torch and acnn importable.
"""

from __future__ import annotations

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

OUTPUT_NAME = "probabilities"  # adaptive_cnn.stage.OUTPUT_NAME, not imported: no torch here


class AcnnStageRuntime(MLModel):
    """Native-scale images in, probabilities out: the same model acnn serve runs, in the
    same runtime."""

    async def load(self) -> bool:
        params = self.settings.parameters
        extra = (params.extra if params is not None else None) or {}
        threads = int(extra.get("threads", 1))
        runtime = str(extra.get("runtime", "onnxruntime"))
        if runtime == "onnxruntime":
            self._run = _onnx_runner(str(params.uri), threads)
        else:
            self._run = _torch_runner(str(params.uri), str(extra.get("stage")), runtime, threads)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        probs = self._run(images)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(OUTPUT_NAME, probs)],
        )


def _onnx_runner(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()  # energy_models.runtimes.ort_options, not imported
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed, fetch = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda x: session.run([fetch], {feed: np.ascontiguousarray(x, dtype=np.float32)})[0]


def _torch_runner(run_dir: str, stage: str, runtime: str, threads: int):
    import torch

    from adaptive_cnn.run_folder import load_run
    from adaptive_cnn.stage import stage_runner

    torch.set_num_threads(threads)
    return stage_runner(load_run(run_dir), stage, runtime, threads=threads, optimise=True)
