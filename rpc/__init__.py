"""Edge/cloud runtime of acnn over the Open Inference Protocol (KServe v2, gRPC).

- ``tensors``: the raw tensor codec every peer of the protocol shares;
- ``protocol`` (+ ``generated/``, ``proto/``): messages, method names, parameters;
- ``run_folder``, ``models``: a design run folder and its stages as served/run models;
- ``repository``, ``batching``, ``auth``, ``server``: the cloud server (``acnn serve``);
- ``client``, ``edge``, ``inputs``: the on-device cascade (``acnn classify``);
- ``export``: TorchScript/ONNX stages (``acnn export``) and the local stage runners;
- ``mlserver_runtime``, ``mlserver_peer``: MLServer as a test and benchmark peer.

Only the codec is imported here; the rest loads torch and gRPC, so import it by module.
"""

from rpc.tensors import DATATYPES, TensorError, datatype_of, decode_raw, encode_raw

__all__ = ["DATATYPES", "TensorError", "datatype_of", "decode_raw", "encode_raw"]
