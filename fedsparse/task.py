"""The training task the server hands to a client with every message.

Clients are stateless between messages in Flower (a ClientApp object may be built per
message, in any process), so the message itself says what to train: the experiment's
data, model and local-training sections (:mod:`fedsparse.sections`) as they are, plus the
run seed, the federation size, whether clients use a GPU and the plugin modules the run
imports. It travels as one JSON string in the message's config record, validated on
arrival like any other input, after the plugins it names are imported (they may register
the dataset or model it names).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flwr.app import ConfigRecord
from pydantic import BaseModel, ConfigDict

from fedsparse import protocol
from fedsparse.data import (
    ClientData,
    ContinualData,
    FederatedData,
    TasksConfig,
    load_continual_data,
    load_federated_data,
)
from fedsparse.data.sources import DATASETS
from fedsparse.plugins import import_plugins
from fedsparse.sections import DataConfig, ModelConfig, TrainingConfig

if TYPE_CHECKING:
    import torch

    from fedsparse.config import ExperimentConfig

# Data an engine loaded once and handed to this process (ClientTask.use_data), by the
# task's data identity; a device's own data path bypasses it.
_SHARED_DATA: dict[str, FederatedData | ContinualData] = {}


class ClientTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig
    num_clients: int
    use_gpu: bool
    plugins: list[str] = []

    @classmethod
    def from_experiment(cls, cfg: ExperimentConfig) -> ClientTask:
        training = {name: getattr(cfg.federation, name) for name in TrainingConfig.model_fields}
        return cls(
            seed=cfg.seed,
            data=cfg.data,
            model=cfg.model,
            training=TrainingConfig(**training),
            num_clients=cfg.federation.num_clients,
            use_gpu=cfg.engine.client_resources.num_gpus > 0,
            plugins=cfg.plugins,
        )

    @property
    def tasks(self) -> TasksConfig | None:
        """The task streams (``data.tasks``), or None for a plain run."""
        return self.data.tasks

    def to_config(self) -> ConfigRecord:
        return ConfigRecord({protocol.TASK: self.model_dump_json()})

    @classmethod
    def from_config(cls, config: ConfigRecord) -> ClientTask:
        return cls.from_json(str(config[protocol.TASK]))

    @classmethod
    def from_json(cls, text: str) -> ClientTask:
        """The task ``model_dump_json`` wrote, validated after importing the plugins it
        names (they register the names it is checked against)."""
        raw = json.loads(text)
        import_plugins(raw.get("plugins", []) if isinstance(raw, dict) else [])
        return cls.model_validate(raw)

    def loaded_data(self, data_path: str | None = None) -> FederatedData | ContinualData:
        """This process's copy of the run's data: the task streams, else the partitions
        (loaded on first use, cached for every later job)."""
        return self.continual_data(data_path) if self.tasks is not None else self.federated_data(data_path)

    def use_data(self, data: FederatedData | ContinualData) -> None:
        """Serve ``data`` (what :meth:`loaded_data` gave in another process, e.g. read from
        Ray's object store without a copy) as this process's copy, instead of loading it."""
        _SHARED_DATA[self._data_identity()] = data

    def _data_identity(self) -> str:
        return self.model_dump_json(include={"seed", "data", "num_clients"})

    def _shared(self, data_path: str | None) -> FederatedData | ContinualData | None:
        return _SHARED_DATA.get(self._data_identity()) if data_path is None else None

    def federated_data(self, data_path: str | None = None) -> FederatedData:
        """``data_path`` lets a deployed device point at its own copy of the data."""
        shared = self._shared(data_path)
        if isinstance(shared, FederatedData):
            return shared
        data = self.data
        return load_federated_data(
            data.dataset,
            data_path or data.path,
            data.partition.model_dump_json(),
            self.num_clients,
            data.val_fraction,
            data.test_fraction,
            self.seed,
            data.server_samples,
            data.validation,
        )

    def client_data(self, client_id: int, data_path: str | None = None) -> ClientData:
        return self.federated_data(data_path).client(client_id)

    def continual_data(self, data_path: str | None = None) -> ContinualData:
        """The clients' task streams (``data.tasks``); only for continual runs."""
        if self.data.tasks is None:
            raise ValueError("this run has no task streams (data.tasks is not set)")
        shared = self._shared(data_path)
        if isinstance(shared, ContinualData):
            return shared
        return load_continual_data(
            self.data.dataset,
            data_path or self.data.path,
            self.data.tasks.model_dump_json(),
            self.num_clients,
            self.data.test_fraction,
            self.seed,
        )

    def build_model(self) -> torch.nn.Module:
        """The run's model, from the dataset's declared shapes (no data is loaded); with task
        streams, the multi-head net (one head per pool task)."""
        from fedsparse.models import build_model
        from fedsparse.models.multihead import build_multihead

        info = DATASETS.get(self.data.dataset).info
        name, options = self.model.name, self.model.options
        if self.data.tasks is not None:
            outputs = self.data.tasks.num_outputs(info.num_classes)
            return build_multihead(name, info.input_shape, outputs, self.data.tasks.pool, **options)
        return build_model(name, info.input_shape, info.num_classes, **options)

    def initial_model(self) -> torch.nn.Module:
        """The model every party starts from: built right after seeding with the run seed."""
        import torch

        torch.manual_seed(self.seed)
        return self.build_model()
