"""The contract between the server's round loop and an algorithm's server half.

A fedsparse strategy is a Flower Message-API :class:`~flwr.serverapp.strategy.Strategy`
whose ``configure_*`` and ``aggregate_*`` the round loop calls (:mod:`fedsparse.server`).
:class:`Strategy` implements those four once, for every algorithm:

* sampling: seeded, by client id (:class:`fedsparse.nodes.ClientSampler`), so the same
  seed picks the same clients on every engine;
* the downlink: each client gets its model at its device's bitwidth (``Q_b``, bit-packed)
  with its config (round, task, ``bitwidth``, the client learner the algorithm runs and
  that learner's hyperparameters); clients whose payloads are equal share one;
* the uplink: replies arrive screened and sorted by client id (:mod:`fedsparse.screening`)
  and are handed to the algorithm as :class:`Upload` objects, decoded on demand;
* metrics: the example-weighted mean of the replies' metrics (Flower's rule), per-client
  facts left out.

An algorithm subclasses it and defines :meth:`Strategy.aggregate`; it may override
:meth:`Strategy.payload` (what a client receives), :meth:`Strategy.train_config` (what
its learner is told), :meth:`Strategy.initial_arrays` (which part of the model is shared)
and name its client learner in ``learner``. What only some algorithms have (a model per
device format, state to checkpoint, adapting to round times, sub-models) are the small
protocols of :mod:`fedsparse.capabilities`, which the round loop looks for.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy as FlowerStrategy
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords
from torch import nn

from fedsparse import protocol
from fedsparse.aggregation import reply_weight
from fedsparse.data import ArrayDataset, TasksConfig
from fedsparse.devices import precision_of
from fedsparse.models.multihead import shared_state
from fedsparse.nodes import ClientSampler
from fedsparse.quant import Precision
from fedsparse.wire import decode_float_state, encode_at, encode_state, float_tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may know about the federation beyond its own parameters."""

    sampler: ClientSampler
    client_eval: bool
    precisions: tuple[Precision, ...] = ()  # by client id; empty: every client float32
    build_model: Callable[[], nn.Module] | None = None  # for strategies that run the model
    server_data: ArrayDataset | None = None  # held-out samples (data.server_samples)
    seed: int = 0
    widths: tuple[float, ...] = ()  # HeteroFL/FedRolex model width by client id; empty: all 1
    tasks: TasksConfig | None = None  # continual learning: the clients' task schedule

    def width_of(self, client: int) -> float:
        return self.widths[client] if 0 <= client < len(self.widths) else 1.0

    def precision_of(self, client: int) -> Precision:
        return precision_of(self.precisions, client)

    def client_of(self, node_id: int) -> int:
        return self.sampler.directory.client_of(node_id)


@dataclass(frozen=True)
class Upload:
    """One screened reply: who sent it, at which precision, its weight, its content."""

    client: int
    precision: Precision
    weight: float
    content: RecordDict

    @cached_property
    def state(self) -> dict[str, np.ndarray]:
        """The reply's model record as float arrays (dequantized where packed)."""
        return decode_float_state(protocol.arrays_of(self.content))


def quantized_copy(arrays: ArrayRecord, precision: Precision) -> ArrayRecord:
    """Q_b of a float model, encoded as a b-bit device receives it."""
    return arrays if precision.is_float32 else encode_at(float_tensors(arrays), precision)


def aggregate_metrics(contents: list[RecordDict]) -> MetricRecord:
    """Example-weighted mean of the replies' metrics, per-client facts left out."""
    metrics = aggregate_metricrecords(contents, protocol.NUM_EXAMPLES)
    for key in protocol.PER_CLIENT_METRICS:
        if key in metrics:
            del metrics[key]
    return metrics


class Strategy(FlowerStrategy):
    """A fedsparse algorithm's server half (see the module docstring for the contract)."""

    learner: ClassVar[str] = protocol.PLAIN  # the client learner its clients run

    def __init__(self, context: StrategyContext) -> None:
        self.context = context
        self.round_start: ArrayRecord | None = None  # the global model this round began from

    # ------------------------------------------------------------ what an algorithm defines
    @abstractmethod
    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        """The new global model from this round's screened uploads (None: keep the old one)."""

    def aggregation_metrics(self) -> dict[str, Any]:
        """Metrics of the last :meth:`aggregate` call, added to the round's row."""
        return {}

    def initial_arrays(self, model: nn.Module) -> ArrayRecord:
        """The server's model record at round 1, dense float32: the part of the model
        clients share (a task stream's multi-head net: its trunk; heads stay private)."""
        return encode_state(shared_state(model))

    def learner_params(self) -> dict[str, Any]:
        """Hyperparameters the client learner needs (sent as one JSON object)."""
        return {}

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        """The round's config for training; the base adds the round and the learner."""
        config[protocol.SERVER_ROUND] = server_round
        return protocol.with_learner(config, self.learner, self.learner_params())

    def model_for(self, precision: Precision, arrays: ArrayRecord) -> ArrayRecord:
        """The float model clients at ``precision`` start from and are evaluated on."""
        return arrays

    def payload_key(self, client: int, server_round: int) -> Hashable:
        """Clients with equal keys get the same payload, built once: here, one per precision."""
        return self.context.precision_of(client)

    def client_config(self, client: int, config: ConfigRecord) -> ConfigRecord:
        """The round's config plus what is particular to ``client`` (its ``bitwidth``)."""
        client_config = ConfigRecord(dict(config))
        client_config[protocol.BITWIDTH] = self.context.precision_of(client).bits
        return client_config

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        """What ``client`` receives: Q_b(its model) and its config."""
        precision = self.context.precision_of(client)
        downlink = quantized_copy(self.model_for(precision, arrays), precision)
        return RecordDict({protocol.ARRAYS: downlink, protocol.CONFIG: self.client_config(client, config)})

    # ------------------------------------------------------------ what the round loop calls
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.round_start = arrays
        return self._messages(server_round, arrays, self.train_config(server_round, config), MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """``replies`` are screened and sorted by client id; none: nothing to aggregate."""
        replies = list(replies)
        if not replies:
            return None, None
        uploads = [self.upload_of(reply) for reply in replies]
        arrays = self.aggregate(server_round, uploads)
        metrics = aggregate_metrics([reply.content for reply in replies])
        metrics.update(self.aggregation_metrics())
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.context.client_eval:
            return []
        config[protocol.SERVER_ROUND] = server_round
        return self._messages(server_round, arrays, config, MessageType.EVALUATE)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        contents = [reply.content for reply in replies]
        return aggregate_metrics(contents) if contents else None

    def summary(self) -> None:
        log.info("strategy %s", type(self).__name__)

    # ------------------------------------------------------------ helpers
    def upload_of(self, reply: Message) -> Upload:
        client = self.context.client_of(reply.metadata.src_node_id)
        weight = reply_weight(reply.content, protocol.NUM_EXAMPLES)
        return Upload(client, self.context.precision_of(client), weight, reply.content)

    def _messages(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, kind: str) -> list[Message]:
        """One message per sampled node; nodes with equal payload keys share one payload."""
        payloads: dict[Hashable, RecordDict] = {}
        messages = []
        for node in self.context.sampler.sample(server_round, purpose=kind):
            client = self.context.client_of(node)
            key = self.payload_key(client, server_round)
            if key not in payloads:
                payloads[key] = self.payload(client, server_round, arrays, config)
            messages.append(Message(content=payloads[key], message_type=kind, dst_node_id=node))
        return messages
