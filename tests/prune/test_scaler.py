"""HeteroFL's activation scaler multiplies hidden outputs only, and only inside the block."""

from __future__ import annotations

import torch
from torch import nn

from fedsparse.prune import scaled_activations


def test_hidden_outputs_are_scaled_and_the_classifier_is_not() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False))
    x = torch.randn(5, 3)
    plain = model(x)
    with scaled_activations(model, 4.0):
        scaled = model(x)
        hidden = model[1](model[0](x))
    # ReLU is positively homogeneous and the classifier is linear: 4× hidden → 4× logits
    torch.testing.assert_close(scaled, 4.0 * plain)
    torch.testing.assert_close(hidden, 4.0 * torch.relu(x @ model[0].weight.T))
    torch.testing.assert_close(model(x), plain)  # hooks removed on exit
