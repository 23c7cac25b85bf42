"""Wire codecs: the only code that turns tensors into Flower records and back."""

from fedsparse.wire.dense import decode_state, encode_model, encode_state, load_into, npy_view

__all__ = ["decode_state", "encode_model", "encode_state", "load_into", "npy_view"]
