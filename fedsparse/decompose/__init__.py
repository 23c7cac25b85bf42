"""FedWeIT's weight decomposition: shared base, task masks, sparse task-adaptive weights."""

from fedsparse.decompose.layers import DecomposedConv2d, DecomposedLayer, DecomposedLinear, decompose
from fedsparse.decompose.net import DecomposedNet

__all__ = ["DecomposedConv2d", "DecomposedLayer", "DecomposedLinear", "DecomposedNet", "decompose"]
