"""Local learning: every client trains its own model, nothing but metrics travels.

The no-communication baseline of federated continual learning: each client learns its
task stream alone (the ``local`` learner, ``clients/local.py``), its model kept in its
node state between rounds. The server still drives the rounds (which task, when to
evaluate) with config-only messages, so the ledger shows the true cost: zero array bytes
either way.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from torch import nn

from fedsparse import protocol
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.ewc import EWCParams
from fedsparse.strategy import Strategy, StrategyContext, Upload


class LocalParams(EWCParams):
    """Local learning has no parameters of its own; its clients may add EWC."""


class Local(Strategy):
    learner = "local"

    def __init__(self, context: StrategyContext, ewc: EWCParams | None = None) -> None:
        super().__init__(context)
        self.ewc = ewc or EWCParams()

    def learner_params(self) -> dict[str, Any]:
        """EWC's settings, when it is on."""
        return self.ewc.learner_params()

    def initial_arrays(self, model: nn.Module) -> ArrayRecord:
        return ArrayRecord()

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        return RecordDict({protocol.CONFIG: self.client_config(client, config)})

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return self.round_start


STRATEGIES.add(
    "local",
    StrategySpec(
        LocalParams,
        lambda params, ctx: Local(ctx, params),
        problems=lambda params, cfg: params.problems("local", cfg),
        supports_tasks=True,
        requires_tasks=True,
    ),
)
