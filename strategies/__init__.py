"""Server strategies (Flower Message-API). Importing registers every built-in one."""

from fedsparse.strategies import fedavg, fedpaq, fedprox, grouped, prowd  # noqa: F401  (registration)
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec

__all__ = ["STRATEGIES", "StrategyContext", "StrategySpec"]
