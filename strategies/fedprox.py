"""FedProx (Li et al., 2020): FedAvg plus a proximal term on the clients.

The server side is FedAvg; it tells its clients ``proximal-mu`` (Flower's key, so
Flower's own FedProx clients understand it too) and runs the ``fedprox`` learner
(``clients/fedprox.py``), which adds (mu/2)·||w - w_global||² to the local loss.
"""

from __future__ import annotations

from flwr.app import ConfigRecord
from pydantic import Field

from fedsparse import protocol
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.ewc import EWCParams
from fedsparse.strategies.fedavg import FedAvg
from fedsparse.strategy import StrategyContext
from fedsparse.tuning.space import tunable


class FedProxParams(EWCParams):
    mu: float = Field(
        0.01, ge=0.0, description="weight of (mu/2)·||w - w_global||²", json_schema_extra=tunable(1e-4, 1.0, log=True)
    )


class FedProx(FedAvg):
    learner = "fedprox"

    def __init__(self, params: FedProxParams, context: StrategyContext) -> None:
        super().__init__(context, EWCParams.of(params.model_dump()))
        self.proximal_mu = params.mu

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        config = super().train_config(server_round, config)
        config[protocol.PROXIMAL_MU] = self.proximal_mu
        return config


STRATEGIES.add(
    "fedprox",
    StrategySpec(
        FedProxParams,
        lambda params, ctx: FedProx(params, ctx),
        problems=lambda params, cfg: params.problems("fedprox", cfg),
        supports_tasks=True,
    ),
)
