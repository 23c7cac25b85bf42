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

    from fedsparse.data.partition import _partitioner

    cfg = PartitionConfig(method=method, alpha=0.3)
    table = Dataset.from_dict({"label": labels.tolist(), "row": np.arange(len(labels)).tolist()}).shuffle(seed=3)
    partitioner = _partitioner(cfg, 7, 3)
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
