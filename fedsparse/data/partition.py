"""Split a training pool across clients with Flower Datasets' partitioners.

The partitioners work on Hugging Face ``Dataset`` objects; we hand them a two-column
table (label, row index) so any array source can be partitioned and the result is a list
of row indices per client. The table is shuffled with the run seed first (exactly as
``Dataset.shuffle(seed)`` would), because ``IidPartitioner`` cuts contiguous shards.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class PartitionConfig(BaseModel):
    """How the training pool is divided among clients."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["iid", "dirichlet", "pathological", "shard"] = "iid"
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration")
    min_partition_size: int = Field(10, ge=0, description="Dirichlet: resample below this")
    classes_per_client: int = Field(2, ge=1, description="pathological")
    shards_per_client: int = Field(2, ge=1, description="shard")
    max_samples_per_client: int | None = Field(
        None, ge=1, description="keep a seeded random subset of at most this many samples per client"
    )


def _covering_pathological():  # type: ignore[no-untyped-def]
    """Flower's PathologicalPartitioner with a class assignment that uses every class.

    Its own modes can leave classes unowned (8 clients × 2 classes of 10 may skip one);
    here client i takes classes ``i·k … i·k+k-1`` (mod C) of a seeded permutation of the
    labels, which covers all C classes whenever clients × k >= C.
    """
    from flwr_datasets.partitioner import PathologicalPartitioner

    class CoveringPathologicalPartitioner(PathologicalPartitioner):
        def _determine_partition_id_to_unique_labels(self) -> None:
            labels = sorted(self.dataset.unique(self._partition_by))
            if self._num_classes_per_partition > len(labels):
                raise ValueError(
                    f"{self._num_classes_per_partition} classes per client, but the dataset has only {len(labels)}"
                )
            order = [labels[i] for i in self._rng.permutation(len(labels))]
            k = self._num_classes_per_partition
            for partition_id in range(self._num_partitions):
                self._partition_id_to_unique_labels[partition_id] = [
                    order[(partition_id * k + j) % len(order)] for j in range(k)
                ]
            self._unique_labels = labels

    return CoveringPathologicalPartitioner


def _partitioner(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner, ShardPartitioner

    if cfg.method == "iid":
        return IidPartitioner(num_partitions=num_clients)
    if cfg.method == "dirichlet":
        return DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=cfg.alpha,
            min_partition_size=cfg.min_partition_size,
            seed=seed,
        )
    if cfg.method == "pathological":
        return _covering_pathological()(
            num_partitions=num_clients,
            partition_by="label",
            num_classes_per_partition=cfg.classes_per_client,
            class_assignment_mode="deterministic",
            seed=seed,
        )
    return ShardPartitioner(
        num_partitions=num_clients,
        partition_by="label",
        num_shards_per_partition=cfg.shards_per_client,
        seed=seed,
    )


def _positions_per_partition(partitioner, size: int, num_clients: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Each partition's positions in the partitioned table.

    ``load_partition`` builds a Dataset per call (a cost that grows with the number of
    clients), so the positions are read where the partitioners keep them: ``IidPartitioner``
    cuts contiguous shards of sizes ``np.array_split``'s; the others compute a
    ``_partition_id_to_indices`` map on first use, into ``partitioner.dataset`` as it
    stands afterwards (ShardPartitioner re-sorts it). Tests compare both ways.
    """
    from flwr_datasets.partitioner import IidPartitioner

    if isinstance(partitioner, IidPartitioner):
        return np.array_split(np.arange(size), num_clients)
    partitioner.load_partition(0)  # computes the whole assignment
    mapping = partitioner._partition_id_to_indices
    return [np.asarray(mapping[cid], dtype=np.int64) for cid in range(num_clients)]


def _capped(rows: np.ndarray, cap: int | None, seed: int, client_id: int) -> np.ndarray:
    if cap is None or len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng([seed, client_id]).choice(rows, size=cap, replace=False))


def partition_indices(labels: np.ndarray, num_clients: int, cfg: PartitionConfig, seed: int) -> list[np.ndarray]:
    """Row indices of ``labels`` owned by each client, reproducible from ``seed``."""
    from datasets import Dataset

    # ``Dataset.shuffle(seed)``'s own permutation, applied up front: a shuffled Dataset
    # reads columns through an index map, row by row
    order = np.random.default_rng(seed).permutation(len(labels))
    table = Dataset.from_dict({"label": labels[order], "row": order})
    partitioner = _partitioner(cfg, num_clients, seed)
    partitioner.dataset = table
    positions = _positions_per_partition(partitioner, len(table), num_clients)
    rows = np.asarray(partitioner.dataset["row"], dtype=np.int64)  # after any re-sorting (shard)
    return [_capped(np.sort(rows[where]), cfg.max_samples_per_client, seed, cid) for cid, where in enumerate(positions)]
