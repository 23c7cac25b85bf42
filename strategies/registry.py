"""Strategy registry: name → (parameter schema, builder).

The parameter schema is what ``strategy.<name>`` in the YAML is validated against; the
builder gets those validated parameters plus the server-side context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flwr.serverapp.strategy import Strategy
from pydantic import BaseModel
from torch import nn

from fedsparse.data import ArrayDataset
from fedsparse.nodes import ClientSampler
from fedsparse.devices import precision_of
from fedsparse.quant import Precision
from fedsparse.registry import Registry


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may know about the federation beyond its own parameters."""

    sampler: ClientSampler
    client_eval: bool
    precisions: tuple[Precision, ...] = ()  # by client id; empty: every client float32
    build_model: Callable[[], nn.Module] | None = None  # for strategies that run the model
    server_data: ArrayDataset | None = None  # held-out samples (data.server_samples)
    seed: int = 0

    def precision_of(self, client: int) -> Precision:
        return precision_of(self.precisions, client)


def _no_problems(params: BaseModel, server_samples: int) -> list[str]:
    return []


@dataclass(frozen=True)
class StrategySpec:
    params: type[BaseModel]
    build: Callable[[BaseModel, StrategyContext], Strategy]
    # checks against the rest of the config: (validated params, data.server_samples) → problems
    problems: Callable[[BaseModel, int], list[str]] = _no_problems


STRATEGIES: Registry[StrategySpec] = Registry("strategy")
