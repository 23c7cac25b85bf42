"""Datasets, partitioning and per-client splits."""

from fedsparse.data.federated import ClientData, FederatedData, load_federated_data
from fedsparse.data.partition import PartitionConfig, partition_indices
from fedsparse.data.sources import DATASETS, ArrayDataset, DataError, DatasetInfo

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "ClientData",
    "DataError",
    "DatasetInfo",
    "FederatedData",
    "PartitionConfig",
    "load_federated_data",
    "partition_indices",
]
