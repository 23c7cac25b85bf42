"""FedDyn (Acar et al., 2021): federated learning with dynamic regularization.

Clients minimise their loss with a linear term and a proximal one that make their
stationary points agree with the global one (``clients/feddyn.py``). The server keeps h
(zeros at first); with S the round's clients, N all clients and θ_k their models,

    h <- h - α · (1/N) · Σ_S (θ_k - θ),      θ <- mean_S(θ_k) - h / α

with the paper's plain means. h is checkpointed; each client's g_k lives in its node state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import ArrayRecord

from fedsparse.aggregation import to_record
from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.feddyn import FedDynParams
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.wire import decode_float_state


class FedDyn(Strategy):
    learner = "feddyn"

    def __init__(self, params: FedDynParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params
        self.h: dict[str, np.ndarray] = {}

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate before configure_train"
        model = decode_float_state(self.round_start)
        alpha, clients = self.params.alpha, len(self.context.sampler.directory.clients())
        new = {}
        for name, x in model.items():
            drift = sum(u.state[name] - x for u in uploads)
            self.h[name] = self.h.get(name, np.zeros_like(x)) - alpha * drift / clients
            new[name] = sum(u.state[name] for u in uploads) / len(uploads) - self.h[name] / alpha
        return to_record(new)

    def checkpoint_state(self) -> StrategyState:
        return StrategyState({"h": to_record(self.h)} if self.h else {})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        if "h" in state.records:
            self.h = decode_float_state(state.records["h"])


STRATEGIES.add("feddyn", StrategySpec(FedDynParams, lambda params, ctx: FedDyn(params, ctx)))
