"""FedPAQ (Reisizadeh et al., 2020) on bit-heterogeneous clients.

Clients upload their model *difference* with an unbiased stochastic quantizer at their
device bitwidth (float32 clients send it exactly); the server adds the example-weighted
mean difference to the global model. The downlink is each device's Q_b(global), as for
every strategy, because a b-bit device cannot hold anything else.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Message
from pydantic import BaseModel, ConfigDict

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.strategies.fedavg import FedAvg
from fedsparse.strategies.registry import STRATEGIES, StrategySpec
from fedsparse.wire import decode_float_state

UPLOAD = "upload"
UPLOAD_DELTA = "delta"


class FedPAQParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FedPAQ(FedAvg):
    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        config = super().train_config(server_round, config)
        config[UPLOAD] = UPLOAD_DELTA
        return config

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate_train before configure_train"
        uploads = self.uploads(replies)
        step = weighted_mean([u.state for u in uploads], [u.weight for u in uploads])
        start = decode_float_state(self.round_start)
        return to_record({name: start[name] + step[name] for name in start})


STRATEGIES.add("fedpaq", StrategySpec(FedPAQParams, lambda params, ctx: FedPAQ(ctx)))
