"""Exact bit-packing of signed b-bit integer codes into bytes.

Codes are offset by 2^(b-1) to unsigned and their bits laid end to end, least
significant first, so n codes take ceil(n·b / 8) bytes for any b in 2..16 (two 4-bit
codes a byte, four 2-bit codes, eight 3-bit codes in three bytes).
"""

from __future__ import annotations

import numpy as np


def packed_length(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def _check_bits(bits: int) -> None:
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Signed codes in [-2^(b-1), 2^(b-1) - 1] → uint8 array of ``packed_length`` bytes."""
    _check_bits(bits)
    offset = 1 << (bits - 1)
    unsigned = codes.reshape(-1).astype(np.int64) + offset
    if unsigned.size and (unsigned.min() < 0 or unsigned.max() >= 1 << bits):
        raise ValueError(f"codes outside the {bits}-bit range")
    if bits in (8, 16):  # byte-aligned: little-endian bytes are already the packing
        return unsigned.astype("<u1" if bits == 8 else "<u2").view(np.uint8)
    bit_planes = (unsigned[:, None] >> np.arange(bits)) & 1
    return np.packbits(bit_planes.astype(np.uint8).reshape(-1), bitorder="little")


def unpack_codes(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`; raises if ``packed`` has the wrong length."""
    _check_bits(bits)
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if packed.size != packed_length(count, bits):
        raise ValueError(f"{packed.size} packed bytes cannot hold {count} {bits}-bit codes")
    offset = 1 << (bits - 1)
    if bits in (8, 16):
        unsigned = packed.view("<u1" if bits == 8 else "<u2").astype(np.int64)
    else:
        bit_planes = np.unpackbits(packed, count=count * bits, bitorder="little").reshape(count, bits)
        unsigned = bit_planes.astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))
    return (unsigned - offset).astype(np.int32)
