"""Weighted averaging of client arrays, read in place.

Flower's ``aggregate_arrayrecords`` decodes every array with ``np.load``, whose header
parsing dominates for small models. This is the same arithmetic in the same order — each array times
its reply's weight share, accumulated in reply order, in the arrays' own dtype — over
zero-copy views, so results are bit-identical for float32 replies (a test compares
them). Low-precision replies are dequantized first (:mod:`fedsparse.wire.quantized`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict

from fedsparse.compat import records_of
from fedsparse.wire import decode_float_state

State = dict[str, np.ndarray]


def reply_weight(content: RecordDict, weight_key: str) -> float:
    value = next(iter(records_of(content, MetricRecord).values()))[weight_key]
    assert isinstance(value, (int, float)), "screened replies carry a numeric weight"
    return float(value)


def weighted_mean(states: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float]) -> State:
    total = sum(weights)
    sums: State = {}
    for state, weight in zip(states, weights, strict=True):
        share = weight / total
        for name, values in state.items():
            if name in sums:
                sums[name] += values * share
            else:
                sums[name] = values * share
    return sums


def to_record(state: Mapping[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in state.items()})


def decoded_arrays(content: RecordDict) -> State:
    """The one ArrayRecord of a reply as float arrays (dequantized where packed)."""
    state: State = {}
    for record in records_of(content, ArrayRecord).values():
        state.update(decode_float_state(record))
    return state


def weighted_mean_arrays(contents: Sequence[RecordDict], weight_key: str) -> ArrayRecord:
    weights = [reply_weight(content, weight_key) for content in contents]
    return to_record(weighted_mean([decoded_arrays(c) for c in contents], weights))
