"""The raw tensor codec of the Open Inference Protocol."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from rpc import DATATYPES, TensorError, datatype_of, decode_raw, encode_raw


def test_fp32_bytes_are_little_endian_row_major():
    datatype, shape, raw = encode_raw(np.array([[1.0, 2.0]], dtype=np.float32))
    assert (datatype, shape) == ("FP32", [1, 2])
    # IEEE-754 single: 1.0 = 0x3F800000, 2.0 = 0x40000000, least significant byte first.
    assert raw == bytes([0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])


def test_big_endian_input_is_normalised():
    big = np.array([1, 2], dtype=">i4")
    assert datatype_of(big) == "INT32"
    assert encode_raw(big)[2] == np.array([1, 2], dtype="<i4").tobytes()


@given(
    st.sampled_from(sorted(DATATYPES)).flatmap(
        lambda name: arrays(DATATYPES[name], array_shapes(min_dims=0, max_dims=4, max_side=5))
    )
)
def test_round_trip_every_datatype(array):
    datatype, shape, raw = encode_raw(array)
    back = decode_raw(datatype, shape, raw)
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_wrong_byte_size_is_rejected():
    with pytest.raises(TensorError, match=r"needs 24 bytes, got 20"):
        decode_raw("FP32", [2, 3], b"\0" * 20)


@pytest.mark.parametrize("shape", [[-1, 3], [2.5], [True]])
def test_bad_shapes_are_rejected(shape):
    with pytest.raises(TensorError, match="non-negative integers"):
        decode_raw("UINT8", shape, b"")


def test_unknown_datatype_and_size_limit():
    with pytest.raises(TensorError, match="unsupported datatype 'BYTES'"):
        decode_raw("BYTES", [1], b"x")
    with pytest.raises(TensorError, match="exceeds the limit of 1000 bytes"):
        decode_raw("FP64", [1000], b"", max_bytes=1000)


def test_object_arrays_have_no_datatype():
    with pytest.raises(TensorError, match="no Open Inference Protocol datatype"):
        encode_raw(np.array([{"a": 1}], dtype=object))
