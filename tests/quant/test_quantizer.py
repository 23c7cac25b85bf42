from __future__ import annotations

import pytest
import torch

from fedsparse.quant import FLOAT32, Precision, channel_scales, dequantize, fake_quantize, quantize, stochastic_quantize
from fedsparse.quant.qat import quantization_aware, straight_through

INT_BITS = range(2, 17)


def _weights(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.mark.parametrize("bits", INT_BITS)
def test_error_is_at_most_half_a_step_per_channel(bits: int) -> None:
    p = Precision(bits, "int")
    w = _weights(6, 5, 3, 3)
    error = (fake_quantize(w, p) - w).abs().reshape(6, -1).amax(dim=1)
    float32_rounding = 4 * torch.finfo(torch.float32).eps * w.abs().reshape(6, -1).amax(dim=1)
    assert torch.all(error <= channel_scales(w, p) / 2 + float32_rounding)


@pytest.mark.parametrize("bits", INT_BITS)
def test_quantizing_twice_changes_nothing(bits: int) -> None:
    p = Precision(bits, "int")
    once = fake_quantize(_weights(7, 11), p)
    codes_once, scales_once = quantize(once, p)
    codes_twice, _ = quantize(dequantize(codes_once, scales_once), p)
    assert torch.equal(codes_once, codes_twice)
    torch.testing.assert_close(fake_quantize(once, p), once, rtol=1e-6, atol=0.0)


def test_float32_is_the_identity_and_float16_rounds_to_half() -> None:
    w = _weights(4, 9)
    assert torch.equal(fake_quantize(w, FLOAT32), w)
    assert torch.equal(fake_quantize(w, Precision(16, "float")), w.half().float())


def test_codes_stay_in_range_and_scales_are_per_output_channel() -> None:
    p = Precision(4, "int")
    w = _weights(3, 8)
    w[1] *= 100  # one loud channel must not coarsen the others
    codes, scales = quantize(w, p)
    assert scales.shape == (3,)
    assert codes.min() >= -8 and codes.max() <= 7
    assert torch.equal(codes.abs().amax(dim=1), torch.full((3,), 7, dtype=codes.dtype))
    bias_codes, bias_scales = quantize(_weights(5), p)
    assert bias_scales.shape == (1,) and bias_codes.shape == (5,)


def test_a_zero_channel_stays_zero() -> None:
    w = _weights(3, 4)
    w[2] = 0
    out = fake_quantize(w, Precision(3, "int"))
    assert torch.equal(out[2], torch.zeros(4)) and torch.isfinite(out).all()


def test_stochastic_rounding_is_unbiased() -> None:
    p = Precision(2, "int")
    w = torch.tensor([[1.0, 0.3, -0.6, 0.05]])
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([dequantize(*stochastic_quantize(w, p, generator)) for _ in range(20000)])
    torch.testing.assert_close(draws.mean(0), w, atol=0.02, rtol=0.0)
    assert not torch.equal(draws[0], draws[1]) or not torch.equal(draws[1], draws[2])


def test_straight_through_passes_the_gradient_unchanged() -> None:
    w = _weights(3, 4).requires_grad_()
    out = straight_through(w, Precision(2, "int"))
    assert torch.equal(out.detach(), fake_quantize(w, Precision(2, "int")))
    (out * torch.arange(12.0).reshape(3, 4)).sum().backward()
    assert torch.equal(w.grad, torch.arange(12.0).reshape(3, 4))


def test_quantization_aware_training_computes_with_quantized_weights_and_keeps_latents() -> None:
    model = torch.nn.Linear(6, 3)
    p = Precision(3, "int")
    x = _weights(5, 6, seed=1)
    with quantization_aware(model, p) as qat:
        expected = x @ fake_quantize(qat.parametrizations.weight.original, p).T
        expected += fake_quantize(qat.parametrizations.bias.original, p)
        torch.testing.assert_close(qat(x), expected)
        optimizer = torch.optim.SGD(qat.parameters(), lr=0.01)
        qat(x).sum().backward()
        optimizer.step()
        latent = qat.parametrizations.weight.original.detach().clone()
    assert set(dict(model.named_parameters())) == {"weight", "bias"}
    assert torch.equal(model.weight.detach(), latent)  # the latent, not its quantization
    assert not torch.equal(latent, fake_quantize(latent, p))


def test_unknown_formats_are_refused() -> None:
    with pytest.raises(ValueError):
        Precision(1, "int")
    with pytest.raises(ValueError):
        Precision(8, "float")
    assert Precision.from_bitwidth(16) == Precision(16, "float")
    assert Precision.from_bitwidth(32) == FLOAT32
    assert Precision.from_bitwidth(4) == Precision(4, "int")
