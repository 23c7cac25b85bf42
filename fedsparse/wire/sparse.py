"""Sparse float codec: a tensor's non-zeros as (index part + float32 values).

A sparse tensor on the wire is (indices or bitmap) + values; the ledger counts exactly
those bytes. A tensor travels as one Flower ``Array`` with
``dtype="float32"``, its logical ``shape``, ``stype="fedsparse.sparse"`` and ``data`` =
one format byte, the index part, then the float32 little-endian values. No ``.npy``
header, no length fields: Flower's ``count_bytes`` sees exactly what a device sends, and
:func:`sparse_bytes` predicts it from the non-zero pattern alone.

Three index formats; the encoder takes the cheapest for each tensor (ties: rows, then
bitmap):

* ``ROWS`` (0): a bitmap over dim 0, then every value of the marked rows. FedWeIT drops
  whole output units, so its keep mask costs one bit per unit, not one per element.
* ``BITMAP`` (1): one bit per element, then the non-zero values in C order.
* ``INDICES`` (2): the flat C-order indices of the non-zeros (uint8/16/32/64, the
  narrowest holding ``n - 1``), strictly increasing, then their values.

Bitmaps are packed least significant bit first (``np.packbits(bitorder="little")``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

SPARSE = "fedsparse.sparse"
ROWS, BITMAP, INDICES = 0, 1, 2
VALUE_BYTES = 4
MAX_ELEMENTS = 2**31  # refuse forged shapes that would make the decoder allocate absurdly
MAX_DIMS = 32  # NumPy 1.x's limit; a longer forged shape must fail here, not in reshape
_VALUE_DTYPE = np.dtype("<f4")
_INDEX_DTYPES = tuple(np.dtype(f"<u{width}") for width in (1, 2, 4, 8))


def _as_float32(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """C-contiguous float32 copy-or-view; integer tensors are refused, not rounded into floats."""
    if isinstance(values, torch.Tensor):
        if not values.is_floating_point():
            raise TypeError(f"sparse codec takes float tensors, got {values.dtype}")
        return values.detach().cpu().to(torch.float32).contiguous().numpy()
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"sparse codec takes float arrays, got {array.dtype}")
    return np.asarray(array, dtype=np.float32, order="C")  # ascontiguousarray would make 0-d 1-d


def _row_layout(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, row size): dim 0 and the rest for ≥2-d tensors; one element per row otherwise."""
    if len(shape) >= 2:
        return shape[0], math.prod(shape[1:])
    return math.prod(shape), 1


def _index_dtype(n: int) -> np.dtype:
    """The narrowest unsigned little-endian type that holds every flat index ``< n``."""
    return next(d for d in _INDEX_DTYPES if n - 1 <= np.iinfo(d).max)


def _bitmap_bytes(bits: int) -> int:
    return -(-bits // 8)


def _format_sizes(shape: tuple[int, ...], nnz: int, kept_rows: int) -> tuple[int, int, int]:
    """Bytes of each format (indexed by its code) for this non-zero pattern."""
    n = math.prod(shape)
    rows, row_size = _row_layout(shape)
    return (
        1 + _bitmap_bytes(rows) + VALUE_BYTES * kept_rows * row_size,
        1 + _bitmap_bytes(n) + VALUE_BYTES * nnz,
        1 + (_index_dtype(n).itemsize + VALUE_BYTES) * nnz,
    )


def _cheapest(sizes: tuple[int, int, int]) -> int:
    return min(range(len(sizes)), key=sizes.__getitem__)  # min keeps the first: rows, then bitmap


def _pattern(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(element mask, row mask) of the non-zeros; -0.0 is zero, NaN is not."""
    nonzero = dense.reshape(-1) != 0
    return nonzero, nonzero.reshape(_row_layout(dense.shape)).any(axis=1)


def sparse_bytes(values: torch.Tensor | np.ndarray) -> int:
    """``len(encode_sparse(values).data)``, from the non-zero counts alone (no encoding)."""
    dense = _as_float32(values)
    nonzero, kept = _pattern(dense)
    return min(_format_sizes(dense.shape, int(nonzero.sum()), int(kept.sum())))


def _pack(mask: np.ndarray) -> bytes:
    return np.packbits(mask, bitorder="little").tobytes()


def _values(values: np.ndarray) -> bytes:
    return values.astype(_VALUE_DTYPE, copy=False).tobytes()


def encode_sparse(values: torch.Tensor | np.ndarray) -> Array:
    """A float tensor (any float dtype, sent as float32) as a sparse ``Array``.

    -0.0 counts as zero, so outside a kept row it comes back as +0.0; every other value,
    NaN and Inf included, comes back bit for bit.
    """
    dense = _as_float32(values)
    shape = tuple(int(d) for d in dense.shape)
    nonzero, kept = _pattern(dense)
    code = _cheapest(_format_sizes(shape, int(nonzero.sum()), int(kept.sum())))
    flat = dense.reshape(-1)
    if code == ROWS:
        index, payload = _pack(kept), flat.reshape(_row_layout(shape))[kept]
    elif code == BITMAP:
        index, payload = _pack(nonzero), flat[nonzero]
    else:
        positions = np.flatnonzero(nonzero)
        index, payload = positions.astype(_index_dtype(flat.size)).tobytes(), flat[positions]
    return Array(dtype="float32", shape=shape, stype=SPARSE, data=bytes([code]) + index + _values(payload))


def encode_sparse_state(state: Mapping[str, torch.Tensor | np.ndarray]) -> ArrayRecord:
    """Every tensor of ``state`` sparse-encoded, in the state's order."""
    record = ArrayRecord()
    for name, values in state.items():
        record[name] = encode_sparse(values)
    return record


def _checked_shape(array: Array) -> tuple[int, ...]:
    if array.stype != SPARSE or array.dtype != "float32":
        raise ValueError(f"not a sparse float32 tensor (dtype {array.dtype!r}, stype {array.stype!r})")
    shape = tuple(int(d) for d in array.shape)
    if len(shape) > MAX_DIMS or any(d < 0 or d > MAX_ELEMENTS for d in shape):
        raise ValueError(f"bad shape {shape}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"shape {shape} holds more than {MAX_ELEMENTS} elements")
    return shape


def _read_bitmap(data: bytes, bits: int) -> np.ndarray:
    """The bitmap after the format byte as a bool mask; its padding bits must be zero."""
    length = _bitmap_bytes(bits)
    if len(data) < 1 + length:
        raise ValueError(f"{len(data)} bytes cannot hold a {bits}-bit bitmap")
    unpacked = np.unpackbits(np.frombuffer(data, np.uint8, count=length, offset=1), bitorder="little")
    if unpacked[bits:].any():
        raise ValueError("bitmap padding bits are set")
    return unpacked[:bits].astype(bool)


def _read_values(data: bytes, offset: int, count: int) -> np.ndarray:
    """``count`` float32 values from ``offset``, which must end exactly at the end of ``data``."""
    expected = offset + VALUE_BYTES * count
    if len(data) != expected:
        raise ValueError(f"{len(data)} bytes where the index part promises {expected}")
    return np.frombuffer(data, _VALUE_DTYPE, count=count, offset=offset).astype(np.float32)


def _decode_rows(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    rows, row_size = _row_layout(shape)
    kept = _read_bitmap(data, rows)
    out = np.zeros((rows, row_size), np.float32)
    out[kept] = _read_values(data, 1 + _bitmap_bytes(rows), int(kept.sum()) * row_size).reshape(-1, row_size)
    return out.reshape(shape)


def _decode_bitmap(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    n = math.prod(shape)
    nonzero = _read_bitmap(data, n)
    out = np.zeros(n, np.float32)
    out[nonzero] = _read_values(data, 1 + _bitmap_bytes(n), int(nonzero.sum()))
    return out.reshape(shape)


def _decode_indices(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    n = math.prod(shape)
    index_dtype = _index_dtype(n)
    nnz, remainder = divmod(len(data) - 1, index_dtype.itemsize + VALUE_BYTES)
    if remainder or nnz > n:
        raise ValueError(f"{len(data)} bytes is no whole number of ({index_dtype}, float32) pairs for {n} elements")
    positions = np.frombuffer(data, index_dtype, count=nnz, offset=1).astype(np.int64)
    if (np.diff(positions) <= 0).any():
        raise ValueError("indices are not strictly increasing")
    if nnz and positions[-1] >= n:
        raise ValueError(f"index {positions[-1]} out of range for {n} elements")
    out = np.zeros(n, np.float32)
    out[positions] = _read_values(data, 1 + index_dtype.itemsize * nnz, nnz)
    return out.reshape(shape)


_DECODERS = {ROWS: _decode_rows, BITMAP: _decode_bitmap, INDICES: _decode_indices}


def decode_sparse(array: Array) -> np.ndarray:
    """The dense float32 tensor a sparse ``Array`` stands for; ``ValueError`` on anything forged.

    Checked: stype and dtype, the shape (no negative dims, at most ``MAX_ELEMENTS``
    elements), the format byte, zero bitmap padding, strictly increasing in-range indices,
    and a length exactly matching the index part and the value count it implies. Finite
    values are the screening's business, not the codec's.
    """
    shape = _checked_shape(array)
    data = array.data
    if not data:
        raise ValueError("empty sparse payload")
    decoder = _DECODERS.get(data[0])
    if decoder is None:
        raise ValueError(f"unknown sparse format byte {data[0]}")
    return decoder(data, shape)
