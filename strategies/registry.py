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

from fedsparse.data import ArrayDataset, TasksConfig
from fedsparse.nodes import ClientSampler
from fedsparse.devices import precision_of
from fedsparse.prune import channel_layout
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
    widths: tuple[float, ...] = ()  # HeteroFL/FedRolex model width by client id; empty: all 1
    tasks: TasksConfig | None = None  # continual learning: the clients' task schedule

    def width_of(self, client: int) -> float:
        return self.widths[client] if 0 <= client < len(self.widths) else 1.0

    def precision_of(self, client: int) -> Precision:
        return precision_of(self.precisions, client)


def _no_problems(params: BaseModel, server_samples: int) -> list[str]:
    return []


def _any_model(model: nn.Module) -> list[str]:
    return []


def prunes_model(model: nn.Module) -> list[str]:
    """Sub-model strategies need a model whose channel wiring structured pruning reads."""
    try:
        channel_layout(model)
    except ValueError as error:
        return [f"model.name: this strategy prunes channels, but {error}"]
    return []


@dataclass(frozen=True)
class StrategySpec:
    params: type[BaseModel]
    build: Callable[[BaseModel, StrategyContext], Strategy]
    # checks against the rest of the config: (validated params, data.server_samples) → problems
    problems: Callable[[BaseModel, int], list[str]] = _no_problems
    # checks against the configured model (built once by the config validation)
    model_problems: Callable[[nn.Module], list[str]] = _any_model
    # continual learning (data.tasks): whether the strategy runs on task streams, and whether only there
    supports_tasks: bool = False
    requires_tasks: bool = False


STRATEGIES: Registry[StrategySpec] = Registry("strategy")
