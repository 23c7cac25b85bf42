"""Local learning: every client trains its own model, nothing but metrics travels.

The no-communication baseline of federated continual learning: each client learns its
task stream alone (the ``local`` learner, ``clients/local.py``), its model kept in its
node state between rounds. The server still drives the rounds (which task, when to
evaluate) with config-only messages, so the ledger shows the true cost: zero array bytes
either way.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from pydantic import BaseModel, ConfigDict
from torch import nn

from fedsparse import protocol
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.strategy import Strategy, Upload


class LocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Local(Strategy):
    learner = "local"

    def initial_arrays(self, model: nn.Module) -> ArrayRecord:
        return ArrayRecord()

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        return RecordDict({protocol.CONFIG: self.client_config(client, config)})

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        return self.round_start


STRATEGIES.add(
    "local", StrategySpec(LocalParams, lambda params, ctx: Local(ctx), supports_tasks=True, requires_tasks=True)
)
