"""AdaptCL (Zhou et al., 2022): sub-models whose size is learned from round times.

Every client starts with the full model (rate 0). After each round the server reads each
participant's round time (the simulation clock, or in deployment the device's report)
and shrinks the slow ones' kept fraction until everyone finishes within ``slack`` of the
fastest (:class:`fedsparse.prune.rates.PrunedRateLearner`); ``fixed_rates`` replaces the
learning by given rates (the oracle-rate control). The channels kept are the
most important ones of the current global model: largest L1 norm per filter / unit.
No activation scaler: the kept channels are the strong ones, not a fixed slice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec, prunes_model
from fedsparse.prune import Kept, by_importance
from fedsparse.prune.rates import FittedRateLearner, PrunedRateLearner
from fedsparse.strategies.submodel import SubModelAvg
from fedsparse.strategy import StrategyContext
from fedsparse.tuning.space import tunable

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig


class AdaptCLParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slack: float = Field(
        0.1,
        gt=0.0,
        le=10.0,
        description="tolerated round-time excess over the fastest worker",
        json_schema_extra=tunable(0.02, 1.0, log=True),
    )
    max_pruned_rate: float = Field(0.9, ge=0.0, lt=1.0, description="cap on any worker's pruned rate")
    step: float = Field(1.0, gt=0.0, le=1.0, description="fraction of the equal-time correction taken per round")
    rate_rule: Literal["step", "fit"] = Field(
        "step",
        description="step: the published update, rates only grow; fit: each device's time fitted from its "
        "last fit_window rounds and its rate solved anew each round (robust to noisy times)",
    )
    fit_window: int = Field(5, ge=1, description="fit: rounds of history each device's time estimate uses")
    fixed_rates: list[float] | None = Field(
        None,
        description="the oracle-rate control: client i's pruned rate is fixed_rates[i] from round 1 and never "
        "learned (e.g. the rates a learning run ended with)",
    )


class AdaptCL(SubModelAvg):
    def __init__(self, params: AdaptCLParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.rate_learner: PrunedRateLearner | FittedRateLearner = (
            PrunedRateLearner(params.slack, params.max_pruned_rate, params.step)
            if params.rate_rule == "step"
            else FittedRateLearner(params.slack, params.max_pruned_rate, params.fit_window)
        )
        self.fixed_rates = params.fixed_rates

    def rate_for(self, client: int, server_round: int) -> float:
        if self.fixed_rates is not None:
            return self.fixed_rates[client]
        return self.rate_learner.rate(client)

    def select(self, rate: float, server_round: int, state: Mapping[str, np.ndarray]) -> Kept:
        return by_importance(self.layout, state, rate)

    def observe_round_times(self, server_round: int, seconds: Mapping[int, float]) -> None:
        self.rate_learner.observe(seconds)

    def checkpoint_state(self) -> StrategyState:
        return StrategyState(values={"adaptcl": self.rate_learner.state()})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.rate_learner.load(state.values["adaptcl"])


def _problems(params: AdaptCLParams, cfg: ExperimentConfig) -> list[str]:
    rates, clients = params.fixed_rates, cfg.federation.num_clients
    if rates is None:
        return []
    problems = []
    if len(rates) != clients:
        problems.append(f"strategy.adaptcl.fixed_rates: needs one rate per client ({clients}), got {len(rates)}")
    if any(not 0 <= rate <= params.max_pruned_rate for rate in rates):
        problems.append(
            f"strategy.adaptcl.fixed_rates: every rate must be in [0, max_pruned_rate = {params.max_pruned_rate}]"
        )
    return problems


STRATEGIES.add(
    "adaptcl",
    StrategySpec(
        AdaptCLParams, lambda params, ctx: AdaptCL(params, ctx), problems=_problems, model_problems=prunes_model
    ),
)
