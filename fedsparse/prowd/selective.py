"""ProWD's selective aggregation (docs/methods.md §1, step 4), on plain arrays, and the
measurements that say what it keeps.

Δ_H is the example-weighted mean update of the high-precision clients. A low-precision
client's update Δ_l counts only where it points the same way as Δ_H (strictly the same
sign; a zero on either side is not agreement). Each element of the new model is the
global value plus the weighted sum of the contributions it received divided by every
client's weight (``normalise="all"``: a disagreeing low-bit client counts as a zero
update, which shrinks the step instead of renormalising it), or by the weight of the
contributions it actually received (``normalise="agreeing"``: an element no low-bit
client agreed on is exactly the high-precision FedAvg).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

State = Mapping[str, np.ndarray]
Normalise = Literal["agreeing", "all"]


@dataclass(frozen=True)
class LowBitUpdate:
    """How one low-bit client's update Δ_l relates to Δ_H."""

    kept: float  # share of Δ_l's non-zero elements that agree in sign with Δ_H
    size: float  # ‖Δ_l‖ / ‖Δ_H‖
    kept_size: float  # ‖Δ_l on the agreeing elements‖ / ‖Δ_H‖


def high_update(global_state: State, high: Sequence[tuple[State, float]]) -> dict[str, np.ndarray]:
    """Δ_H: the weighted mean of the high-precision states minus the global one (float64)."""
    if not high:
        raise ValueError("selective aggregation needs at least one high-precision update")
    total = sum(weight for _, weight in high)
    out: dict[str, np.ndarray] = {}
    for name, base in global_state.items():
        base64 = base.astype(np.float64)
        summed = np.zeros_like(base64)
        for state, weight in high:
            summed += weight * (state[name] - base64)
        out[name] = summed / total
    return out


def compare_to_high(global_state: State, delta_high: State, low_state: State) -> LowBitUpdate:
    """The :class:`LowBitUpdate` of ``low_state`` against Δ_H (``delta_high``)."""
    kept = offered = 0
    low_sq = kept_sq = high_sq = 0.0
    for name, base in global_state.items():
        update = low_state[name] - base.astype(np.float64)
        agree = update * delta_high[name] > 0
        kept += int(agree.sum())
        offered += int((update != 0).sum())
        low_sq += float((update**2).sum())
        kept_sq += float((update[agree] ** 2).sum())
        high_sq += float((delta_high[name] ** 2).sum())
    high_norm = math.sqrt(high_sq) or math.inf
    return LowBitUpdate(kept / max(offered, 1), math.sqrt(low_sq) / high_norm, math.sqrt(kept_sq) / high_norm)


def selective_mean(
    global_state: State,
    high: Sequence[tuple[State, float]],
    low: Sequence[tuple[State, float]],
    normalise: Normalise = "all",
) -> dict[str, np.ndarray]:
    """The new global model from (state, weight) pairs; needs at least one high-precision client."""
    delta_high = high_update(global_state, high)
    high_weight = sum(weight for _, weight in high)
    all_weight = high_weight + sum(weight for _, weight in low)
    out: dict[str, np.ndarray] = {}
    for name, base in global_state.items():
        base64 = base.astype(np.float64)
        numerator = high_weight * delta_high[name]
        denominator = np.full_like(base64, high_weight if normalise == "agreeing" else all_weight)
        for state, weight in low:
            update = state[name] - base64
            agree = update * delta_high[name] > 0
            numerator = numerator + np.where(agree, weight * update, 0.0)
            if normalise == "agreeing":
                denominator += np.where(agree, weight, 0.0)
        out[name] = (base64 + numerator / denominator).astype(base.dtype)
    return out
