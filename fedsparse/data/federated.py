"""The federated view of a dataset: one partition per client, each with a local
train/validation split, and the global test split for server-side evaluation.

Loading and partitioning run once per process (cached), because a simulation engine
calls the ClientApp once per message and must not re-read MNIST each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedsparse.data.partition import PartitionConfig, partition_indices
from fedsparse.data.sources import DATASETS, ArrayDataset, DatasetInfo


@dataclass(frozen=True)
class ClientData:
    train: ArrayDataset
    val: ArrayDataset


@dataclass(frozen=True)
class FederatedData:
    info: DatasetInfo
    pool: ArrayDataset  # the training pool the partitions index into
    test: ArrayDataset
    partitions: tuple[np.ndarray, ...]
    val_fraction: float
    seed: int

    def client(self, client_id: int) -> ClientData:
        """Client ``client_id``'s own train/validation split (seeded per client)."""
        rows = self.partitions[client_id]
        rng = np.random.default_rng([self.seed, client_id])
        rows = rows[rng.permutation(len(rows))]
        n_val = int(round(len(rows) * self.val_fraction))
        if len(rows) > 1:
            n_val = min(max(n_val, 1 if self.val_fraction > 0 else 0), len(rows) - 1)
        return ClientData(
            train=self.pool.subset(np.sort(rows[n_val:])),
            val=self.pool.subset(np.sort(rows[:n_val])),
        )


@lru_cache(maxsize=4)
def load_federated_data(
    dataset: str,
    path: str | None,
    partition_json: str,
    num_clients: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> FederatedData:
    """Load, split and partition once per process; arguments are hashable for the cache."""
    source = DATASETS.get(dataset)
    splits = source.load(Path(path) if path else None, seed, test_fraction)  # type: ignore[operator]
    partition = PartitionConfig.model_validate_json(partition_json)
    parts = partition_indices(splits.train.y, num_clients, partition, seed)
    return FederatedData(
        info=source.info,
        pool=splits.train,
        test=splits.test,
        partitions=tuple(parts),
        val_fraction=val_fraction,
        seed=seed,
    )
