"""Which channels a sub-model keeps: first-k (HeteroFL), rolling (FedRolex), L1 importance (AdaptCL)."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from fedsparse.prune import by_importance, channel_layout, first_k, kept_count, rolling


def _layout():  # type: ignore[no-untyped-def]
    return channel_layout(nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 2)))


def test_kept_count_is_the_ceiling_and_at_least_one() -> None:
    assert [kept_count(10, r) for r in (0.0, 0.3, 0.35, 0.9, 0.99)] == [10, 7, 7, 1, 1]
    assert kept_count(16, 0.5) == 8 and kept_count(16, 0.9) == 2
    with pytest.raises(ValueError):
        kept_count(10, 1.0)


def test_first_k_and_rolling_windows() -> None:
    layout = _layout()
    assert [k.tolist() for k in first_k(layout, 0.5)] == [[0, 1, 2, 3, 4], [0, 1]]
    assert [k.tolist() for k in rolling(layout, 0.5, offset=0)] == [[0, 1, 2, 3, 4], [0, 1]]
    assert [k.tolist() for k in rolling(layout, 0.5, offset=3)] == [[3, 4, 5, 6, 7], [0, 3]]
    assert [k.tolist() for k in rolling(layout, 0.5, offset=8)] == [[0, 1, 2, 8, 9], [0, 1]]
    # over C rounds every channel of a group is in the window equally often
    counts = np.zeros(10)
    for offset in range(10):
        counts[rolling(layout, 0.7, offset)[0]] += 1
    assert (counts == 3).all()


def test_importance_keeps_the_largest_l1_filters_in_index_order() -> None:
    layout = _layout()
    state = {
        "0.weight": np.array(
            [
                [1, 1, 1],
                [5, 0, 0],
                [0, 0, 0.5],
                [-4, -4, 0],
                [2, 0, 0],
                [0, 9, 0],
                [0, 0, 0],
                [1, 0, 0],
                [3, 3, 3],
                [0, 0, 0.1],
            ],
            np.float32,
        ),
        "2.weight": np.array([np.full(10, v) for v in (0.1, -3.0, 2.0, 0.5)], np.float32),
    }
    kept = by_importance(layout, state, 0.6)  # keeps 4 of 10 and 2 of 4
    assert kept[0].tolist() == [1, 3, 5, 8]  # L1: 9 (#8), 9 (#5), 8 (#3), 5 (#1)
    assert kept[1].tolist() == [1, 2]
