from __future__ import annotations

import numpy as np
import pytest

from fedsparse.prowd import selective_mean


def test_keeps_exactly_the_low_bit_elements_that_agree_with_the_high_update() -> None:
    base = {"w": np.zeros(5, np.float32)}
    high = [
        ({"w": np.array([1.0, -1.0, 2.0, 0.0, 1.0], np.float32)}, 1.0),
        ({"w": np.array([3.0, -1.0, 0.0, 0.0, 1.0], np.float32)}, 3.0),
    ]
    low = {"w": np.array([4.0, 5.0, -1.0, 7.0, 0.0], np.float32)}
    out, kept = selective_mean(base, high, [(low, 2.0)])
    # Δ_H = [2.5, -1, 0.5, 0, 1]: the low update agrees only on element 0
    # (5 has the wrong sign, -1 opposes 0.5, 7 meets Δ_H = 0, 0 is no update)
    high_only = np.array([2.5, -1.0, 0.5, 0.0, 1.0])
    expected = high_only.copy()
    expected[0] = (1 * 1 + 3 * 3 + 2 * 4) / (1 + 3 + 2)
    assert np.allclose(out["w"], expected)
    assert kept == pytest.approx(1 / 4)  # one of its four non-zero elements


def test_with_every_low_update_agreeing_it_is_the_weighted_mean() -> None:
    base = {"w": np.full(3, 1.0, np.float32)}
    high = [({"w": np.array([2.0, 0.0, 3.0], np.float32)}, 2.0)]
    low = [({"w": np.array([4.0, -1.0, 1.5], np.float32)}, 1.0)]
    out, kept = selective_mean(base, high, low)
    assert np.allclose(out["w"], (2 * high[0][0]["w"] + low[0][0]["w"]) / 3)
    assert kept == 1.0


def test_needs_a_high_precision_update() -> None:
    with pytest.raises(ValueError):
        selective_mean({"w": np.zeros(1)}, [], [({"w": np.ones(1)}, 1.0)])
