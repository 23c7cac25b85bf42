"""Small CNN for 28×28 (MNIST) and 8×8 (digits) inputs, and the VGG-style net.

Both are plain ``nn.Sequential`` stacks of conv / linear layers whose widths come from
arguments: a pruned or width-scaled sub-model is the same builder with smaller widths,
and wrappers (quantized or decomposed layers) can replace modules by index.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedsparse.models.registry import MODELS


def _conv_block(in_ch: int, out_ch: int, norm: str) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, padding=1)]
    if norm == "group":
        layers.append(nn.GroupNorm(1, out_ch))  # no running statistics to aggregate
    elif norm != "none":
        raise ValueError(f"norm must be 'none' or 'group', got {norm!r}")
    layers.append(nn.ReLU())
    return layers


def _classifier(features: int, hidden: int, num_classes: int) -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]


@MODELS.register("cnn")
def build_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: Sequence[int] = (16, 32),
    hidden: int = 64,
) -> nn.Module:
    """conv-relu-pool per entry of ``channels``, then one hidden linear layer.

    Pooling stops once the feature map is 2×2, so the same net fits 8×8 and 28×28.
    """
    c, size, _ = input_shape
    layers: list[nn.Module] = []
    for out_ch in channels:
        layers += _conv_block(c, out_ch, "none")
        if size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = out_ch
    return nn.Sequential(*layers, *_classifier(c * size * size, hidden, num_classes))


@MODELS.register("vgg")
def build_vgg(
    input_shape: tuple[int, int, int],
    num_classes: int,
    stages: Sequence[Sequence[int]] = ((32,), (64,), (128, 128)),
    hidden: int = 256,
    norm: str = "group",
) -> nn.Module:
    """VGG-style: stages of 3×3 convs, each stage closed by a 2×2 max-pool."""
    c, size, _ = input_shape
    layers: list[nn.Module] = []
    for stage in stages:
        for out_ch in stage:
            layers += _conv_block(c, out_ch, norm)
            c = out_ch
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    return nn.Sequential(*layers, *_classifier(c * size * size, hidden, num_classes))
