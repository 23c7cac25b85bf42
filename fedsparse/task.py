"""The training task the server hands to a client with every message.

Clients are stateless between messages in Flower (a ClientApp object may be built per
message, in any process), so the message itself says what to train: dataset and
partitioning, model, and local hyper-parameters. It travels as one JSON string in the
message's ConfigRecord, validated on arrival like any other input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from flwr.app import ConfigRecord, Message
from pydantic import BaseModel, ConfigDict

from fedsparse.data import (
    ClientData,
    ContinualData,
    FederatedData,
    PartitionConfig,
    TasksConfig,
    load_continual_data,
    load_federated_data,
)

if TYPE_CHECKING:
    import torch

    from fedsparse.config import ExperimentConfig

TASK_KEY = "task"
CONFIG_KEY = "config"


class ClientTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int
    dataset: str
    data_path: str | None
    partition: PartitionConfig
    tasks: TasksConfig | None
    num_clients: int
    val_fraction: float
    test_fraction: float
    server_samples: int
    model: str
    model_options: dict[str, Any]
    local_epochs: int
    batch_size: int
    lr: float
    optimizer: Literal["sgd", "adam"]
    momentum: float
    weight_decay: float
    use_gpu: bool

    @classmethod
    def from_experiment(cls, cfg: ExperimentConfig) -> ClientTask:
        fed = cfg.federation
        return cls(
            seed=cfg.seed,
            dataset=cfg.data.dataset,
            data_path=cfg.data.path,
            partition=cfg.data.partition,
            tasks=cfg.data.tasks,
            num_clients=fed.num_clients,
            val_fraction=cfg.data.val_fraction,
            test_fraction=cfg.data.test_fraction,
            server_samples=cfg.data.server_samples,
            model=cfg.model.name,
            model_options=cfg.model.options,
            local_epochs=fed.local_epochs,
            batch_size=fed.batch_size,
            lr=fed.lr,
            optimizer=fed.optimizer,
            momentum=fed.momentum,
            weight_decay=fed.weight_decay,
            use_gpu=cfg.engine.client_resources.num_gpus > 0,
        )

    def to_config(self) -> ConfigRecord:
        return ConfigRecord({TASK_KEY: self.model_dump_json()})

    @classmethod
    def from_message(cls, message: Message) -> ClientTask:
        return cls.model_validate_json(str(message.content[CONFIG_KEY][TASK_KEY]))

    def federated_data(self, data_path: str | None = None) -> FederatedData:
        """``data_path`` lets a deployed device point at its own copy of the data."""
        return load_federated_data(
            self.dataset,
            data_path or self.data_path,
            self.partition.model_dump_json(),
            self.num_clients,
            self.val_fraction,
            self.test_fraction,
            self.seed,
            self.server_samples,
        )

    def client_data(self, client_id: int, data_path: str | None = None) -> ClientData:
        return self.federated_data(data_path).client(client_id)

    def continual_data(self, data_path: str | None = None) -> ContinualData:
        """The clients' task streams (``data.tasks``); only for continual runs."""
        if self.tasks is None:
            raise ValueError("this run has no task streams (data.tasks is not set)")
        return load_continual_data(
            self.dataset,
            data_path or self.data_path,
            self.tasks.model_dump_json(),
            self.num_clients,
            self.test_fraction,
            self.seed,
        )

    def build_model(self) -> torch.nn.Module:
        """The run's model; with task streams, the multi-head net (one head per pool task)."""
        from fedsparse.models import build_model
        from fedsparse.models.multihead import build_multihead

        if self.tasks is not None:
            streams = self.continual_data()
            return build_multihead(
                self.model, streams.info.input_shape, streams.num_outputs, streams.num_heads, **self.model_options
            )
        info = self.federated_data().info
        return build_model(self.model, info.input_shape, info.num_classes, **self.model_options)

    def initial_model(self) -> torch.nn.Module:
        """The model every party starts from: built right after seeding with the run seed."""
        import torch

        torch.manual_seed(self.seed)
        return self.build_model()
