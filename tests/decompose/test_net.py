"""A FedWeIT client's network: the lambda2 term, the shared base, persistence."""

from __future__ import annotations

import pytest
import torch

from fedsparse.data import load_continual_data
from fedsparse.decompose import DecomposedNet
from fedsparse.models.multihead import build_multihead
from fedsparse.training import make_optimizer, train_epochs

TASKS = '{"kind": "class_split", "classes_per_task": 2, "num_tasks": 2, "rounds_per_task": 1}'


def plain_net(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return build_multihead("cnn", (1, 8, 8), 2, 5, channels=[8, 16], hidden=32)


def train_task(net: DecomposedNet, data, lambda2: float, epochs: int) -> None:  # type: ignore[no-untyped-def]
    trainable = [p for p in net.parameters() if p.requires_grad]
    train_epochs(
        net,
        data.train,
        epochs=epochs,
        batch_size=16,
        optimizer=make_optimizer(trainable, "adam", 3e-3),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        regularizer=lambda: net.regularizer(1e-3, lambda2, 1e-4),
    )


def past_task_drift(lambda2: float) -> tuple[float, float]:
    """Relative change of task 1's effective weights while training task 2; and of the base."""
    streams = load_continual_data("digits", None, TASKS, 1, 0.2, 0)
    first, second = streams.task(0, 0), streams.task(0, 1)
    net = DecomposedNet(plain_net())
    net.add_task(first.spec.pool_id)
    net.select(first.spec.pool_id)
    train_task(net, first, lambda2, epochs=3)
    net.finish_task(1e-3)
    before = {n: layer.effective_weight(str(first.spec.pool_id)).detach().clone() for n, layer in net.layers().items()}
    base_before = {n: layer.base.detach().clone() for n, layer in net.layers().items()}
    net.add_task(second.spec.pool_id)
    net.select(second.spec.pool_id)
    train_task(net, second, lambda2, epochs=10)
    moved = sum(
        (layer.effective_weight(str(first.spec.pool_id)).detach() - before[n]).norm() ** 2
        for n, layer in net.layers().items()
    )
    base_moved = sum((layer.base.detach() - base_before[n]).norm() ** 2 for n, layer in net.layers().items())
    size = sum(w.norm() ** 2 for w in before.values())
    return float((moved / size) ** 0.5), float((base_moved / size) ** 0.5)


def test_lambda2_keeps_a_past_tasks_effective_weights_fixed() -> None:
    pinned, pinned_base = past_task_drift(lambda2=100.0)
    free, free_base = past_task_drift(lambda2=0.0)
    assert pinned < 0.01  # task 1's weights hardly moved while task 2 trained (relative L2 change)
    assert free > 5 * pinned  # without the term they would have: the base moves freely then
    assert free_base > 5 * pinned_base  # past A are frozen, so the term holds the base itself


def test_regularizer_is_the_sum_of_methods_md_terms() -> None:
    net = DecomposedNet(plain_net())
    net.add_task(0)
    net.finish_task(1e-3)
    net.add_task(1)
    with torch.no_grad():
        for layer in net.layers().values():
            layer.base.mul_(1.1)  # so task 0's drift term is not zero
    expected = torch.zeros(())
    for layer in net.layers().values():
        a, m = layer.adaptive["1"], layer.masks["1"]
        expected += 1e-3 * a.abs().sum() + 1e-4 * 0.5 * (a.pow(2).sum() + m.pow(2).sum())
        theta0 = (
            layer.base * torch.sigmoid(layer.masks["0"]).view(-1, *[1] * (layer.base.dim() - 1)) + layer.adaptive["0"]
        )
        expected += 100.0 * 0.5 * (theta0 - layer.stored.get("0")).pow(2).sum()
    assert torch.allclose(net.regularizer(1e-3, 100.0, 1e-4), expected, rtol=1e-5)
    # in the first task the base is decayed too, as the official client does
    first = DecomposedNet(plain_net())
    first.add_task(0)
    decayed = sum(1e-4 * 0.5 * layer.base.pow(2).sum() for layer in first.layers().values())
    plain = sum(
        1e-3 * layer.adaptive["0"].abs().sum()
        + 1e-4 * 0.5 * (layer.adaptive["0"].pow(2).sum() + layer.masks["0"].pow(2).sum())
        for layer in first.layers().values()
    )
    assert torch.allclose(first.regularizer(1e-3, 100.0, 1e-4), plain + decayed, rtol=1e-5)
    # a finished task's A, mask and bias no longer train
    finished = [layer.adaptive["0"].requires_grad or layer.masks["0"].requires_grad for layer in net.layers().values()]
    assert not any(finished)


def test_the_global_base_is_written_only_where_it_is_non_zero() -> None:
    net = DecomposedNet(plain_net())
    own = {name: t.clone() for name, t in net.base_state().items()}
    incoming = {name: torch.full_like(t, 7.0) for name, t in own.items()}
    first = next(iter(incoming))
    incoming[first][::2] = 0.0  # even units: nobody sent them
    net.load_global_base(incoming)
    now = net.base_state()
    assert torch.equal(now[first][::2], own[first][::2])
    assert torch.all(now[first][1::2] == 7.0)


def test_the_sparse_base_zeroes_whole_least_gated_units() -> None:
    net = DecomposedNet(plain_net())
    net.add_task(3)
    for name, base in net.sparse_base(0.3).items():
        rows = base.reshape(base.shape[0], -1)
        dropped = (rows == 0).all(dim=1)
        assert int(dropped.sum()) == int(0.3 * base.shape[0]), name


@pytest.mark.parametrize("knowledge_entries", [0, 2])
def test_restore_rebuilds_the_same_net_from_its_state_and_structure(knowledge_entries: int) -> None:
    net = DecomposedNet(plain_net())
    net.add_task(2, {n: torch.randn(3, *layer.base.shape) for n, layer in net.layers().items()})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.finish_task(1e-3)
    kb = (
        {n: torch.randn(knowledge_entries, *layer.base.shape) for n, layer in net.layers().items()}
        if knowledge_entries
        else None
    )
    net.add_task(4, kb)
    copy = DecomposedNet.restore(plain_net(), net.structure(), net.state_dict())
    assert copy.structure() == net.structure() == {"tasks": [2, 4], "finished": [2], "knowledge": knowledge_entries}
    x = torch.randn(3, 1, 8, 8)
    for task in (2, 4):
        net.select(task)
        copy.select(task)
        assert torch.equal(net(x), copy(x))
    assert [n for n, p in copy.named_parameters() if p.requires_grad] == [
        n for n, p in net.named_parameters() if p.requires_grad
    ]
