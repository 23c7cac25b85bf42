from __future__ import annotations

import math

import numpy as np
import pytest

from fedsparse.prowd import compare_to_high, high_update, selective_mean

BASE = {"w": np.zeros(5, np.float32)}
HIGH = [
    ({"w": np.array([1.0, -1.0, 2.0, 0.0, 1.0], np.float32)}, 1.0),
    ({"w": np.array([3.0, -1.0, 0.0, 0.0, 1.0], np.float32)}, 3.0),
]
LOW = {"w": np.array([4.0, 5.0, -1.0, 7.0, 0.0], np.float32)}
DELTA_HIGH = np.array([2.5, -1.0, 0.5, 0.0, 1.0])  # the weighted mean high-precision update


def test_normalising_over_agreeing_clients_keeps_exactly_the_agreeing_low_bit_elements() -> None:
    out = selective_mean(BASE, HIGH, [(LOW, 2.0)], normalise="agreeing")
    # the low update agrees only on element 0 (5 has the wrong sign, -1 opposes 0.5,
    # 7 meets Δ_H = 0, 0 is no update)
    expected = DELTA_HIGH.copy()
    expected[0] = (1 * 1 + 3 * 3 + 2 * 4) / (1 + 3 + 2)
    assert np.allclose(out["w"], expected)


def test_by_default_a_disagreeing_update_counts_as_zero_over_all_clients() -> None:
    out = selective_mean(BASE, HIGH, [(LOW, 2.0)])
    expected = DELTA_HIGH * 4 / 6
    expected[0] = (1 * 1 + 3 * 3 + 2 * 4) / 6
    assert np.allclose(out["w"], expected)


def test_the_low_bit_update_is_measured_against_the_high_update() -> None:
    measured = compare_to_high(BASE, high_update(BASE, HIGH), LOW)
    high_norm = float(np.linalg.norm(DELTA_HIGH))
    assert measured.kept == pytest.approx(1 / 4)  # one of its four non-zero elements
    assert measured.size == pytest.approx(math.sqrt(16 + 25 + 1 + 49) / high_norm)
    assert measured.kept_size == pytest.approx(4 / high_norm)


def test_with_every_low_update_agreeing_it_is_the_weighted_mean() -> None:
    base = {"w": np.full(3, 1.0, np.float32)}
    high = [({"w": np.array([2.0, 0.0, 3.0], np.float32)}, 2.0)]
    low = [({"w": np.array([4.0, -1.0, 1.5], np.float32)}, 1.0)]
    for normalise in ("agreeing", "all"):
        out = selective_mean(base, high, low, normalise)  # type: ignore[arg-type]
        assert np.allclose(out["w"], (2 * high[0][0]["w"] + low[0][0]["w"]) / 3)
    assert compare_to_high(base, high_update(base, high), low[0][0]).kept == 1.0


def test_needs_a_high_precision_update() -> None:
    with pytest.raises(ValueError):
        selective_mean({"w": np.zeros(1)}, [], [({"w": np.ones(1)}, 1.0)])
