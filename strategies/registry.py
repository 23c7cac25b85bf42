"""Strategy registry: name → (parameter schema, builder).

The parameter schema is what ``strategy.<name>`` in the YAML is validated against; the
builder gets those validated parameters plus the server-side context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flwr.serverapp.strategy import Strategy
from pydantic import BaseModel

from fedsparse.nodes import ClientSampler
from fedsparse.registry import Registry


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may know about the federation beyond its own parameters."""

    sampler: ClientSampler
    client_eval: bool


@dataclass(frozen=True)
class StrategySpec:
    params: type[BaseModel]
    build: Callable[[BaseModel, StrategyContext], Strategy]


STRATEGIES: Registry[StrategySpec] = Registry("strategy")
