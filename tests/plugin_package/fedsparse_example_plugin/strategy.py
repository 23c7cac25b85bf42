"""Coordinate-wise median of the clients' models, whose clients add L2 weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.aggregation import to_record
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Regularizer
from fedsparse.strategy import Strategy, StrategyContext, Upload


class MedianParams(BaseModel):
    """``strategy.example_median`` in the YAML, validated like any built-in block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decay: float = Field(1e-4, ge=0.0, description="the clients' L2 weight decay, (decay/2)·||w||²")


class CoordinateMedian(Strategy):
    """The server half: the element-wise median of the uploaded models."""

    learner = "example_decay"  # the client half below

    def __init__(self, params: MedianParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params

    def learner_params(self) -> dict[str, Any]:
        return {"decay": self.params.decay}

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        names = uploads[0].state
        return to_record(
            {name: np.median(np.stack([u.state[name] for u in uploads]), axis=0).astype(np.float32) for name in names}
        )


@LEARNERS.register("example_decay")
class DecayLearner(PlainLearner):
    """The client half: plain local training plus (decay/2)·||w||²."""

    def regularizer(self, job: ClientJob, model: torch.nn.Module) -> Regularizer | None:
        decay = float(protocol.learner_params(job.config).get("decay", 0.0))
        if decay == 0:
            return None
        weights = [p for p in model.parameters() if p.requires_grad]

        def term() -> torch.Tensor:
            return 0.5 * decay * sum((w**2).sum() for w in weights)  # type: ignore[return-value]

        return term


STRATEGIES.add(
    "example_median",
    StrategySpec(MedianParams, lambda params, context: CoordinateMedian(params, context)),
)
