"""Datasets, partitioning and per-client splits."""

from fedsparse.data.federated import ClientData, FederatedData, load_federated_data
from fedsparse.data.partition import PartitionConfig, partition_indices
from fedsparse.data.sources import DATASETS, ArrayDataset, DataError, DatasetInfo
from fedsparse.data.tasks import ContinualData, TaskData, TasksConfig, TaskSpec, load_continual_data

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "ClientData",
    "ContinualData",
    "DataError",
    "DatasetInfo",
    "FederatedData",
    "PartitionConfig",
    "TaskData",
    "TaskSpec",
    "TasksConfig",
    "load_continual_data",
    "load_federated_data",
    "partition_indices",
]
