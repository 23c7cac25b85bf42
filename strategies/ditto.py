"""Ditto (Li et al., 2021): fair and robust personalization.

The global model is FedAvg's; each client also keeps a personal model in its node
state, trained towards the global one with weight λ (``clients/ditto.py``). Every row
has the global model's accuracy (the server's evaluation) and ``personal_accuracy``: the
example-weighted mean, over the round's clients, of each personal model's accuracy on
its client's own held-out split (``data.val_fraction``).
"""

from __future__ import annotations

from typing import Any

from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.ditto import DittoParams
from fedsparse.strategies.fedavg import FedAvg
from fedsparse.strategy import StrategyContext


class Ditto(FedAvg):
    learner = "ditto"

    def __init__(self, params: DittoParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()


STRATEGIES.add("ditto", StrategySpec(DittoParams, lambda params, ctx: Ditto(params, ctx)))
