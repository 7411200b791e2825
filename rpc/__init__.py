"""Edge/cloud runtime of acnn over the Open Inference Protocol (KServe v2, gRPC).

- ``tensors``: the raw tensor codec every peer of the protocol shares;
- ``protocol`` (+ ``generated/``, ``proto/``): messages, method names, parameters;
- ``repository``, ``batching``, ``auth``, ``server``: the cloud server (``acnn serve``);
- ``client``, ``edge``, ``inputs``: the on-device cascade (``acnn classify``);
- ``export``: TorchScript/ONNX stage files and their manifest (``acnn export``);
- ``mlserver_runtime``, ``mlserver_peer``: MLServer as a test and benchmark peer.

The run folder and its stages as runnable models are :mod:`adaptive_cnn.run_folder` and
:mod:`adaptive_cnn.stage`, the runtimes :mod:`energy_models.runtimes`.

Only the codec is imported here; the rest loads torch and gRPC, so import it by module.
"""

from rpc.tensors import DATATYPES, TensorError, datatype_of, decode_raw, encode_raw

__all__ = ["DATATYPES", "TensorError", "datatype_of", "decode_raw", "encode_raw"]
