"""HeteroFL's activation scaler: a width-r sub-model's hidden outputs times 1/r in training.

A layer that sees only a fraction r of its inputs produces pre-activations about r times
smaller than the full model's; scaling them back while training keeps every width's
weights compatible with the full model, which runs unscaled at evaluation (Diao et al.,
2021). Applied to the output of every hidden conv / linear layer, not the classifier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from fedsparse.prune.layout import channel_layout


@contextmanager
def scaled_activations(model: nn.Module, scale: float) -> Iterator[nn.Module]:
    """Multiply every hidden layer's output by ``scale`` inside the block (1.0: no-op)."""
    if scale == 1.0:
        yield model
        return

    def rescale(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return output * scale

    handles = [model.get_submodule(name).register_forward_hook(rescale) for name in channel_layout(model).group_layers]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
