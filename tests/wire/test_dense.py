from __future__ import annotations

import numpy as np
import torch

from fedsparse.models import build_model, count_parameters
from fedsparse.wire import decode_state, encode_model, load_into


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
