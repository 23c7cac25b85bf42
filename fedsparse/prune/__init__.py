"""Structured pruning: channel wiring, channel selection, sub-model extraction and
scatter-back, and HeteroFL's activation scaler (docs/methods.md §2)."""

from fedsparse.prune.layout import ChannelLayout, ParamAxes, channel_layout
from fedsparse.prune.scaler import scaled_activations
from fedsparse.prune.selection import Kept, by_importance, first_k, kept_count, rolling
from fedsparse.prune.submodel import SubUpdate, extract, resize_to, scatter_mean, submodel_shapes

__all__ = [
    "ChannelLayout",
    "Kept",
    "ParamAxes",
    "SubUpdate",
    "by_importance",
    "channel_layout",
    "extract",
    "first_k",
    "kept_count",
    "resize_to",
    "rolling",
    "scaled_activations",
    "scatter_mean",
    "submodel_shapes",
]
