"""ResNet-18 with GroupNorm, for small images.

He et al. (2016)'s 18-layer residual net in its CIFAR form (a 3×3 stem, no max-pool),
with every BatchNorm replaced by GroupNorm (Hsieh et al., 2020): nothing depends on
batch statistics, so there are no running buffers for a federation to average. It is a
flat ``nn.Sequential`` (stem, eight residual blocks, pooling, classifier) ending in a
``Linear``, so task streams split it into a trunk and per-task heads like every registry
model. Structured pruning (HeteroFL, FedRolex, AdaptCL) and FedWeIT's per-layer
decomposition refuse it: a residual addition ties the channels of the layers it joins.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedsparse.models.registry import MODELS


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm plus a shortcut (1×1 conv + norm where the shape changes), then relu."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.GroupNorm(groups, out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


@MODELS.register("resnet18")
def build_resnet18(
    input_shape: tuple[int, int, int],
    num_classes: int,
    widths: Sequence[int] = (64, 128, 256, 512),
    groups: int = 2,
) -> nn.Module:
    """ResNet-18 with GroupNorm (``groups`` groups per norm): two residual blocks per
    entry of ``widths``, each stage after the first halving the feature map."""
    if any(width % groups for width in widths):
        raise ValueError(f"every width must be a multiple of groups={groups}, got {list(widths)}")
    channels = widths[0]
    layers: list[nn.Module] = [
        nn.Conv2d(input_shape[0], channels, 3, 1, 1, bias=False),
        nn.GroupNorm(groups, channels),
        nn.ReLU(),
    ]
    for stage, width in enumerate(widths):
        for block in range(2):
            layers.append(ResidualBlock(channels, width, 2 if stage > 0 and block == 0 else 1, groups))
            channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
