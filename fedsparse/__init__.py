"""fedsparse: federated learning for resource-heterogeneous federations on Flower.

``fedsparse.run(config, overrides, out=...)``, ``fedsparse.compare(config, ...)`` and
``fedsparse.tune(config, ...)`` are the Python API (:mod:`fedsparse.api`); importing the package loads neither torch nor
Flower until they are called.
"""

from fedsparse.api import CompareResult, RunResult, TuneResult, compare, run, tune

__version__ = "0.1.0"
__all__ = ["CompareResult", "RunResult", "TuneResult", "__version__", "compare", "run", "tune"]
