from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from flwr.app import Array

from fedsparse.models import build_model, count_parameters
from fedsparse.wire import decode_state, encode_model, load_into, npy_view


def test_round_trip_is_exact() -> None:
    model = build_model("cnn", (1, 28, 28), 10)
    record = encode_model(model)
    decoded = decode_state(record)
    for name, tensor in model.state_dict().items():
        assert torch.equal(decoded[name], tensor)
    clone = build_model("cnn", (1, 28, 28), 10)
    load_into(clone, record)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(clone(x), model(x))


def test_float_travels_as_float32_and_costs_4_bytes_per_parameter() -> None:
    model = build_model("mlp", (1, 8, 8), 10).double()
    record = encode_model(model)
    assert {a.dtype for a in record.values()} == {"float32"}
    params = count_parameters(model)
    header = record.count_bytes() - 4 * params
    assert 0 < header <= 200 * len(record)  # npy header per array, nothing else
    assert np.isclose(record.count_bytes(), 4 * params, rtol=0.05)


@pytest.mark.parametrize(
    "values",
    [
        np.arange(7, dtype=np.float32),
        np.arange(24, dtype=np.int64).reshape(2, 3, 4),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        np.array(3.5, dtype=np.float16),
        np.zeros((0, 5), dtype=np.uint8),
        np.array([True, False]),
    ],
)
def test_npy_view_equals_np_load_without_copying(values: np.ndarray) -> None:
    array = Array(values)
    view = npy_view(array)
    assert view.dtype == values.dtype and view.shape == values.shape
    assert np.array_equal(view, array.numpy())
    assert not view.flags.writeable  # a view of the payload, not a copy


def _npy_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=True)
    return buffer.getvalue()


def test_npy_view_refuses_pickles_and_short_payloads() -> None:
    pickled = Array(
        dtype="object", shape=(1,), stype="numpy.ndarray", data=_npy_bytes(np.array([{"x": 1}], dtype=object))
    )
    with pytest.raises(ValueError, match="pickles"):
        npy_view(pickled)
    whole = _npy_bytes(np.arange(100, dtype=np.float32))
    with pytest.raises(ValueError):
        npy_view(Array(dtype="float32", shape=(100,), stype="numpy.ndarray", data=whole[:-8]))
    with pytest.raises(ValueError, match=r"not a \.npy"):
        npy_view(Array(dtype="float32", shape=(100,), stype="numpy.ndarray", data=b"GARBAGE" + whole[7:]))
