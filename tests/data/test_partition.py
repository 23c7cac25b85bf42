from __future__ import annotations

import numpy as np
import pytest

from fedsparse.data import DATASETS, PartitionConfig, partition_indices


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return DATASETS.get("digits").load(None, 0, 0.2).train.y


@pytest.mark.parametrize("method", ["iid", "dirichlet", "pathological", "shard"])
def test_partitions_are_disjoint_and_reproducible(labels: np.ndarray, method: str) -> None:
    cfg = PartitionConfig(method=method, alpha=0.3)
    parts = partition_indices(labels, 8, cfg, seed=3)
    rows = np.concatenate(parts)
    assert len(parts) == 8 and all(len(p) > 0 for p in parts)
    assert len(np.unique(rows)) == len(rows)  # no row owned twice
    again = partition_indices(labels, 8, cfg, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=False))
    other = partition_indices(labels, 8, cfg, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=False))


def test_iid_uses_every_row_and_mixes_labels(labels: np.ndarray) -> None:
    parts = partition_indices(labels, 5, PartitionConfig(method="iid"), seed=0)
    assert sum(len(p) for p in parts) == len(labels)
    assert all(len(np.unique(labels[p])) == 10 for p in parts)


def test_pathological_gives_k_classes_and_uses_all(labels: np.ndarray) -> None:
    parts = partition_indices(labels, 8, PartitionConfig(method="pathological", classes_per_client=2), seed=0)
    assert all(len(np.unique(labels[p])) == 2 for p in parts)
    assert set(np.concatenate([np.unique(labels[p]) for p in parts])) == set(range(10))


def test_dirichlet_skews_labels(labels: np.ndarray) -> None:
    iid = partition_indices(labels, 10, PartitionConfig(method="iid"), seed=0)
    skew = partition_indices(labels, 10, PartitionConfig(method="dirichlet", alpha=0.1), seed=0)

    def mean_max_share(parts: list[np.ndarray]) -> float:
        return float(np.mean([np.bincount(labels[p], minlength=10).max() / len(p) for p in parts]))

    assert mean_max_share(skew) > 2 * mean_max_share(iid)


@pytest.mark.parametrize("method", ["iid", "dirichlet", "pathological", "shard"])
def test_fast_positions_equal_flowers_load_partition(labels: np.ndarray, method: str) -> None:
    """The shortcut past ``load_partition`` must give exactly Flower's partitions."""
    from datasets import Dataset

    from fedsparse.data.partition import PARTITIONERS

    cfg = PartitionConfig(method=method, alpha=0.3)
    table = Dataset.from_dict({"label": labels.tolist(), "row": np.arange(len(labels)).tolist()}).shuffle(seed=3)
    partitioner = PARTITIONERS.get(method)(cfg, 7, 3)
    partitioner.dataset = table
    expected = [np.sort(np.asarray(partitioner.load_partition(cid)["row"])) for cid in range(7)]
    assert all(np.array_equal(a, b) for a, b in zip(partition_indices(labels, 7, cfg, seed=3), expected, strict=False))


def test_max_samples_per_client_keeps_a_seeded_subset(labels: np.ndarray) -> None:
    full = partition_indices(labels, 4, PartitionConfig(), seed=0)
    capped = partition_indices(labels, 4, PartitionConfig(max_samples_per_client=50), seed=0)
    assert [len(p) for p in capped] == [50] * 4
    assert all(np.isin(c, f).all() for c, f in zip(capped, full, strict=False))
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            capped, partition_indices(labels, 4, PartitionConfig(max_samples_per_client=50), seed=0), strict=False
        )
    )
    roomy = partition_indices(labels, 4, PartitionConfig(max_samples_per_client=10_000), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(roomy, full, strict=False))


def _writers(labels: np.ndarray, count: int) -> np.ndarray:
    return np.array([f"writer-{row % count:02d}" for row in range(len(labels))])


@pytest.mark.parametrize("writers", [6, 20])
def test_natural_ids_keep_each_id_on_one_client(labels: np.ndarray, writers: int) -> None:
    ids = _writers(labels, writers)
    cfg = PartitionConfig(method="natural_id")
    parts = partition_indices(labels, 6, cfg, seed=0, ids=ids)
    owned = [set(ids[p]) for p in parts]
    assert sum(len(p) for p in parts) == len(labels)
    assert all(not (a & b) for i, a in enumerate(owned) for b in owned[i + 1 :])  # no id on two clients
    assert sorted(len(o) for o in owned) == ([1] * 6 if writers == 6 else [3, 3, 3, 3, 4, 4])
    again = partition_indices(labels, 6, cfg, seed=0, ids=ids)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_natural_ids_need_ids_and_enough_of_them(labels: np.ndarray) -> None:
    cfg = PartitionConfig(method="natural_id")
    with pytest.raises(ValueError, match="no natural ids"):
        partition_indices(labels, 4, cfg, seed=0)
    with pytest.raises(ValueError, match="3 distinct ids for 4 clients"):
        partition_indices(labels, 4, cfg, seed=0, ids=_writers(labels, 3))


def test_an_unknown_method_names_the_registered_ones() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"must be one of .*'natural_id'"):
        PartitionConfig(method="by_hand")


def test_resample_serves_more_clients_than_rows_each_its_own_distinct_draw(labels: np.ndarray) -> None:
    cfg = PartitionConfig(method="resample", samples_per_client=20)
    clients = 3 * len(labels)
    parts = partition_indices(labels, clients, cfg, seed=0)
    assert len(parts) == clients
    assert all(len(p) == 20 and len(np.unique(p)) == 20 and p.max() < len(labels) for p in parts)
    assert len(np.unique(np.concatenate(parts))) > 0.9 * len(labels)  # draws overlap and cover the pool
    assert len({tuple(p) for p in parts}) == clients
    again = partition_indices(labels, clients, cfg, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not np.array_equal(parts[0], partition_indices(labels, clients, cfg, seed=1)[0])
