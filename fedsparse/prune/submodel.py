"""Cut a sub-model out of the global model, and scatter sub-model updates back.

The server works on NumPy arrays (the decoded wire payloads); a client only needs
:func:`resize_to`, which gives a freshly built full model the shapes of the sub-model it
received, so the same training code runs on any width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedsparse.prune.layout import ChannelLayout, ParamAxes
from fedsparse.prune.selection import Kept

State = dict[str, np.ndarray]


def _inputs(kept: np.ndarray, repeat: int) -> np.ndarray:
    """Input features of kept channels when each channel owns ``repeat`` consecutive ones."""
    return (kept[:, None] * repeat + np.arange(repeat)[None, :]).reshape(-1)


def _index(axes: ParamAxes, shape: tuple[int, ...], kept: Kept) -> tuple[np.ndarray, ...]:
    """Open-mesh index (``np.ix_``) of the kept block over the first one or two axes."""
    rows = kept[axes.out_group] if axes.out_group is not None else np.arange(shape[0])
    if len(shape) == 1:
        return (rows,)
    cols = _inputs(kept[axes.in_group], axes.in_repeat) if axes.in_group is not None else np.arange(shape[1])
    return np.ix_(rows, cols)


def extract(state: Mapping[str, np.ndarray], layout: ChannelLayout, kept: Kept) -> State:
    """The sub-model's tensors: every parameter sliced to the kept channels (copies)."""
    _check_kept(layout, kept)
    return {
        name: np.ascontiguousarray(values[_index(layout.params[name], values.shape, kept)])
        if name in layout.params
        else np.array(values)
        for name, values in state.items()
    }


def submodel_shapes(state: Mapping[str, np.ndarray], layout: ChannelLayout, kept: Kept) -> dict[str, tuple[int, ...]]:
    """Shapes :func:`extract` would produce, without copying anything."""
    shapes = {}
    for name, values in state.items():
        if name in layout.params:
            index = _index(layout.params[name], values.shape, kept)
            shapes[name] = tuple(i.size for i in index) + tuple(values.shape[len(index) :])
        else:
            shapes[name] = tuple(values.shape)
    return shapes


@dataclass(frozen=True)
class SubUpdate:
    """One client's trained sub-model, the channels it held, and its example weight."""

    state: Mapping[str, np.ndarray]
    kept: Kept
    weight: float


def scatter_mean(global_state: Mapping[str, np.ndarray], layout: ChannelLayout, updates: Sequence[SubUpdate]) -> State:
    """Element-wise weighted mean over the clients whose sub-model held each element.

    Elements no client held keep their global value (docs/methods.md §2 step 3). Shapes are
    checked against the kept sets: a sub-model that does not match is a ``ValueError``.
    """
    sums = {name: np.zeros(values.shape, dtype=np.float64) for name, values in global_state.items()}
    weights = {name: np.zeros(values.shape, dtype=np.float64) for name, values in global_state.items()}
    for update in updates:
        expected = submodel_shapes(global_state, layout, update.kept)
        for name, values in update.state.items():
            if tuple(values.shape) != expected[name]:
                raise ValueError(f"{name}: sub-model shape {tuple(values.shape)} != kept channels {expected[name]}")
            axes = layout.params.get(name)
            index = _index(axes, global_state[name].shape, update.kept) if axes is not None else (...,)
            sums[name][index] += update.weight * np.asarray(values, dtype=np.float64)
            weights[name][index] += update.weight
    return {
        name: np.where(weights[name] > 0, sums[name] / np.maximum(weights[name], 1e-300), values).astype(values.dtype)
        for name, values in global_state.items()
    }


def _check_kept(layout: ChannelLayout, kept: Kept) -> None:
    if len(kept) != len(layout.group_sizes):
        raise ValueError(f"{len(kept)} kept sets for {len(layout.group_sizes)} channel groups")
    for group, (indices, size) in enumerate(zip(kept, layout.group_sizes, strict=True)):
        if indices.size == 0 or indices.min() < 0 or indices.max() >= size or np.any(np.diff(indices) <= 0):
            raise ValueError(f"group {group}: kept channels must be sorted, unique and within 0..{size - 1}")


_SIZE_ATTRIBUTES = {
    nn.Conv2d: ("out_channels", "in_channels"),
    nn.Linear: ("out_features", "in_features"),
    nn.GroupNorm: ("num_channels", None),
}


def resize_to(model: nn.Module, shapes: Mapping[str, Sequence[int]]) -> nn.Module:
    """Give ``model``'s parameters the given shapes (uninitialised), in place.

    A client builds the full model from its task and receives a sub-model; after this the
    sub-model's arrays load with the usual strict ``load_state_dict``. Size attributes
    (``in_channels``…) follow the weights so the module describes itself truthfully.
    Parameters that already have the right shape are left alone.
    """
    for name, shape in shapes.items():
        module_name, _, param_name = name.rpartition(".")
        module = model.get_submodule(module_name)
        current = getattr(module, param_name, None)
        if not isinstance(current, nn.Parameter) or tuple(current.shape) == tuple(shape):
            continue
        setattr(module, param_name, nn.Parameter(torch.empty(tuple(shape), dtype=current.dtype)))
        out_attr, in_attr = _SIZE_ATTRIBUTES.get(type(module), (None, None))
        if param_name == "weight" and out_attr is not None:
            setattr(module, out_attr, int(shape[0]))
            if in_attr is not None:
                setattr(module, in_attr, int(shape[1]))
    return model
