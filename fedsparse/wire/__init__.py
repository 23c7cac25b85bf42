"""Wire codecs: the only code that turns tensors into Flower records and back."""

from fedsparse.wire.dense import decode_state, encode_model, encode_state, npy_view
from fedsparse.wire.model import float_tensors, load_into
from fedsparse.wire.quantized import (
    BITPACKED,
    decode_float_state,
    encode_at,
    float_values,
    read_packed,
)
from fedsparse.wire.sparse import SPARSE, decode_sparse, encode_sparse, encode_sparse_state, sparse_bytes

__all__ = [
    "BITPACKED",
    "SPARSE",
    "decode_float_state",
    "decode_sparse",
    "decode_state",
    "encode_at",
    "encode_model",
    "encode_sparse",
    "encode_sparse_state",
    "encode_state",
    "float_tensors",
    "float_values",
    "load_into",
    "npy_view",
    "read_packed",
    "sparse_bytes",
]
