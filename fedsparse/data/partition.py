"""Split a training pool across clients with Flower Datasets' partitioners.

The partitioners work on Hugging Face ``Dataset`` objects; we hand them a table of
label, row index and, for datasets with natural ids (a writer, a device), the id's
client group, so any array source can be partitioned and the result is a list of row
indices per client. The table is shuffled with the run seed first (exactly as
``Dataset.shuffle(seed)`` would), because ``IidPartitioner`` cuts contiguous shards.

``partition.method`` names an entry of :data:`PARTITIONERS`: a builder
``(config, num_clients, seed) → Partitioner``. Plugins add their own (entry point group
``fedsparse.partitioners``), reading their settings from ``partition.options``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedsparse.registry import Registry


class PartitionConfig(BaseModel):
    """How the training pool is divided among clients."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("iid", description="a registered partitioner (fedsparse list): iid, dirichlet, ...")
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration")
    min_partition_size: int = Field(10, ge=0, description="Dirichlet: resample below this")
    classes_per_client: int = Field(2, ge=1, description="pathological")
    shards_per_client: int = Field(2, ge=1, description="shard")
    samples_per_client: int = Field(64, ge=1, description="resample: rows each client draws")
    max_samples_per_client: int | None = Field(
        None, ge=1, description="keep a seeded random subset of at most this many samples per client"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="a plugin partitioner's own settings")

    @field_validator("method")
    @classmethod
    def _registered(cls, name: str) -> str:
        return PARTITIONERS.validate_name(name)


# (partition config, number of clients, seed) → a Flower Datasets partitioner over the
# table's "label" (and, for natural ids, "group") column
PartitionerBuilder = Callable[[PartitionConfig, int, int], Any]
PARTITIONERS: Registry[PartitionerBuilder] = Registry("partitioner", entry_point_group="fedsparse.partitioners")
GROUP = "group"  # the table column of a natural id's client


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


@PARTITIONERS.register("iid")
def iid(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """Equal shards of the seeded shuffle."""
    from flwr_datasets.partitioner import IidPartitioner

    return IidPartitioner(num_partitions=num_clients)


@PARTITIONERS.register("dirichlet")
def dirichlet(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """Each class spread over clients by Dirichlet(alpha) proportions."""
    from flwr_datasets.partitioner import DirichletPartitioner

    return DirichletPartitioner(
        num_partitions=num_clients,
        partition_by="label",
        alpha=cfg.alpha,
        min_partition_size=cfg.min_partition_size,
        seed=seed,
    )


@PARTITIONERS.register("pathological")
def pathological(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """``classes_per_client`` classes per client, every class owned by someone."""
    return _covering_pathological()(
        num_partitions=num_clients,
        partition_by="label",
        num_classes_per_partition=cfg.classes_per_client,
        class_assignment_mode="deterministic",
        seed=seed,
    )


@PARTITIONERS.register("shard")
def shard(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """``shards_per_client`` label-sorted shards per client (McMahan et al., 2017)."""
    from flwr_datasets.partitioner import ShardPartitioner

    return ShardPartitioner(
        num_partitions=num_clients,
        partition_by="label",
        num_shards_per_partition=cfg.shards_per_client,
        seed=seed,
    )


@PARTITIONERS.register("natural_id")
def natural_id(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """By the dataset's natural id (FEMNIST's writer): every id's samples on one client."""
    from flwr_datasets.partitioner import NaturalIdPartitioner

    return NaturalIdPartitioner(partition_by=GROUP)


@PARTITIONERS.register("resample")
def resample(cfg: PartitionConfig, num_clients: int, seed: int):  # type: ignore[no-untyped-def]
    """Each client ``samples_per_client`` distinct rows drawn at random, independently of
    the others: clients overlap, so one pool serves any number of clients (100,000 from
    MNIST's 60,000, for cross-device scale)."""
    from flwr_datasets.partitioner import Partitioner

    class ResamplePartitioner(Partitioner):
        def __init__(self) -> None:
            super().__init__()
            self._partition_id_to_indices: dict[int, np.ndarray] = {}

        @property
        def num_partitions(self) -> int:
            return num_clients

        def load_partition(self, partition_id: int):  # type: ignore[no-untyped-def]
            if not self._partition_id_to_indices:
                size, rng = len(self.dataset), np.random.default_rng([seed, 0x5A3])
                draw = min(cfg.samples_per_client, size)
                for cid in range(num_clients):
                    self._partition_id_to_indices[cid] = np.sort(rng.choice(size, size=draw, replace=False))
            return self.dataset.select(self._partition_id_to_indices[partition_id])

    return ResamplePartitioner()


def client_of_id(ids: np.ndarray, num_clients: int, seed: int) -> np.ndarray:
    """The client group each sample's natural id goes to: with as many ids as clients, one
    id each; with more, the ids are shuffled with the seed and dealt into ``num_clients``
    groups of nearly equal count, so a client holds whole ids."""
    distinct, inverse = np.unique(ids, return_inverse=True)
    if len(distinct) < num_clients:
        raise ValueError(f"partition.method natural_id: {len(distinct)} distinct ids for {num_clients} clients")
    order = (
        np.arange(len(distinct))
        if len(distinct) == num_clients
        else np.random.default_rng(seed).permutation(len(distinct))
    )
    client = np.empty(len(distinct), dtype=np.int64)
    for index, members in enumerate(np.array_split(order, num_clients)):
        client[members] = index
    return client[inverse]


def _rows_per_partition(partitioner, num_clients: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Each partition's pool rows (the table's ``row`` column).

    ``load_partition`` builds a Dataset per call (a cost that grows with the number of
    clients), so for Flower's partitioners the positions are read where they keep them:
    ``IidPartitioner`` cuts contiguous shards of sizes ``np.array_split``'s; the others
    compute a ``_partition_id_to_indices`` map on first use, into ``partitioner.dataset``
    as it stands afterwards (ShardPartitioner re-sorts it). Tests compare both ways. Any
    other partitioner (a plugin's) is asked partition by partition.
    """
    from flwr_datasets.partitioner import IidPartitioner

    size = len(partitioner.dataset)
    if isinstance(partitioner, IidPartitioner):
        positions = np.array_split(np.arange(size), num_clients)
    elif hasattr(partitioner, "_partition_id_to_indices"):
        partitioner.load_partition(0)  # computes the whole assignment
        mapping = partitioner._partition_id_to_indices
        positions = [np.asarray(mapping[cid], dtype=np.int64) for cid in range(num_clients)]
    else:
        return [np.asarray(partitioner.load_partition(cid)["row"], dtype=np.int64) for cid in range(num_clients)]
    rows = np.asarray(partitioner.dataset["row"], dtype=np.int64)  # after any re-sorting (shard)
    return [rows[where] for where in positions]


def _capped(rows: np.ndarray, cap: int | None, seed: int, client_id: int) -> np.ndarray:
    if cap is None or len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng([seed, client_id]).choice(rows, size=cap, replace=False))


def partition_indices(
    labels: np.ndarray, num_clients: int, cfg: PartitionConfig, seed: int, ids: np.ndarray | None = None
) -> list[np.ndarray]:
    """Row indices of ``labels`` owned by each client, reproducible from ``seed``;
    ``ids``: each row's natural id (``natural_id`` needs them)."""
    from datasets import Dataset

    # ``Dataset.shuffle(seed)``'s own permutation, applied up front: a shuffled Dataset
    # reads columns through an index map, row by row
    order = np.random.default_rng(seed).permutation(len(labels))
    columns = {"label": labels[order], "row": order}
    if cfg.method == "natural_id":
        if ids is None:
            raise ValueError("partition.method natural_id: this dataset has no natural ids (data.hub.id_column)")
        columns[GROUP] = client_of_id(ids, num_clients, seed)[order]
    table = Dataset.from_dict(columns)
    partitioner = PARTITIONERS.get(cfg.method)(cfg, num_clients, seed)
    partitioner.dataset = table
    return [
        _capped(np.sort(rows), cfg.max_samples_per_client, seed, cid)
        for cid, rows in enumerate(_rows_per_partition(partitioner, num_clients))
    ]
