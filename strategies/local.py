"""Local learning: every client trains its own model, nothing but metrics travels.

The no-communication baseline of federated continual learning (METHODS.md §3): each
client learns its task stream alone, its model kept in its node state between rounds.
The server still drives the rounds (which task, when to evaluate) with config-only
messages, so the ledger shows the true cost: zero array bytes either way.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from pydantic import BaseModel, ConfigDict
from torch import nn

from fedsparse.strategies.fedavg import FedAvg
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec

LEARNER = "learner"  # config key: how a continual client keeps its model
SHARED = "shared"  # the model arrives with every message (FedAvg, FedProx)
LOCAL = "local"  # the client's own model, in its node state


class LocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Local(FedAvg):
    one_array_record = False

    def initial_arrays_of(self, model: nn.Module) -> ArrayRecord:
        return ArrayRecord()

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        config = super().train_config(server_round, config)
        config[LEARNER] = LOCAL
        return config

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        return RecordDict({self.configrecord_key: self.client_config(client, config)})

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        return self.round_start


def _build(params: LocalParams, context: StrategyContext) -> Local:
    return Local(context)


STRATEGIES.add(
    "local",
    StrategySpec(LocalParams, _build, supports_tasks=True, requires_tasks=True),  # type: ignore[arg-type]
)
