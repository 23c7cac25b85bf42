"""EWC on a task stream: the Fisher is the mean squared gradient, consolidation keeps
the F-weighted mean of past weights, and the penalty pulls toward it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import RecordDict

from fedsparse.clients.ewc import ANCHOR, FISHER, consolidate, fisher_diagonal, penalty
from fedsparse.data import ArrayDataset
from fedsparse.models.multihead import build_multihead


def _net_and_data() -> tuple:  # type: ignore[type-arg]
    torch.manual_seed(0)
    net = build_multihead("mlp", (1, 4, 4), 2, 2, hidden=[8])
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.normal(size=(32, 1, 4, 4)).astype(np.float32), rng.integers(0, 2, 32).astype(np.int64))
    return net, data


def test_the_fisher_is_the_mean_squared_per_sample_gradient() -> None:
    net, data = _net_and_data()
    fisher = fisher_diagonal(
        net, data, samples=32, generator=torch.Generator().manual_seed(1), device=torch.device("cpu")
    )
    expected = {name: torch.zeros_like(p) for name, p in net.trunk.named_parameters()}
    for i in range(32):
        net.zero_grad()
        x, y = torch.from_numpy(data.x[i : i + 1]), torch.from_numpy(data.y[i : i + 1])
        torch.nn.functional.cross_entropy(net(x), y).backward()
        for name, p in net.trunk.named_parameters():
            expected[name] += p.grad**2 / 32
    assert set(fisher) == {f"trunk.{n}" for n in expected}
    for name, value in expected.items():
        torch.testing.assert_close(fisher[f"trunk.{name}"], value)


def test_two_tasks_consolidate_to_their_fisher_weighted_mean_and_the_penalty_pulls_there() -> None:
    net, _ = _net_and_data()
    state = RecordDict()
    names = [f"trunk.{n}" for n, _ in net.trunk.named_parameters()]
    ones = {n: torch.ones_like(dict(net.named_parameters())[n]) for n in names}
    assert penalty(net, state, 1.0) is None  # nothing learned yet
    first = {n: p.detach().clone() for n, p in net.named_parameters() if n in names}
    consolidate(net, {n: 3 * ones[n] for n in names}, state)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in names:
                p.add_(1.0)
    consolidate(net, {n: ones[n] for n in names}, state)
    anchor, fisher = state[ANCHOR].to_torch_state_dict(), state[FISHER].to_torch_state_dict()
    for n in names:
        torch.testing.assert_close(fisher[n], 4 * ones[n])
        torch.testing.assert_close(anchor[n], first[n] + 0.25)  # (3·θ1 + 1·(θ1 + 1)) / 4
    term = penalty(net, state, 2.0)
    assert term is not None
    expected = sum(float((4 * (p.detach() - anchor[n]) ** 2).sum()) for n, p in net.named_parameters() if n in names)
    assert float(term().detach()) == pytest.approx(expected)
    term().backward()
    for n, p in net.named_parameters():
        if n in names:
            torch.testing.assert_close(p.grad, 2.0 * 4 * (p.detach() - anchor[n]))
