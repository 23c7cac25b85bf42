"""Which output channels a sub-model keeps: by importance (AdaptCL), first-k (HeteroFL)
or a rolling window (FedRolex).

A selection is a tuple with one sorted index array per channel group of the
:class:`~fedsparse.prune.layout.ChannelLayout`; sorting keeps the sub-model's channels in
global order, so the same selection always yields the same sub-model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from fedsparse.prune.layout import ChannelLayout

Kept = tuple[np.ndarray, ...]


def kept_count(width: int, pruned_rate: float) -> int:
    """ceil((1 - r)·C) channels, at least one (docs/methods.md §2 step 1).

    The product is rounded to 9 decimals first so 0.7·10 (= 7.000000000000001) keeps 7.
    """
    if not 0.0 <= pruned_rate < 1.0:
        raise ValueError(f"pruned rate must be in [0, 1), got {pruned_rate}")
    return max(1, math.ceil(round((1.0 - pruned_rate) * width, 9)))


def first_k(layout: ChannelLayout, pruned_rate: float) -> Kept:
    """HeteroFL: the first ceil((1 - r)·C) channels of every hidden layer."""
    return tuple(np.arange(kept_count(size, pruned_rate)) for size in layout.group_sizes)


def rolling(layout: ChannelLayout, pruned_rate: float, offset: int) -> Kept:
    """FedRolex: a window of ceil((1 - r)·C) channels starting at ``offset`` (mod C)."""
    return tuple(np.sort((offset + np.arange(kept_count(size, pruned_rate))) % size) for size in layout.group_sizes)


def by_importance(layout: ChannelLayout, state: Mapping[str, np.ndarray], pruned_rate: float) -> Kept:
    """AdaptCL: the channels whose filters / units have the largest L1 norm.

    Ties go to the lower index (stable sort), so the choice is deterministic.
    """
    kept = []
    for layer, size in zip(layout.group_layers, layout.group_sizes, strict=True):
        weight = np.asarray(state[f"{layer}.weight"])
        norms = np.abs(weight.reshape(size, -1)).sum(axis=1)
        order = np.argsort(-norms, kind="stable")
        kept.append(np.sort(order[: kept_count(size, pruned_rate)]))
    return tuple(kept)
