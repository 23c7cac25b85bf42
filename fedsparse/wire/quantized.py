"""Codec for low-precision models: bit-packed integer codes + per-channel scales.

A b-bit tensor travels as one Flower ``Array`` with ``dtype="int<b>"``, its logical
``shape``, ``stype="fedsparse.bitpacked"`` and ``data`` = the float32 scales (one per
output channel) followed by the packed codes. No ``.npy`` header, no padding beyond the
last byte: Flower's ``count_bytes`` then sees exactly what a b-bit device sends, about
b/32 of the float32 size. float16 travels as ordinary ``.npy`` float16, float32 through
:mod:`fedsparse.wire.dense` unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

from fedsparse.quant import Precision, dequantize, pack_codes, packed_length, quantize, unpack_codes
from fedsparse.quant.quantizer import stochastic_quantize
from fedsparse.wire.dense import encode_state, npy_view
from fedsparse.wire.sparse import SPARSE, decode_sparse

BITPACKED = "fedsparse.bitpacked"
_INT_DTYPE = re.compile(r"int(\d{1,2})")
SCALE_BYTES = 4


def _scale_count(shape: tuple[int, ...]) -> int:
    return shape[0] if len(shape) >= 2 else 1


def encode_codes(codes: torch.Tensor, scales: torch.Tensor, bits: int) -> Array:
    packed = pack_codes(codes.numpy(), bits)
    data = scales.numpy().astype("<f4").tobytes() + packed.tobytes()
    return Array(dtype=f"int{bits}", shape=tuple(codes.shape), stype=BITPACKED, data=data)


def read_packed(array: Array) -> tuple[np.ndarray, np.ndarray, int]:
    """(codes, scales, bits) of a bit-packed ``Array``; ``ValueError`` if inconsistent."""
    match = _INT_DTYPE.fullmatch(array.dtype)
    if array.stype != BITPACKED or match is None or not 2 <= int(match.group(1)) <= 16:
        raise ValueError(f"not a bit-packed tensor (dtype {array.dtype!r}, stype {array.stype!r})")
    bits = int(match.group(1))
    shape = tuple(int(d) for d in array.shape)
    if not shape or min(shape) < 0:
        raise ValueError(f"bad shape {shape}")
    count, n_scales = math.prod(shape), _scale_count(shape)
    expected = n_scales * SCALE_BYTES + packed_length(count, bits)
    if len(array.data) != expected:
        raise ValueError(f"{len(array.data)} bytes where {bits}-bit {shape} takes {expected}")
    scales = np.frombuffer(array.data, dtype="<f4", count=n_scales)
    if not np.isfinite(scales).all() or (scales < 0).any():
        raise ValueError("scales must be finite and non-negative")
    codes = unpack_codes(np.frombuffer(array.data, dtype=np.uint8, offset=n_scales * SCALE_BYTES), bits, count)
    return codes.reshape(shape), scales, bits


def float_values(array: Array) -> np.ndarray:
    """The float values an array stands for: dequantized codes, densified sparse, or the dense payload."""
    if array.stype == BITPACKED:
        codes, scales, _ = read_packed(array)
        return dequantize(torch.from_numpy(codes), torch.from_numpy(scales.copy())).numpy()
    if array.stype == SPARSE:
        return decode_sparse(array)
    return npy_view(array)


def decode_float_state(record: ArrayRecord) -> dict[str, np.ndarray]:
    """Every array as float32 numpy (views where the payload is float32 already)."""
    out: dict[str, np.ndarray] = {}
    for name, array in record.items():
        values = float_values(array)
        out[name] = values.astype(np.float32, copy=False) if np.issubdtype(values.dtype, np.floating) else values
    return out


def encode_at(
    state: Mapping[str, torch.Tensor], precision: Precision, generator: torch.Generator | None = None
) -> ArrayRecord:
    """State dict → record at ``precision``; with ``generator``, stochastic (unbiased) rounding."""
    if precision.is_float32:
        return encode_state(state)
    record = ArrayRecord()
    for name, tensor in state.items():
        t = tensor.detach().cpu()
        if not t.is_floating_point():
            record[name] = Array(np.ascontiguousarray(t.numpy()))
        elif precision.kind == "float":
            record[name] = Array(np.ascontiguousarray(t.numpy().astype(np.float16)))
        else:
            codes, scales = stochastic_quantize(t, precision, generator) if generator else quantize(t, precision)
            record[name] = encode_codes(codes, scales, precision.bits)
    return record
