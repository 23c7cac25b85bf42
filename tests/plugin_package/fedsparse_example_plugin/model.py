"""A tiny fully connected model."""

from __future__ import annotations

from torch import nn


def tiny_mlp(input_shape: tuple[int, int, int], num_classes: int, hidden: int = 32) -> nn.Module:
    """One hidden layer of ``hidden`` units (``model.options: {hidden: 64}``)."""
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
