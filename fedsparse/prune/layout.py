"""Which tensor axes follow which layer's output channels, for structured pruning.

A structured sub-model keeps a subset of every hidden layer's output channels (conv
filters, linear units). Removing output channel c of layer l also removes input channel c
of the next weighted layer, of any normalisation in between, and, after a ``Flatten``, the
H·W input features that channel c spread into. This module reads that wiring off the
model once, so extraction, scatter-back and the activation scaler all agree on it.

Models are the registry's flat ``nn.Sequential`` stacks; any other module type is refused
with a message rather than pruned wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

# Modules that neither own parameters nor change the channel count.
_PASS_THROUGH = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)


@dataclass(frozen=True)
class ParamAxes:
    """How one parameter tensor is indexed by kept channels.

    ``out_group`` indexes axis 0 and ``in_group`` axis 1 (``None``: the axis is never
    pruned, e.g. the image channels or the classes). On a linear layer after ``Flatten``,
    each input channel c owns ``in_repeat`` consecutive features c·R … c·R+R-1.
    """

    out_group: int | None
    in_group: int | None = None
    in_repeat: int = 1


@dataclass(frozen=True)
class ChannelLayout:
    """The prunable channel groups of a model and how each parameter follows them.

    Group g is the output of the g-th hidden weighted layer (``group_layers[g]`` is its
    module name, ``group_sizes[g]`` its full width). The last weighted layer (the
    classifier) is not a group: it keeps every class.
    """

    group_sizes: tuple[int, ...]
    group_layers: tuple[str, ...]
    params: dict[str, ParamAxes]


def _width(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features  # type: ignore[return-value]


def _input_width(module: nn.Module) -> int:
    return module.in_channels if isinstance(module, nn.Conv2d) else module.in_features  # type: ignore[return-value]


def channel_layout(model: nn.Module) -> ChannelLayout:
    """Read the channel wiring of a flat ``nn.Sequential`` of conv / linear / norm layers.

    Raises ``ValueError`` naming the module that structured pruning cannot handle.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"structured pruning needs an nn.Sequential model, got {type(model).__name__}")
    children = list(model.named_children())
    for name, module in children:
        if not isinstance(module, (nn.Conv2d, nn.Linear, nn.GroupNorm, *_PASS_THROUGH)):
            raise ValueError(
                f"layer {name}: {type(module).__name__} is not supported by structured pruning, which shrinks one "
                "flat nn.Sequential of conv, linear, GroupNorm and parameter-free layers (a block with branches, "
                "such as a residual block, ties the channels of the layers it joins)"
            )
    weighted = [name for name, module in children if isinstance(module, (nn.Conv2d, nn.Linear))]
    if len(weighted) < 2:
        raise ValueError("structured pruning needs at least one hidden conv or linear layer")
    sizes: list[int] = []
    layers: list[str] = []
    params: dict[str, ParamAxes] = {}
    current: int | None = None  # group the running activation's channels belong to
    for name, module in children:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if isinstance(module, nn.Conv2d) and module.groups != 1:
                raise ValueError(f"layer {name}: grouped convolutions cannot be pruned by channel")
            repeat = 1
            if current is not None:
                incoming = sizes[current]
                if _input_width(module) % incoming:
                    raise ValueError(
                        f"layer {name}: {_input_width(module)} inputs do not split over {incoming} channels"
                    )
                repeat = _input_width(module) // incoming
            out_group = None if name == weighted[-1] else len(sizes)
            params[f"{name}.weight"] = ParamAxes(out_group, current, repeat)
            if module.bias is not None:
                params[f"{name}.bias"] = ParamAxes(out_group)
            if out_group is not None:
                sizes.append(_width(module))
                layers.append(name)
            current = out_group
        elif isinstance(module, nn.GroupNorm):
            if module.num_groups != 1:
                raise ValueError(f"layer {name}: GroupNorm with {module.num_groups} groups cannot shrink; use 1 group")
            if module.affine:
                params[f"{name}.weight"] = ParamAxes(current)
                params[f"{name}.bias"] = ParamAxes(current)
    return ChannelLayout(tuple(sizes), tuple(layers), params)
