"""Symmetric uniform per-channel quantizer (docs/methods.md §1).

s = max|w| / (2^(b-1) - 1) per output channel (dim 0; one scale for a 1-D tensor), and
Q_b(w) = s · clip(round(w / s), -2^(b-1), 2^(b-1) - 1). A channel of zeros gets s = 0 and
stays zero. Float formats round to that float type; float32 is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedsparse.quant.precision import Precision

CODE_DTYPE = torch.int32


def channel_scales(w: torch.Tensor, precision: Precision) -> torch.Tensor:
    """One scale per output channel (shape ``(channels,)``; ``(1,)`` for 1-D tensors)."""
    flat = w.detach().reshape(w.shape[0], -1) if w.dim() >= 2 else w.detach().reshape(1, -1)
    return flat.abs().amax(dim=1).float() / precision.qmax


def _broadcastable(scales: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if w.dim() >= 2:
        return scales.reshape(-1, *([1] * (w.dim() - 1)))
    return scales.reshape(())


def _safe(scales: torch.Tensor) -> torch.Tensor:
    return torch.where(scales > 0, scales, torch.ones_like(scales))


def quantize(w: torch.Tensor, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer codes, per-channel scales) of ``w`` at an integer precision."""
    scales = channel_scales(w, precision)
    step = _broadcastable(_safe(scales), w)
    codes = torch.clamp(torch.round(w.detach().float() / step), -precision.qmax - 1, precision.qmax)
    return codes.to(CODE_DTYPE), scales


def stochastic_quantize(
    w: torch.Tensor, precision: Precision, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unbiased codes: floor(w/s + u), u ~ U[0, 1), so E[s · code] = w (FedPAQ's quantizer)."""
    scales = channel_scales(w, precision)
    step = _broadcastable(_safe(scales), w)
    noise = torch.rand(w.shape, generator=generator, dtype=torch.float32)
    codes = torch.clamp(torch.floor(w.detach().float() / step + noise), -precision.qmax - 1, precision.qmax)
    return codes.to(CODE_DTYPE), scales


def dequantize(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return codes.float() * _broadcastable(scales.float(), codes)


def fake_quantize(w: torch.Tensor, precision: Precision) -> torch.Tensor:
    """Q_b(w) as a float tensor of ``w``'s shape (no gradient through the rounding)."""
    if precision.kind == "float":
        return w.detach().half().float() if precision.bits == 16 else w.detach().float()
    return dequantize(*quantize(w, precision))


def quantize_state(state: Mapping[str, torch.Tensor], precision: Precision) -> dict[str, torch.Tensor]:
    """Every floating tensor of a state dict through Q_b; other tensors unchanged."""
    return {name: fake_quantize(t, precision) if t.is_floating_point() else t for name, t in state.items()}
