from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord

from fedsparse.screening import RejectedReply, check_arrays
from fedsparse.wire import (
    SPARSE,
    decode_float_state,
    decode_sparse,
    encode_sparse,
    encode_sparse_state,
    encode_state,
    float_values,
    sparse_bytes,
)
from fedsparse.wire.sparse import BITMAP, INDICES, ROWS

SHAPES = [(), (7,), (5, 3), (4, 3, 3, 3), (2000,)]
DENSITIES = [0.0, 0.01, 0.3, 0.7, 1.0]


def _random(shape: tuple[int, ...], density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape).astype(np.float32)
    return np.where(rng.random(shape) < density, values, np.float32(0)).astype(np.float32)


def _rows_kept(shape: tuple[int, ...], kept: float, seed: int = 0) -> np.ndarray:
    """FedWeIT's upload: whole output units dropped, the kept ones dense (a few exact zeros inside).

    Beyond 1/32 zeros inside the kept rows a bitmap beats sending those zeros as values.
    """
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal(shape).astype(np.float32)
    dense[rng.random(shape) < 0.01] = 0
    keep = np.zeros(shape[0], bool)
    keep[rng.permutation(shape[0])[: round(kept * shape[0])]] = True
    dense[~keep] = 0
    return dense


def _assert_exact(values: np.ndarray) -> Array:
    array = encode_sparse(values)
    decoded = decode_sparse(array)
    assert array.stype == SPARSE and array.dtype == "float32" and tuple(array.shape) == values.shape
    assert decoded.dtype == np.float32 and decoded.shape == values.shape
    assert decoded.tobytes() == values.tobytes()  # bit for bit
    assert len(array.data) == sparse_bytes(values)
    return array


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", DENSITIES)
def test_random_tensors_round_trip_bit_for_bit(shape: tuple[int, ...], density: float) -> None:
    for seed in range(3):
        _assert_exact(_random(shape, density, seed))


@pytest.mark.parametrize("shape", [(32, 16, 3, 3), (64, 40), (10, 1), (9, 2, 2), (3,)])
@pytest.mark.parametrize("kept", [0.0, 0.3, 0.7, 1.0])
def test_row_structured_tensors_round_trip_bit_for_bit(shape: tuple[int, ...], kept: float) -> None:
    _assert_exact(_rows_kept(shape, kept))


@pytest.mark.parametrize("shape", [(32, 16, 3, 3), (64, 40)])
@pytest.mark.parametrize("kept", [0.3, 0.7, 1.0])
def test_dropped_output_units_travel_as_rows(shape: tuple[int, ...], kept: float) -> None:
    values = _rows_kept(shape, kept)
    array = _assert_exact(values)
    rows, row_size = shape[0], math.prod(shape[1:])
    kept_rows = int(values.reshape(rows, -1).any(axis=1).sum())
    assert kept_rows == round(kept * rows) and array.data[0] == ROWS
    assert len(array.data) == 1 + math.ceil(rows / 8) + 4 * kept_rows * row_size


def test_an_all_zero_tensor_costs_one_byte() -> None:
    for shape in [(), (7,), (32, 16, 3, 3)]:
        assert _assert_exact(np.zeros(shape, np.float32)).data == bytes([INDICES])  # empty index list


def test_very_sparse_tensors_travel_as_indices_of_the_narrowest_type() -> None:
    for n, index_bytes in [(200, 1), (2000, 2), (70_000, 4)]:
        values = _random((n,), 10 / n, seed=1)
        nnz = int(np.count_nonzero(values))
        array = _assert_exact(values)
        assert nnz > 0 and array.data[0] == INDICES
        assert len(array.data) == 1 + index_bytes * nnz + 4 * nnz


def test_unstructured_thirty_percent_travels_as_a_bitmap() -> None:
    values = _random((64, 100), 0.3)
    nnz = int(np.count_nonzero(values))
    array = _assert_exact(values)
    assert array.data[0] == BITMAP
    assert len(array.data) == 1 + 64 * 100 // 8 + 4 * nnz


def test_ties_prefer_rows_then_bitmap() -> None:
    assert encode_sparse(np.zeros((0, 3), np.float32)).data == bytes([ROWS])  # all three cost 1 byte
    # 2 elements, 1 non-zero: rows and bitmap 1 + 1 + 4, indices 1 + 1 + 4 -> rows
    assert encode_sparse(np.array([0, 1], np.float32)).data[0] == ROWS
    # 2x2, one non-zero: rows 1 + 1 + 8, bitmap 1 + 1 + 4, indices 1 + 1 + 4 -> bitmap
    assert encode_sparse(np.array([[1, 0], [0, 0]], np.float32)).data[0] == BITMAP


def test_negative_zero_counts_as_zero_and_comes_back_positive() -> None:
    values = np.zeros(1000, np.float32)
    values[[0, 500]] = [-0.0, 2.0]
    array = encode_sparse(values)
    assert len(array.data) == 1 + 2 * 1 + 4 * 1  # one index, one value
    decoded = decode_sparse(array)
    assert decoded[500] == 2.0 and decoded[0] == 0 and not np.signbit(decoded[0])


def test_any_float_dtype_is_sent_as_float32_and_integers_are_refused() -> None:
    tensor = torch.tensor([[0.0, 1.5], [0.0, 0.0]], dtype=torch.float64)
    assert np.array_equal(decode_sparse(encode_sparse(tensor)), tensor.float().numpy())
    half = torch.tensor([0.0, 0.25], dtype=torch.bfloat16)
    assert decode_sparse(encode_sparse(half)).tolist() == [0.0, 0.25]
    with pytest.raises(TypeError):
        encode_sparse(torch.tensor([0, 1]))


def test_nan_and_inf_values_decode_without_crashing() -> None:
    values = np.zeros(300, np.float32)
    values[[3, 30]] = [np.nan, np.inf]
    decoded = decode_sparse(encode_sparse(values))
    assert np.isnan(decoded[3]) and decoded[30] == np.inf and np.count_nonzero(decoded[~np.isnan(decoded)]) == 1


def test_record_byte_count_is_exactly_data_plus_keys() -> None:
    state = {"conv.weight": torch.from_numpy(_rows_kept((32, 16, 3, 3), 0.7)), "fc.bias": torch.zeros(10)}
    record = encode_sparse_state(state)
    assert list(record) == list(state) and {a.stype for a in record.values()} == {SPARSE}
    assert record.count_bytes() == sum(len(a.data) + len(k) for k, a in record.items())
    assert record.count_bytes() == sum(sparse_bytes(t) + len(k) for k, t in state.items())


def test_seventy_percent_of_rows_cost_about_seventy_percent_of_dense() -> None:
    weight = _rows_kept((32, 16, 3, 3), 0.7)
    kept_fraction = weight.reshape(32, -1).any(axis=1).mean()
    sparse = len(encode_sparse(weight).data)
    dense = len(encode_state({"w": torch.from_numpy(weight)})["w"].data)
    assert sparse < dense
    assert sparse / (4 * weight.size) == pytest.approx(kept_fraction, abs=0.002)


def _forged(good: Array, **changes: object) -> Array:
    fields = {"dtype": good.dtype, "shape": tuple(good.shape), "stype": good.stype, "data": good.data, **changes}
    return Array(**fields)  # type: ignore[arg-type]


def _values(*values: float) -> bytes:
    return np.array(values, "<f4").tobytes()


GOOD = {
    ROWS: encode_sparse(_rows_kept((5, 3), 0.6)),
    BITMAP: encode_sparse(_random((64, 100), 0.3)),
    INDICES: encode_sparse(_random((2000,), 0.01)),
}


def test_the_forgery_fixtures_use_each_format() -> None:
    assert {code: array.data[0] for code, array in GOOD.items()} == {ROWS: ROWS, BITMAP: BITMAP, INDICES: INDICES}


@pytest.mark.parametrize("code", [ROWS, BITMAP, INDICES])
def test_truncated_or_padded_payloads_are_rejected(code: int) -> None:
    good = GOOD[code]
    for data in (good.data[:-1], good.data[:-4], good.data + b"\0", good.data + b"\0" * 4):
        with pytest.raises(ValueError, match="bytes"):
            decode_sparse(_forged(good, data=data))


def test_empty_payload_and_unknown_format_are_rejected() -> None:
    good = GOOD[ROWS]
    with pytest.raises(ValueError, match="empty"):
        decode_sparse(_forged(good, data=b""))
    for code in (3, 255):
        with pytest.raises(ValueError, match="format byte"):
            decode_sparse(_forged(good, data=bytes([code]) + good.data[1:]))


@pytest.mark.parametrize(
    ("positions", "message"),
    [([5, 3], "increasing"), ([5, 5], "increasing"), ([5, 2000], "out of range"), ([65535], "out of range")],
)
def test_bad_indices_are_rejected(positions: list[int], message: str) -> None:
    data = bytes([INDICES]) + np.array(positions, "<u2").tobytes() + _values(*[1.0] * len(positions))
    with pytest.raises(ValueError, match=message):
        decode_sparse(_forged(GOOD[INDICES], data=data))


def test_well_formed_hand_built_indices_decode() -> None:
    data = bytes([INDICES]) + np.array([3, 1999], "<u2").tobytes() + _values(1.0, -2.0)
    decoded = decode_sparse(_forged(GOOD[INDICES], data=data))
    assert decoded[3] == 1.0 and decoded[1999] == -2.0 and np.count_nonzero(decoded) == 2


def test_bitmap_padding_bits_are_rejected() -> None:
    # (5, 3): the row bitmap has 5 bits in one byte; the element bitmap 15 bits in two bytes
    rows = bytes([ROWS, 0b1000_0001]) + _values(1, 2, 3)
    with pytest.raises(ValueError, match="padding"):
        decode_sparse(_forged(GOOD[ROWS], data=rows))
    elements = bytes([BITMAP, 0b0000_0001, 0b1000_0000]) + _values(1)
    with pytest.raises(ValueError, match="padding"):
        decode_sparse(_forged(GOOD[ROWS], data=elements))
    assert decode_sparse(_forged(GOOD[ROWS], data=bytes([BITMAP, 1, 0]) + _values(1)))[0, 0] == 1


@pytest.mark.parametrize("code", [ROWS, BITMAP])
def test_popcount_must_match_the_value_count(code: int) -> None:
    good = GOOD[code]
    first = good.data[1]
    flipped = bytes([code, first ^ (1 << next(b for b in range(8) if not first >> b & 1))]) + good.data[2:]
    with pytest.raises(ValueError, match="bytes"):
        decode_sparse(_forged(good, data=flipped))


def test_wrong_dtype_stype_or_shape_is_rejected() -> None:
    good = GOOD[BITMAP]
    with pytest.raises(ValueError, match="float32"):
        decode_sparse(_forged(good, dtype="float16"))
    with pytest.raises(ValueError, match="sparse"):
        decode_sparse(_forged(good, stype="numpy.ndarray"))
    with pytest.raises(ValueError, match="shape"):
        decode_sparse(_forged(good, shape=(-64, -100)))
    with pytest.raises(ValueError, match="more than"):
        decode_sparse(_forged(good, shape=(2**16, 2**16)))
    with pytest.raises(ValueError, match="shape"):
        decode_sparse(_forged(good, shape=(2**40, 0)))
    with pytest.raises(ValueError, match="bytes"):
        decode_sparse(_forged(good, shape=(64, 101)))


def test_float_values_and_aggregation_decode_sparse_arrays() -> None:
    values = _rows_kept((8, 4), 0.5)
    record = encode_sparse_state({"w": torch.from_numpy(values)})
    assert np.array_equal(float_values(record["w"]), values)
    assert np.array_equal(decode_float_state(record)["w"], values)


def test_screening_rejects_a_forged_sparse_reply_and_accepts_a_good_one() -> None:
    expected = encode_sparse_state({"w": torch.from_numpy(_rows_kept((5, 3), 0.6, seed=1))})
    check_arrays(ArrayRecord({"w": GOOD[ROWS]}), expected)
    forged = _forged(GOOD[ROWS], data=GOOD[ROWS].data + b"\0")
    with pytest.raises(RejectedReply, match="undecodable"):
        check_arrays(ArrayRecord({"w": forged}), expected)
    nan = encode_sparse(np.array([[np.nan, 0, 0]] + [[0, 0, 0]] * 4, np.float32))
    with pytest.raises(RejectedReply, match="NaN"):
        check_arrays(ArrayRecord({"w": nan}), expected)
