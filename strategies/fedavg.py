"""FedAvg (McMahan et al., 2017): the example-weighted mean of the clients' models.

On task streams the clients share the trunk of their multi-head net and keep each
task's head (as the official FedWeIT baselines do), and may add EWC
(``ewc_lambda`` > 0, ``clients/ewc.py``) to the local loss.

Clients on low-bit devices receive Q_b(model) and upload at their bitwidth; their
uploads are dequantized before averaging ("naive" FedAvg over mixed precisions). With
every client at float32 the messages are exactly Flower's FedAvg ones. The mean is taken
over zero-copy views in reply (client-id) order (:mod:`fedsparse.aggregation`,
bit-identical to Flower's ``aggregate_arrayrecords``).
"""

from __future__ import annotations

from typing import Any

from flwr.app import ArrayRecord

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.ewc import EWCParams
from fedsparse.strategy import Strategy, StrategyContext, Upload


class FedAvgParams(EWCParams):
    """FedAvg has no parameters of its own; on task streams its clients may add EWC."""


def mean_of(uploads: list[Upload]) -> ArrayRecord:
    """The example-weighted mean of the uploads' float models."""
    return to_record(weighted_mean([u.state for u in uploads], [u.weight for u in uploads]))


class FedAvg(Strategy):
    def __init__(self, context: StrategyContext, ewc: EWCParams | None = None) -> None:
        super().__init__(context)
        self.ewc = ewc or EWCParams()

    def learner_params(self) -> dict[str, Any]:
        """EWC's settings, when it is on (task streams only)."""
        return self.ewc.learner_params()

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return mean_of(uploads)


STRATEGIES.add(
    "fedavg",
    StrategySpec(
        FedAvgParams,
        lambda params, ctx: FedAvg(ctx, params),
        problems=lambda params, cfg: params.problems("fedavg", cfg),
        supports_tasks=True,
        stock_clients=True,
    ),
)
