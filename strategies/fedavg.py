"""FedAvg (McMahan et al., 2017) on Flower's Message-API strategy.

Flower's ``FedAvg`` does the reply checks and the averaging of metrics; this subclass
replaces node sampling with seeded sampling by client id, so runs repeat exactly, and
averages arrays over zero-copy views (:mod:`fedsparse.aggregation`, bit-identical to
Flower's ``aggregate_arrayrecords``, several times faster). Replies reach
``aggregate_train`` already screened and sorted by the server loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg as FlowerFedAvg
from pydantic import BaseModel, ConfigDict

from fedsparse.aggregation import weighted_mean_arrays
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec


class FedAvgParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FedAvg(FlowerFedAvg):
    def __init__(self, context: StrategyContext) -> None:
        super().__init__(min_available_nodes=0)
        self.sampler = context.sampler
        self.client_eval = context.client_eval

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        """Per-round config sent with the model; subclasses add their own keys."""
        config["server-round"] = server_round
        return config

    def _messages(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, kind: str
    ) -> list[Message]:
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        nodes = self.sampler.sample(server_round, purpose=kind)
        return list(self._construct_messages(record, nodes, kind))

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self._messages(server_round, arrays, self.train_config(server_round, config), MessageType.TRAIN)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid_replies, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid_replies:
            return None, None
        contents = [msg.content for msg in valid_replies]
        arrays = weighted_mean_arrays(contents, self.weighted_by_key)
        return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.client_eval:
            return []
        config["server-round"] = server_round
        return self._messages(server_round, arrays, config, MessageType.EVALUATE)


STRATEGIES.add("fedavg", StrategySpec(FedAvgParams, lambda params, ctx: FedAvg(ctx)))
