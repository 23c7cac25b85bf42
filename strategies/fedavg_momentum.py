"""FedAvgM (Hsu et al., 2019): FedAvg with momentum on the server.

The clients' example-weighted mean is taken as a pseudo-gradient step,
``delta = mean - x``; the server keeps a velocity ``v <- momentum * v + delta`` and moves
``x <- x + server_lr * v``. With ``momentum: 0`` and ``server_lr: 1`` it is FedAvg. The
velocity is server state: it is checkpointed, so a resumed run continues with it.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.tuning.space import tunable
from fedsparse.wire import decode_float_state


class FedAvgMomentumParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server_lr: float = Field(
        1.0,
        gt=0.0,
        description="server step size on the averaged update",
        json_schema_extra=tunable(0.1, 3.0, log=True),  # fedsparse tune's search range
    )
    momentum: float = Field(
        0.9, ge=0.0, lt=1.0, description="server momentum (0: FedAvg)", json_schema_extra=tunable(0.0, 0.95)
    )


class FedAvgMomentum(Strategy):
    def __init__(self, params: FedAvgMomentumParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params
        self.velocity: dict[str, np.ndarray] = {}

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate before configure_train"
        model = decode_float_state(self.round_start)
        mean = weighted_mean([u.state for u in uploads], [u.weight for u in uploads])
        for name, values in model.items():
            step = mean[name] - values
            self.velocity[name] = self.params.momentum * self.velocity.get(name, 0.0) + step
            model[name] = values + self.params.server_lr * self.velocity[name]
        return to_record(model)

    # opts in to checkpoints (fedsparse.capabilities.Checkpointable)
    def checkpoint_state(self) -> StrategyState:
        return StrategyState({"velocity": to_record(self.velocity)})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.velocity = decode_float_state(state.records["velocity"])


STRATEGIES.add(
    "fedavg_momentum",
    StrategySpec(FedAvgMomentumParams, lambda params, ctx: FedAvgMomentum(params, ctx), stock_clients=True),
)
