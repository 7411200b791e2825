"""Edge/cloud runtime of acnn over the Open Inference Protocol (KServe v2, gRPC).

Today: the raw tensor codec every peer of the protocol shares. The cloud server and the
on-device client build on it.
"""

from rpc.tensors import DATATYPES, TensorError, datatype_of, decode_raw, encode_raw

__all__ = ["DATATYPES", "TensorError", "datatype_of", "decode_raw", "encode_raw"]
