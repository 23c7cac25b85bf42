"""The strategies a config may name: name → (parameter schema, builder, checks).

Every module in ``strategies/`` (the package ``fedsparse.strategies``) is imported
before the first lookup and registers its algorithms here, so a new strategy is one
file there. The parameter schema is what ``strategy.<name>`` in the YAML is validated
against; the builder gets those validated parameters plus the server-side context.

Importing this module loads neither torch nor Flower (``fedsparse validate`` reports a
typo without them); the first lookup in :data:`STRATEGIES` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fedsparse.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from fedsparse.config import ExperimentConfig
    from fedsparse.strategy import Strategy, StrategyContext


def _no_problems(params: Any, cfg: ExperimentConfig) -> list[str]:
    return []


def _any_model(model: nn.Module) -> list[str]:
    return []


def prunes_model(model: nn.Module) -> list[str]:
    """Sub-model strategies need a model whose channel wiring structured pruning reads."""
    from fedsparse.prune import channel_layout

    try:
        channel_layout(model)
    except ValueError as error:
        return [f"model.name: this strategy prunes channels, but {error}"]
    return []


@dataclass(frozen=True)
class StrategySpec:
    params: type[BaseModel]
    build: Callable[[Any, StrategyContext], Strategy]
    # checks against the rest of the config: (validated params, the whole config) → problems
    problems: Callable[[Any, ExperimentConfig], list[str]] = _no_problems
    # checks against the configured model (built once by the config validation)
    model_problems: Callable[[nn.Module], list[str]] = _any_model
    # continual learning (data.tasks): whether the strategy runs on task streams, and whether only there
    supports_tasks: bool = False
    requires_tasks: bool = False
    # whether a stock Flower ClientApp can be its client (engine.client_app): it sends every
    # client the whole float model and needs no client learner, only a trained model back
    stock_clients: bool = False
    # one line for `fedsparse list` (default: the registering module's docstring's first line)
    summary: str = ""


STRATEGIES: Registry[StrategySpec] = Registry(
    "strategy", package="fedsparse.strategies", entry_point_group="fedsparse.strategies"
)
