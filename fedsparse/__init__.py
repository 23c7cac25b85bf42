"""fedsparse: federated learning for resource-heterogeneous federations on Flower.

``fedsparse.run(config, overrides, out=...)`` and ``fedsparse.compare(config, ...)`` are
the Python API (:mod:`fedsparse.api`); importing the package loads neither torch nor
Flower until they are called.
"""

from fedsparse.api import CompareResult, RunResult, compare, run

__version__ = "0.1.0"
__all__ = ["CompareResult", "RunResult", "__version__", "compare", "run"]
