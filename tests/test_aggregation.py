from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from fedsparse.aggregation import weighted_mean_arrays


def test_bit_identical_to_flowers_aggregate_arrayrecords() -> None:
    rng = np.random.default_rng(0)
    contents = [
        RecordDict(
            {
                "arrays": ArrayRecord(
                    {
                        "w": Array(rng.standard_normal((17, 5)).astype(np.float32)),
                        "b": Array(rng.standard_normal(5).astype(np.float32)),
                    }
                ),
                "metrics": MetricRecord({"num-examples": int(n)}),
            }
        )
        for n in rng.integers(1, 500, size=7)
    ]
    ours = weighted_mean_arrays(contents, "num-examples")
    flowers = aggregate_arrayrecords(contents, "num-examples")
    assert list(ours) == list(flowers)
    for name in flowers:
        assert ours[name].data == flowers[name].data  # the same bytes: same dtype, same values
