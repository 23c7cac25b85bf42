from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array

from fedsparse.models import build_model
from fedsparse.quant import FLOAT32, Precision, fake_quantize
from fedsparse.wire import BITPACKED, decode_float_state, encode_at, read_packed
from fedsparse.wire.quantized import encode_codes


def _model_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model("cnn", (1, 28, 28), 10).state_dict()


@pytest.mark.parametrize("bitwidth", [2, 3, 4, 8, 16, 32])
def test_decoding_gives_back_the_quantized_model(bitwidth: int) -> None:
    precision = Precision.from_bitwidth(bitwidth)
    state = _model_state()
    record = encode_at(state, precision)
    decoded = decode_float_state(record)
    for name, tensor in state.items():
        assert decoded[name].dtype == np.float32 and decoded[name].shape == tuple(tensor.shape)
        assert np.array_equal(decoded[name], fake_quantize(tensor, precision).numpy())


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_a_packed_tensor_costs_its_codes_plus_one_float_scale_per_channel(bits: int) -> None:
    state = _model_state()
    record = encode_at(state, Precision(bits, "int"))
    for name, tensor in state.items():
        array = record[name]
        channels = tensor.shape[0] if tensor.dim() >= 2 else 1
        assert array.stype == BITPACKED and array.dtype == f"int{bits}"
        assert len(array.data) == 4 * channels + -(-tensor.numel() * bits // 8)
    float32_bytes = encode_at(state, FLOAT32).count_bytes()
    assert record.count_bytes() < float32_bytes * bits / 32 * 1.02


def test_stochastic_encoding_differs_from_nearest_but_decodes_to_the_grid() -> None:
    state = {"w": torch.randn(4, 50, generator=torch.Generator().manual_seed(1))}
    p = Precision(3, "int")
    nearest = decode_float_state(encode_at(state, p))["w"]
    stochastic = decode_float_state(encode_at(state, p, generator=torch.Generator().manual_seed(2)))["w"]
    assert not np.array_equal(nearest, stochastic)
    scales = np.abs(state["w"].numpy()).max(axis=1, keepdims=True) / p.qmax
    assert np.allclose(stochastic / scales, np.round(stochastic / scales), atol=1e-4)


def _packed(**changes: object) -> Array:
    good = encode_codes(torch.tensor([[1, -2, 0], [3, 0, -4]]), torch.tensor([0.5, 0.25]), 4)
    fields = {"dtype": good.dtype, "shape": tuple(good.shape), "stype": good.stype, "data": good.data, **changes}
    return Array(**fields)  # type: ignore[arg-type]


def test_read_packed_round_trip_and_rejections() -> None:
    codes, scales, bits = read_packed(_packed())
    assert bits == 4 and codes.tolist() == [[1, -2, 0], [3, 0, -4]] and scales.tolist() == [0.5, 0.25]
    with pytest.raises(ValueError, match="bytes"):
        read_packed(_packed(data=_packed().data + b"\0"))
    with pytest.raises(ValueError, match="bytes"):
        read_packed(_packed(shape=(2, 4)))
    with pytest.raises(ValueError, match="scales"):
        read_packed(_packed(data=np.array([np.nan, 1], "<f4").tobytes() + _packed().data[8:]))
    with pytest.raises(ValueError, match="bit-packed"):
        read_packed(_packed(dtype="int99"))
