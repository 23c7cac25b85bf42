"""ProWD (Yoon et al., ICML 2022): progressive weight dequantization and selective
aggregation for bitwidth-heterogeneous federations. Plain PyTorch / NumPy; the Flower
strategy that uses it is ``fedsparse.strategies.prowd``."""

from fedsparse.prowd.dequantizer import FlatWeights, ProgressiveDequantizer, bit_ladder
from fedsparse.prowd.selective import LowBitUpdate, compare_to_high, high_update, selective_mean
from fedsparse.prowd.training import DequantizerTrainer, TrainingSettings

__all__ = [
    "DequantizerTrainer",
    "FlatWeights",
    "LowBitUpdate",
    "ProgressiveDequantizer",
    "TrainingSettings",
    "bit_ladder",
    "compare_to_high",
    "high_update",
    "selective_mean",
]
