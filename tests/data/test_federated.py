from __future__ import annotations

import numpy as np
import pytest

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


def test_server_buffer_is_held_out_from_every_client() -> None:
    partition = PartitionConfig().model_dump_json()
    plain = load_federated_data("digits", None, partition, 4, 0.1, 0.2, 3)
    held = load_federated_data("digits", None, partition, 4, 0.1, 0.2, 3, 200)
    assert len(plain.server) == 0 and len(held.server) == 200
    assert len(held.pool) + len(held.server) == len(plain.pool)
    client_rows = {r.tobytes() for c in range(4) for r in held.pool.subset(held.partitions[c]).x}
    assert not any(r.tobytes() in client_rows for r in held.server.x)
    assert np.array_equal(held.test.y, plain.test.y)  # the test split does not move
    with pytest.raises(ValueError, match="server_samples"):
        load_federated_data("digits", None, partition, 4, 0.1, 0.2, 3, 1000)
