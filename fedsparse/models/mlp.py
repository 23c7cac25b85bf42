"""Fully connected baseline."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedsparse.models.registry import MODELS


@MODELS.register("mlp")
def build_mlp(
    input_shape: tuple[int, int, int],
    num_classes: int,
    hidden: Sequence[int] = (200, 200),
) -> nn.Module:
    """Layers are a flat ``nn.Sequential`` so later code can slice widths layer by layer."""
    c, h, w = input_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
