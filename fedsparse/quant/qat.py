"""Quantization-aware training with the straight-through estimator.

Each floating parameter gets a parametrization: the module computes with Q_b(latent)
while the optimiser updates the float latent copy; the gradient passes through the
rounding unchanged (STE). :func:`quantization_aware` attaches it for the duration of
local training and hands the latent weights back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize

from fedsparse.quant.precision import Precision
from fedsparse.quant.quantizer import fake_quantize


def straight_through(w: torch.Tensor, precision: Precision) -> torch.Tensor:
    """Q_b(w) in the forward pass, identity in the backward pass."""
    return w + (fake_quantize(w, precision) - w).detach()


class FakeQuantize(nn.Module):
    def __init__(self, precision: Precision) -> None:
        super().__init__()
        self.precision = precision

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return straight_through(latent, self.precision)


@contextmanager
def quantization_aware(model: nn.Module, precision: Precision) -> Iterator[nn.Module]:
    """Train ``model`` at ``precision``; on exit its parameters are the float latents.

    float32 needs no fake quantization and leaves the model untouched.
    """
    if precision.is_float32:
        yield model
        return
    targets = [
        (module, name)
        for module in model.modules()
        for name, param in list(module.named_parameters(recurse=False))
        if param.is_floating_point()
    ]
    for module, name in targets:
        parametrize.register_parametrization(module, name, FakeQuantize(precision))
    try:
        yield model
    finally:
        for module, name in targets:
            parametrize.remove_parametrizations(module, name, leave_parametrized=False)
