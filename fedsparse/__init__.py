"""fedsparse: federated learning for resource-heterogeneous federations on Flower."""

__version__ = "0.1.0"
