"""ProWD's selective aggregation (docs/methods.md §1, step 4), on plain arrays.

Δ_H is the example-weighted mean update of the high-precision clients. A low-precision
client's update Δ_l counts only where it points the same way as Δ_H (strictly the same
sign; a zero on either side is not agreement). Each element of the new model is the
global value plus the weighted mean of the contributions it actually received, so an
element that no low-bit client agreed on is exactly the high-precision FedAvg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

State = Mapping[str, np.ndarray]


def selective_mean(
    global_state: State,
    high: Sequence[tuple[State, float]],
    low: Sequence[tuple[State, float]],
) -> tuple[dict[str, np.ndarray], float]:
    """(new global model, share of the low-bit update elements kept) from (state, weight)
    pairs; needs at least one high-precision client."""
    if not high:
        raise ValueError("selective aggregation needs at least one high-precision update")
    out: dict[str, np.ndarray] = {}
    kept = offered = 0
    for name, base in global_state.items():
        base64 = base.astype(np.float64)
        numerator = np.zeros_like(base64)
        high_weight = 0.0
        for state, weight in high:
            numerator += weight * (state[name] - base64)
            high_weight += weight
        direction = numerator / high_weight
        denominator = np.full_like(base64, high_weight)
        for state, weight in low:
            update = state[name] - base64
            agree = update * direction > 0
            kept += int(agree.sum())
            offered += int((update != 0).sum())
            numerator += np.where(agree, weight * update, 0.0)
            denominator += np.where(agree, weight, 0.0)
        out[name] = (base64 + numerator / denominator).astype(base.dtype)
    return out, kept / max(offered, 1)
