"""FedAvg whose clients keep a momentum of their own updates across rounds (state in
``Context.state``, which fedsparse saves per round and restores on resume)."""

from __future__ import annotations

from typing import Any

import torch
from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Trained
from fedsparse.strategy import Strategy, StrategyContext, Upload

VELOCITY = "example_momentum.velocity"  # this learner's record in the node state: never sent


class MomentumParams(BaseModel):
    """``strategy.example_momentum`` in the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    beta: float = Field(0.5, ge=0.0, lt=1.0, description="the clients' momentum on their own updates")


class ClientMomentumAvg(Strategy):
    """The server half: FedAvg of what the clients upload."""

    learner = "example_momentum"

    def __init__(self, params: MomentumParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return to_record(weighted_mean([u.state for u in uploads], [u.weight for u in uploads]))


@LEARNERS.register("example_momentum")
class MomentumLearner(PlainLearner):
    """The client half: v <- beta·v + (trained - received); upload received + v."""

    keeps_received = True

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        beta = MomentumParams.model_validate(protocol.learner_params(job.config)).beta
        kept = job.context.state.get(VELOCITY)
        velocity = kept.to_torch_state_dict() if isinstance(kept, ArrayRecord) else {}
        sent = dict(trained.state)
        for name, received in trained.received.items():
            if received.is_floating_point():
                velocity[name] = beta * velocity.get(name, torch.zeros_like(received)) + sent[name] - received
                sent[name] = received + velocity[name]
        job.context.state[VELOCITY] = ArrayRecord(velocity)  # saved per round by fedsparse
        return super().upload(job, Trained(sent, trained.received, trained.precision))


STRATEGIES.add(
    "example_momentum",
    StrategySpec(MomentumParams, lambda params, context: ClientMomentumAvg(params, context)),
)
