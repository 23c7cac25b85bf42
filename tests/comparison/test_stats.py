"""Welch's t-test as the results pages use it, against values computed by hand."""

from __future__ import annotations

import math
import statistics

import pytest

from fedsparse.comparison.stats import welch_p


def test_welch_p_matches_the_textbook_statistic() -> None:
    a, b = [0.91, 0.93, 0.92, 0.95, 0.90], [0.85, 0.88, 0.86, 0.90, 0.84]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    from scipy.stats import t as student

    assert welch_p(a, b) == pytest.approx(2 * student.sf(abs(t), dof))
    assert welch_p(a, b) < 0.01 < welch_p(a, [0.90, 0.95, 0.89, 0.94, 0.93])  # type: ignore[operator]


def test_too_few_or_constant_values_give_no_p() -> None:
    assert welch_p([0.9], [0.8, 0.7]) is None
    assert welch_p([0.5, 0.5], [0.5, 0.5]) is None
