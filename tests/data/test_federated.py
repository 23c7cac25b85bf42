from __future__ import annotations

import numpy as np

from fedsparse.data import PartitionConfig, load_federated_data


def test_client_split_is_disjoint_seeded_and_sized() -> None:
    data = load_federated_data("digits", None, PartitionConfig().model_dump_json(), 6, 0.25, 0.2, 7)
    a, b = data.client(2), data.client(2)
    assert np.array_equal(a.train.y, b.train.y) and np.array_equal(a.val.x, b.val.x)
    n = len(data.partitions[2])
    assert len(a.train) + len(a.val) == n and abs(len(a.val) - round(0.25 * n)) <= 1
    train_rows = {r.tobytes() for r in a.train.x}
    assert not any(r.tobytes() in train_rows for r in a.val.x)
    assert len(data.test) == 360  # 20% of 1797, the global server-side split
