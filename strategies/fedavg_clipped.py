"""FedAvg with client-side update clipping (the clipping of DP-FedAvg, McMahan et al.,
2018, without its noise): each client scales its update down to an L2 norm of at most
``clip_norm`` before uploading (``clients/fedavg_clipped.py``), which bounds how far
any one client, however unusual its data or however broken, can move the global model.
The server averages as FedAvg does.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ArrayRecord

from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.fedavg_clipped import ClipParams
from fedsparse.strategies.fedavg import mean_of
from fedsparse.strategy import Strategy, StrategyContext, Upload


class FedAvgClipped(Strategy):
    learner = "clipped"  # the client learner its clients run

    def __init__(self, params: ClipParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return mean_of(uploads)


STRATEGIES.add("fedavg_clipped", StrategySpec(ClipParams, lambda params, ctx: FedAvgClipped(params, ctx)))
