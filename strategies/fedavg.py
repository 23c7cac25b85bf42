"""FedAvg (McMahan et al., 2017) on Flower's Message-API strategy.

Flower's ``FedAvg`` does the reply checks and the averaging of metrics; this subclass
replaces node sampling with seeded sampling by client id, so runs repeat exactly, and
averages arrays over zero-copy views (:mod:`fedsparse.aggregation`, bit-identical to
Flower's ``aggregate_arrayrecords``, several times faster). Replies reach
``aggregate_train`` already screened and sorted by the server loop.

It is also the base of every fedsparse strategy, because it owns what bit-heterogeneous
federations add to the message flow: each client receives Q_b(model) at its own device
bitwidth b (bit-packed) with ``bitwidth`` in its config, and replies are dequantized
before averaging ("naive" FedAvg over mixed precisions, METHODS.md §1). With every
client at float32 the messages are exactly the plain FedAvg ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg as FlowerFedAvg
from flwr.serverapp.strategy.strategy_utils import validate_message_reply_consistency
from pydantic import BaseModel, ConfigDict
from torch import nn

from fedsparse.aggregation import decoded_arrays, reply_weight, weighted_mean_arrays
from fedsparse.quant import Precision
from fedsparse.screening import BITWIDTH, TASK_ACCURACY
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec
from fedsparse.wire import encode_at, encode_model, float_tensors


PER_CLIENT_METRICS = (BITWIDTH, TASK_ACCURACY)


@dataclass(frozen=True)
class Upload:
    """One screened reply, decoded: who sent it, at which precision, weight, float arrays."""

    client: int
    precision: Precision
    weight: float
    state: dict[str, np.ndarray]


def quantized_copy(arrays: ArrayRecord, precision: Precision) -> ArrayRecord:
    """Q_b of a float model, encoded as a b-bit device receives it."""
    return arrays if precision.is_float32 else encode_at(float_tensors(arrays), precision)


@dataclass
class StrategyState:
    """What a strategy remembers across rounds besides the global model, for checkpoints:
    records (models, learned weights) and JSON-able values (rates, counters)."""

    records: dict[str, ArrayRecord] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def under_prefix(records: Mapping[str, ArrayRecord], prefix: str) -> dict[str, ArrayRecord]:
    """The records named ``prefix<key>``, by ``<key>`` (one family of a checkpoint's records)."""
    return {name[len(prefix):]: record for name, record in records.items() if name.startswith(prefix)}


class FedAvgParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FedAvg(FlowerFedAvg):
    # replies carry exactly one ArrayRecord (Flower's check); FedWeIT's may add one, local learning's none
    one_array_record = True

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(min_available_nodes=0)
        self.context = context
        self.sampler = context.sampler
        self.client_eval = context.client_eval
        self.initial_arrays: ArrayRecord | None = None  # the model of round 1
        self.round_start: ArrayRecord | None = None  # the global model this round began from

    # ------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> StrategyState:
        """Everything this strategy carries into the next round; subclasses add theirs."""
        state = StrategyState()
        if self.initial_arrays is not None:
            state.records["initial"] = self.initial_arrays
        return state

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        """The inverse of :meth:`checkpoint_state`, on a freshly built strategy."""
        self.initial_arrays = state.records.get("initial")

    # ------------------------------------------------------------ what clients get
    def initial_arrays_of(self, model: nn.Module) -> ArrayRecord:
        """The server's model record at round 1: here the whole model, dense float32.

        Strategies that share only part of the model (FedWeIT's bases) or none of it
        (local learning) override it.
        """
        return encode_model(model)

    def model_for(self, precision: Precision, global_arrays: ArrayRecord) -> ArrayRecord:
        """The float model that clients at ``precision`` start from and are evaluated on.

        One global model here; strategies that keep a model per group override it.
        """
        return global_arrays

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        """Per-round config sent with the model; subclasses add their own keys."""
        config["server-round"] = server_round
        return config

    def payload_key(self, client: int, server_round: int) -> Hashable:
        """Clients with equal keys get the same payload, built once: here, one per precision."""
        return self.context.precision_of(client)

    def client_config(self, client: int, config: ConfigRecord) -> ConfigRecord:
        """The round's config plus what is particular to ``client`` (its ``bitwidth``)."""
        client_config = ConfigRecord(dict(config))
        client_config[BITWIDTH] = self.context.precision_of(client).bits
        return client_config

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        """What ``client`` receives: Q_b(its model) and its config."""
        precision = self.context.precision_of(client)
        downlink = quantized_copy(self.model_for(precision, arrays), precision)
        return RecordDict({self.arrayrecord_key: downlink, self.configrecord_key: self.client_config(client, config)})

    def _messages(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, kind: str
    ) -> list[Message]:
        """One message per sampled node; nodes with equal payload keys share one payload."""
        payloads: dict[Hashable, RecordDict] = {}
        messages = []
        for node in self.sampler.sample(server_round, purpose=kind):
            client = self.sampler.directory.client_of(node)
            key = self.payload_key(client, server_round)
            if key not in payloads:
                payloads[key] = self.payload(client, server_round, arrays, config)
            messages.append(Message(content=payloads[key], message_type=kind, dst_node_id=node))
        return messages

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.initial_arrays is None:
            self.initial_arrays = arrays
        self.round_start = arrays
        return self._messages(server_round, arrays, self.train_config(server_round, config), MessageType.TRAIN)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.client_eval:
            return []
        config["server-round"] = server_round
        return self._messages(server_round, arrays, config, MessageType.EVALUATE)

    # ------------------------------------------------------------ device facts
    def pruned_rate(self, client: int) -> float:
        """The pruned rate of the model ``client`` trained this round (0: the full model)."""
        return 0.0

    def observe_round_times(self, server_round: int, seconds: Mapping[int, float]) -> None:
        """Each participant's round time (simulation clock); strategies that adapt to it listen."""

    # ------------------------------------------------------------ what comes back
    def uploads(self, replies: Iterable[Message]) -> list[Upload]:
        """Screened replies decoded to float arrays, with their client and precision."""
        client_of = self.sampler.directory.client_of
        out = []
        for msg in replies:
            client = client_of(msg.metadata.src_node_id)
            out.append(
                Upload(
                    client=client,
                    precision=self.context.precision_of(client),
                    weight=reply_weight(msg.content, self.weighted_by_key),
                    state=decoded_arrays(msg.content),
                )
            )
        return out

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid_replies, _ = self._check_and_log_replies(replies, is_train=True, validate=False)
        if not valid_replies:
            return None, None
        validate_message_reply_consistency(
            [msg.content for msg in valid_replies], self.weighted_by_key, check_arrayrecord=self.one_array_record
        )
        contents = [msg.content for msg in valid_replies]
        arrays = self.aggregate_arrays(server_round, valid_replies)
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        for key in PER_CLIENT_METRICS:
            if metrics is not None and key in metrics:
                del metrics[key]  # a per-client fact, not a quantity to average
        return arrays, metrics

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        """The new global model from screened replies; what each strategy defines."""
        return weighted_mean_arrays([msg.content for msg in replies], self.weighted_by_key)


STRATEGIES.add("fedavg", StrategySpec(FedAvgParams, lambda params, ctx: FedAvg(ctx), supports_tasks=True))
