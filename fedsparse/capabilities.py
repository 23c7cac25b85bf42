"""What only some strategies have, as small protocols the round loop looks for.

A strategy opts in by defining the methods; nothing inherits them. The functions below
are how the server asks, with the answer for a strategy that has not opted in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from flwr.app import ArrayRecord


@dataclass
class StrategyState:
    """What a strategy remembers across rounds besides the global model, for checkpoints:
    records (models, learned weights) and JSON-able values (rates, counters)."""

    records: dict[str, ArrayRecord] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Checkpointable(Protocol):
    """Carries state from round to round that a resumed run needs back."""

    def checkpoint_state(self) -> StrategyState:
        """Everything the strategy carries into the next round."""

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        """The inverse of :meth:`checkpoint_state`, on a freshly built strategy."""


@runtime_checkable
class AdaptsToRoundTimes(Protocol):
    """Listens to each participant's round time (the simulation clock)."""

    def observe_round_times(self, server_round: int, seconds: Mapping[int, float]) -> None: ...


@runtime_checkable
class SendsSubModels(Protocol):
    """Sends some clients a pruned sub-model of the global one."""

    def pruned_rate(self, client: int) -> float:
        """The pruned rate of the model ``client`` trained this round (0: the full model)."""


def checkpoint_state(strategy: object) -> StrategyState:
    return strategy.checkpoint_state() if isinstance(strategy, Checkpointable) else StrategyState()


def restore_checkpoint_state(strategy: object, state: StrategyState) -> None:
    if isinstance(strategy, Checkpointable):
        strategy.restore_checkpoint_state(state)


def observe_round_times(strategy: object, server_round: int, seconds: Mapping[int, float]) -> None:
    if isinstance(strategy, AdaptsToRoundTimes):
        strategy.observe_round_times(server_round, seconds)


def pruned_rate(strategy: object, client: int) -> float:
    return strategy.pruned_rate(client) if isinstance(strategy, SendsSubModels) else 0.0


def under_prefix(records: Mapping[str, ArrayRecord], prefix: str) -> dict[str, ArrayRecord]:
    """The records named ``prefix<key>``, by ``<key>`` (one family of a checkpoint's records)."""
    return {name[len(prefix) :]: record for name, record in records.items() if name.startswith(prefix)}
