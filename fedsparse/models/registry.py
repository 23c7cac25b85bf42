"""Model registry: config name → builder(input_shape, num_classes, **options)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from fedsparse.registry import Registry

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model", entry_point_group="fedsparse.models")


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options: Any) -> nn.Module:
    """Build a registered model; ``options`` are the builder's keyword arguments."""
    return MODELS.get(name)(input_shape=input_shape, num_classes=num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
