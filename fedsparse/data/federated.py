"""The federated view of a dataset: one partition per client, each with a local
train/validation split, the global test split for server-side evaluation and, when
asked for, a server-side validation split carved out of the training data.

Loading and partitioning run once per process (cached), because a simulation engine
calls the ClientApp once per message and must not re-read MNIST each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedsparse import startup
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
    server: ArrayDataset  # held out from every client (empty unless data.server_samples)
    validation: ArrayDataset  # held out from every client for model selection (empty unless data.validation)
    partitions: tuple[np.ndarray, ...]
    val_fraction: float
    seed: int

    def client(self, client_id: int) -> ClientData:
        """Client ``client_id``'s own train/validation split (seeded per client)."""
        rows = self.partitions[client_id]
        rng = np.random.default_rng([self.seed, client_id])
        rows = rows[rng.permutation(len(rows))]
        n_val = self._validation_count(len(rows))
        return ClientData(
            train=self.pool.subset(np.sort(rows[n_val:])),
            val=self.pool.subset(np.sort(rows[:n_val])),
        )

    def train_size(self, client_id: int) -> int:
        """How many samples client ``client_id`` trains on, without building its split."""
        rows = len(self.partitions[client_id])
        return rows - self._validation_count(rows)

    def _validation_count(self, rows: int) -> int:
        n_val = round(rows * self.val_fraction)
        if rows > 1:
            n_val = min(max(n_val, 1 if self.val_fraction > 0 else 0), rows - 1)
        return n_val


def stratified_hold_out(train: ArrayDataset, fraction: float, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """Split a seeded, label-stratified ``fraction`` of ``train`` off as a validation set:
    (the rest, the validation set), each in the pool's order.

    Each label gives ``round(fraction × its count)`` samples (at least one where it has
    two or more), so the validation set has the pool's label mix. With ``fraction`` = 0
    the pool is returned as is, so partitions stay exactly those of a config without one.
    """
    if fraction == 0:
        return train, train.subset(np.arange(0))
    rng = np.random.default_rng([seed, 0x7A1])
    held: list[np.ndarray] = []
    for label in np.unique(train.y):
        rows = np.flatnonzero(train.y == label)
        count = min(max(round(fraction * len(rows)), 1), len(rows) - 1) if len(rows) > 1 else 0
        held.append(rng.choice(rows, size=count, replace=False))
    chosen = np.sort(np.concatenate(held))
    keep = np.ones(len(train), dtype=bool)
    keep[chosen] = False
    return train.subset(np.flatnonzero(keep)), train.subset(chosen)


def _hold_out(train: ArrayDataset, count: int, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``count`` seeded random samples off the training pool for the server.

    With ``count`` = 0 the pool is returned as is, so partitions stay exactly those of a
    config without a server buffer.
    """
    if count == 0:
        return train, train.subset(np.arange(0))
    if count > len(train) // 2:
        raise ValueError(f"data.server_samples: {count} is more than half the {len(train)} training samples")
    order = np.random.default_rng([seed, 0x5E5]).permutation(len(train))
    return train.subset(np.sort(order[count:])), train.subset(np.sort(order[:count]))


@lru_cache(maxsize=4)
def load_federated_data(
    dataset: str,
    path: str | None,
    partition_json: str,
    num_clients: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    server_samples: int = 0,
    validation: float = 0.0,
) -> FederatedData:
    """Load, split and partition once per process; arguments are hashable for the cache.
    The validation set comes off the training data first, the server's samples next,
    and the clients partition what is left; the test split is never touched."""
    source = DATASETS.get(dataset)
    splits = source.load(Path(path) if path else None, seed, test_fraction)
    startup.step(f"partitioning it among {num_clients} clients")
    train, validation_set = stratified_hold_out(splits.train, validation, seed)
    pool, server = _hold_out(train, server_samples, seed)
    partition = PartitionConfig.model_validate_json(partition_json)
    parts = partition_indices(pool.y, num_clients, partition, seed, pool.ids)
    return FederatedData(
        info=source.info,
        pool=pool,
        test=splits.test,
        server=server,
        validation=validation_set,
        partitions=tuple(parts),
        val_fraction=val_fraction,
        seed=seed,
    )
