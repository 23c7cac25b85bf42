"""FedAvg (McMahan et al., 2017): the example-weighted mean of the clients' models.

Clients on low-bit devices receive Q_b(model) and upload at their bitwidth; their
uploads are dequantized before averaging ("naive" FedAvg over mixed precisions). With
every client at float32 the messages are exactly Flower's FedAvg ones. The mean is taken
over zero-copy views in reply (client-id) order (:mod:`fedsparse.aggregation`,
bit-identical to Flower's ``aggregate_arrayrecords``).
"""

from __future__ import annotations

from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.strategy import Strategy, Upload


class FedAvgParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def mean_of(uploads: list[Upload]) -> ArrayRecord:
    """The example-weighted mean of the uploads' float models."""
    return to_record(weighted_mean([u.state for u in uploads], [u.weight for u in uploads]))


class FedAvg(Strategy):
    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return mean_of(uploads)


STRATEGIES.add("fedavg", StrategySpec(FedAvgParams, lambda params, ctx: FedAvg(ctx), supports_tasks=True))
