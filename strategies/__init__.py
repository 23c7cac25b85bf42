"""Server strategies (Flower Message-API). Importing registers every built-in one."""

from fedsparse.strategies import (  # noqa: F401  (registration)
    adaptcl,
    fedavg,
    fedpaq,
    fedprox,
    fedweit,
    grouped,
    heterofl,
    local,
    prowd,
)
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec

__all__ = ["STRATEGIES", "StrategyContext", "StrategySpec"]
