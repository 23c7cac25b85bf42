"""The contract of a client learner, and the registry the ClientApp looks learners up in.

A learner is an algorithm's client half: given one training message (a
:class:`ClientJob`), it trains and returns the reply's content. The server's strategy
names the learner its clients run (``learner`` in the message's config) and sends that
learner's hyperparameters with it (``learner-params``). Every module in ``clients/`` is
imported before the first lookup, so a new learner is one module there, registered with
``@LEARNERS.register("name")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict

from fedsparse import protocol
from fedsparse.data import ClientData
from fedsparse.learners import LEARNERS as learner_registry
from fedsparse.prune import resize_to
from fedsparse.quant import Precision
from fedsparse.registry import Registry
from fedsparse.task import ClientTask
from fedsparse.training import pick_device
from fedsparse.wire import load_into


@dataclass(frozen=True)
class ClientJob:
    """One message to a node, with what the node knows of itself."""

    message: Message
    context: Context
    task: ClientTask

    @cached_property
    def config(self) -> ConfigRecord:
        return protocol.config_of(self.message.content)

    @property
    def client(self) -> int:
        return int(self.context.node_config[protocol.PARTITION_ID])

    @property
    def data_path(self) -> str | None:
        """A device's own copy of the data (node config ``data-path``), if it has one."""
        path = self.context.node_config.get(protocol.DATA_PATH)
        return str(path) if path else None

    @property
    def server_round(self) -> int:
        return protocol.server_round(self.config, default=0)

    @property
    def device(self) -> torch.device:
        return pick_device(self.task.use_gpu)

    def seed(self) -> int:
        """The seed of this (run seed, round, client): the same on every engine."""
        return int(np.random.SeedSequence([self.task.seed, self.server_round, self.client]).generate_state(1)[0])

    def precision(self) -> Precision:
        """The bitwidth the server sent; a device that declares its own must agree."""
        sent = protocol.sent_bitwidth(self.config)
        declared = self.context.node_config.get(protocol.BITWIDTH)
        if declared is not None and int(declared) != sent:
            raise ValueError(f"server sent a {sent}-bit model to a {int(declared)}-bit device")
        return Precision.from_bitwidth(sent)

    def client_data(self) -> ClientData:
        return self.task.client_data(self.client, self.data_path)

    def load_data(self) -> None:
        """Load this process's copy of the run's data now (it is cached for every later job)."""
        self.task.loaded_data(self.data_path)

    def received_model(self) -> torch.nn.Module:
        """The task's model at the shapes received (a pruned sub-model arrives narrower)."""
        model = self.task.build_model()
        arrays = protocol.arrays_of(self.message.content)
        resize_to(model, {name: array.shape for name, array in arrays.items()})
        load_into(model, arrays)
        return model


class Learner(ABC):
    """An algorithm's client half: one training message in, the reply's content out."""

    @abstractmethod
    def train(self, job: ClientJob) -> RecordDict:
        """Train as the message asks; the reply's records (``metrics`` with ``num-examples``
        at least, and the arrays the strategy expects back)."""


LEARNERS: Registry[type[Learner]] = learner_registry  # registered learners (fedsparse.learners)
