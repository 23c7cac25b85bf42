"""FedPAQ (Reisizadeh et al., 2020) on bit-heterogeneous clients.

Clients (the ``fedpaq`` learner, ``clients/fedpaq.py``) upload their model *difference*
with an unbiased stochastic quantizer at their device bitwidth (float32 clients send it
exactly); the server adds the example-weighted mean difference to the global model. The
downlink is each device's Q_b(global), as for every strategy, because a b-bit device
cannot hold anything else.
"""

from __future__ import annotations

from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.strategy import Strategy, Upload
from fedsparse.wire import decode_float_state


class FedPAQParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FedPAQ(Strategy):
    learner = "fedpaq"

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate before configure_train"
        step = weighted_mean([u.state for u in uploads], [u.weight for u in uploads])
        start = decode_float_state(self.round_start)
        return to_record({name: start[name] + step[name] for name in start})


STRATEGIES.add("fedpaq", StrategySpec(FedPAQParams, lambda params, ctx: FedPAQ(ctx)))
