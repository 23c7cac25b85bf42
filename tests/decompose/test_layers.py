"""FedWeIT's decomposed layers: the decomposition, its task bookkeeping and sparsification."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fedsparse.decompose import DecomposedConv2d, DecomposedLinear, decompose


@pytest.mark.parametrize(
    "plain, x",
    [
        (nn.Linear(12, 7), torch.randn(5, 12)),
        (nn.Conv2d(3, 6, 3, padding=1, stride=2), torch.randn(2, 3, 9, 9)),
    ],
)
def test_with_zero_adaptive_saturated_mask_and_no_knowledge_it_is_the_plain_layer(
    plain: nn.Module, x: torch.Tensor
) -> None:
    torch.manual_seed(0)
    layer = decompose(plain)
    assert layer is not None
    layer.add_task("0")
    with torch.no_grad():
        layer.adaptive["0"].zero_()
        layer.masks["0"].fill_(50.0)  # sigmoid(50) == 1 in float32
    layer.task = "0"
    assert torch.equal(layer(x), plain(x))


def test_a_new_task_starts_from_the_base_and_knowledge_adds_attention_weighted_entries() -> None:
    torch.manual_seed(1)
    plain = nn.Linear(6, 4)
    layer = DecomposedLinear(plain)
    layer.add_task("0")
    # sigmoid(m0)·B + B/3 == B: the new task's weight is the base it was given
    assert torch.allclose(layer.effective_weight("0"), plain.weight, atol=1e-6)
    knowledge = torch.randn(3, 4, 6)
    layer.finish_task("0", threshold=0.0)
    layer.add_task("1", knowledge)
    with torch.no_grad():
        layer.attention["1"].copy_(torch.tensor([0.5, -1.0, 2.0]))
    expected = layer.masked_base("1") + layer.adaptive["1"] + 0.5 * knowledge[0] - knowledge[1] + 2 * knowledge[2]
    assert torch.allclose(layer.effective_weight("1"), expected, atol=1e-6)
    layer.effective_weight("1").sum().backward()
    assert layer.attention["1"].grad is not None and layer.attention["1"].grad.abs().sum() > 0


def test_knowledge_of_the_wrong_shape_is_refused() -> None:
    layer = DecomposedLinear(nn.Linear(6, 4))
    with pytest.raises(ValueError, match="shape"):
        layer.add_task("0", torch.zeros(2, 6, 4))


def test_finishing_a_task_sparsifies_A_stores_theta_and_freezes_the_knowledge_term() -> None:
    torch.manual_seed(2)
    layer = DecomposedConv2d(nn.Conv2d(2, 4, 3))
    knowledge = torch.randn(2, 4, 2, 3, 3)
    layer.add_task("5", knowledge)
    threshold = 0.05
    before = layer.effective_weight("5").detach().clone()
    small = layer.adaptive["5"].detach().abs() <= threshold
    assert small.any() and (~small).any()
    layer.finish_task("5", threshold)
    adaptive = layer.adaptive["5"].detach()
    assert torch.all(adaptive[small] == 0) and torch.all(adaptive[~small] != 0)
    assert torch.equal(layer.stored.get("5"), (layer.masked_base("5") + adaptive).detach())
    # the knowledge base itself is dropped; its weighted sum lives on, frozen
    assert not layer.knowledge.has("5") and "5" not in layer.attention
    after = layer.effective_weight("5").detach()
    assert torch.allclose(after[~small], before[~small], atol=1e-6)
    assert not layer.masks["5"].requires_grad


def test_keep_units_drops_the_least_gated_share() -> None:
    layer = DecomposedLinear(nn.Linear(3, 10))
    layer.add_task("0")
    with torch.no_grad():
        layer.masks["0"].copy_(torch.tensor([0.5, -3.0, 2.0, -0.1, 1.0, 0.0, 4.0, -2.0, 3.0, 0.2]))
    keep = layer.keep_units("0", sparsity=0.3)
    assert sorted(torch.nonzero(~keep).flatten().tolist()) == [1, 3, 7]  # logits -3, -0.1, -2
    assert int(keep.sum()) == 10 - math.floor(0.3 * 10)
