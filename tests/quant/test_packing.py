from __future__ import annotations

import numpy as np
import pytest

from fedsparse.quant import pack_codes, packed_length, unpack_codes


@pytest.mark.parametrize("bits", range(2, 17))
@pytest.mark.parametrize("count", [1, 3, 7, 13, 1001])
def test_pack_unpack_round_trip_is_exact(bits: int, count: int) -> None:
    rng = np.random.default_rng([bits, count])
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    codes = rng.integers(low, high + 1, size=count)
    codes[0], codes[-1] = low, high  # both ends of the range
    packed = pack_codes(codes, bits)
    assert packed.dtype == np.uint8
    assert packed.size == packed_length(count, bits) == -(-count * bits // 8)
    assert np.array_equal(unpack_codes(packed, bits, count), codes)


def test_sub_byte_codes_share_bytes() -> None:
    assert pack_codes(np.array([-8, 7]), 4).tolist() == [0 | (15 << 4)]  # two 4-bit codes, one byte
    assert packed_length(4, 2) == 1 and packed_length(8, 3) == 3


def test_out_of_range_codes_and_wrong_lengths_are_errors() -> None:
    with pytest.raises(ValueError, match="range"):
        pack_codes(np.array([8]), 4)
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_codes(np.zeros(3, np.uint8), 4, 7)
    with pytest.raises(ValueError, match="bits"):
        pack_codes(np.array([0]), 1)
