"""Split a training pool across clients with Flower Datasets' partitioners.

The partitioners work on Hugging Face ``Dataset`` objects; we hand them a two-column
table (label, row index) so any array source can be partitioned and the result is a list
of row indices per client. The table is shuffled with the run seed first, because
``IidPartitioner`` cuts contiguous shards.
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


def _partitioner(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    from flwr_datasets.partitioner import (
        DirichletPartitioner,
        IidPartitioner,
        PathologicalPartitioner,
        ShardPartitioner,
    )

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
        return PathologicalPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_classes_per_partition=cfg.classes_per_client,
            class_assignment_mode="first-deterministic",  # every class gets an owner
            seed=seed,
        )
    return ShardPartitioner(
        num_partitions=num_clients,
        partition_by="label",
        num_shards_per_partition=cfg.shards_per_client,
        seed=seed,
    )


def partition_indices(
    labels: np.ndarray, num_clients: int, cfg: PartitionConfig, seed: int
) -> list[np.ndarray]:
    """Row indices of ``labels`` owned by each client, reproducible from ``seed``."""
    from datasets import Dataset

    table = Dataset.from_dict(
        {"label": labels.tolist(), "row": np.arange(len(labels)).tolist()}
    ).shuffle(seed=seed)
    partitioner = _partitioner(cfg, num_clients, seed)
    partitioner.dataset = table
    return [
        np.sort(np.asarray(partitioner.load_partition(cid)["row"], dtype=np.int64))
        for cid in range(num_clients)
    ]
