"""FedWeIT's server side on hand-built replies: per-unit averaging over senders, the
knowledge base at a task's start, sparse bytes on the wire, screening of sparse uploads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord

from fedsparse.catalog import STRATEGIES
from fedsparse.data import TasksConfig
from fedsparse.ledger import message_bytes
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.protocol import ADAPTIVE, KNOWLEDGE
from fedsparse.screening import screen_replies
from fedsparse.strategies.fedweit import unit_mean
from fedsparse.strategy import StrategyContext
from fedsparse.wire import SPARSE, encode_sparse, encode_sparse_state, float_tensors, sparse_bytes

from ..helpers import reply_from

SHAPES = {"trunk.0.base": (6, 4), "trunk.2.base": (3, 6)}


def _strategy(rounds_per_task: int = 2):  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get("fedweit")
    directory = NodeDirectory({100 + c: c for c in range(3)})
    ctx = StrategyContext(
        ClientSampler(directory, 3, seed=0), client_eval=False, tasks=TasksConfig(rounds_per_task=rounds_per_task)
    )
    return spec.build(spec.params(), ctx)


def _global() -> ArrayRecord:
    torch.manual_seed(0)
    return ArrayRecord({name: Array(torch.randn(shape).numpy()) for name, shape in SHAPES.items()})


def _upload(seed: int, dropped_units: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = {name: torch.randn(shape) for name, shape in SHAPES.items()}
    for name, units in dropped_units.items():
        state[name][units] = 0.0
    return state


def test_each_unit_is_averaged_over_the_clients_that_sent_it() -> None:
    a = {"w": np.array([[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]], dtype=np.float32)}
    b = {"w": np.array([[3.0, 4.0], [7.0, 8.0], [0.0, 0.0]], dtype=np.float32)}
    mean = unit_mean([a, b], weights=[1.0, 3.0])["w"]
    assert np.allclose(mean[0], [0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 4])  # both sent it: weighted
    assert np.allclose(mean[1], [7.0, 8.0])  # only b sent it
    assert np.allclose(mean[2], [5.0, 5.0])  # only a sent it
    assert unit_mean([a, b], [1.0, 1.0])["w"].dtype == np.float32
    nobody = {"w": np.zeros((3, 2), dtype=np.float32)}
    assert np.all(unit_mean([nobody, nobody], [1.0, 1.0])["w"] == 0)  # nobody: zero, the client keeps its own


def test_a_round_sends_the_sparse_global_base_and_aggregates_per_unit(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy()
    start = _global()
    sent = list(strategy.configure_train(1, start, ConfigRecord(), grid=None))
    assert len(sent) == 3 and all(KNOWLEDGE not in m.content.array_records for m in sent)
    for message in sent:
        record = message.content["arrays"]
        assert all(array.stype == SPARSE for array in record.values())
        assert all(torch.equal(float_tensors(record)[n], torch.from_numpy(start[n].numpy())) for n in SHAPES)
    uploads = [_upload(1, {"trunk.0.base": [0, 1]}), _upload(2, {"trunk.0.base": [1, 2]}), _upload(3, {})]
    replies = [
        reply_from(message, encode_sparse_state(state), {"num-examples": 10})
        for message, state in zip(sent, uploads, strict=True)
    ]
    accepted, rejected = screen_replies(sent, replies, lambda node: node - 100)
    assert not rejected
    arrays, _ = strategy.aggregate_train(1, accepted)
    new = float_tensors(arrays)["trunk.0.base"]
    assert torch.allclose(new[1], uploads[2]["trunk.0.base"][1])  # only client 2 sent unit 1
    assert torch.allclose(new[0], (uploads[1]["trunk.0.base"][0] + uploads[2]["trunk.0.base"][0]) / 2)
    assert torch.allclose(new[3], sum(u["trunk.0.base"][3] for u in uploads) / 3, atol=1e-6)


def test_the_upload_costs_a_row_bitmap_plus_the_kept_rows() -> None:
    state = _upload(4, {"trunk.0.base": [0, 3], "trunk.2.base": [1]})
    record = encode_sparse_state(state)
    for name, tensor in state.items():
        kept_rows = int((tensor.reshape(tensor.shape[0], -1) != 0).any(dim=1).sum())
        row_size = int(np.prod(tensor.shape[1:]))
        expected = 1 + (tensor.shape[0] + 7) // 8 + 4 * kept_rows * row_size
        assert len(record[name].data) == expected == sparse_bytes(tensor)
    assert record.count_bytes() == sum(len(a.data) + len(n) for n, a in record.items())


def test_knowledge_at_a_task_start_is_the_other_clients_A_as_they_sent_it(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(rounds_per_task=2)
    start = _global()
    sent = list(strategy.configure_train(2, start, ConfigRecord(), grid=None))  # a task's last round
    adaptive = [encode_sparse_state(_upload(10 + c, {"trunk.0.base": [c]})) for c in range(3)]
    replies = []
    for c, message in enumerate(sent):
        reply = reply_from(message, encode_sparse_state(_upload(c, {})), {"num-examples": 5})
        reply.content[ADAPTIVE] = adaptive[c]
        replies.append(reply)
    accepted, rejected = screen_replies(sent, replies, lambda node: node - 100)
    assert not rejected
    strategy.aggregate_train(2, accepted)
    following = {m.metadata.dst_node_id - 100: m for m in strategy.configure_train(3, start, ConfigRecord(), grid=None)}
    for client, message in following.items():
        knowledge = message.content[KNOWLEDGE]
        others = [c for c in range(3) if c != client]
        assert sorted(knowledge) == sorted(f"kb{j}.{name}" for j in range(2) for name in SHAPES)
        for j, other in enumerate(others):
            for name in SHAPES:
                assert knowledge[f"kb{j}.{name}"].data == adaptive[other][name].data
        assert message_bytes(message) == message.content["arrays"].count_bytes() + knowledge.count_bytes()
    # in the middle of a task, no knowledge travels
    assert all(
        KNOWLEDGE not in m.content.array_records for m in strategy.configure_train(4, start, ConfigRecord(), grid=None)
    )


def _forged_indices(shape: tuple[int, ...]) -> Array:
    values = np.zeros(int(np.prod(shape)), dtype=np.float32)
    values[[2, 5]] = 1.0
    array = encode_sparse(values.reshape(shape))
    data = bytearray(array.data)
    assert data[0] == 2, "expected the indices format for two non-zeros"
    data[1], data[2] = data[2], data[1]  # indices no longer increasing
    return Array(dtype=array.dtype, shape=array.shape, stype=array.stype, data=bytes(data))


@pytest.mark.parametrize("record", [ADAPTIVE, "arrays"])
@pytest.mark.parametrize("fault", ["indices", "shape"])
def test_a_sparse_upload_with_inconsistent_indices_or_shapes_is_rejected(
    server_identity, record: str, fault: str
) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy()
    sent = list(strategy.configure_train(2, _global(), ConfigRecord(), grid=None))
    replies = []
    for c, message in enumerate(sent):
        reply = reply_from(message, encode_sparse_state(_upload(c, {})), {"num-examples": 5})
        reply.content[ADAPTIVE] = encode_sparse_state(_upload(20 + c, {}))
        replies.append(reply)
    bad = replies[1].content[record]
    if fault == "indices":
        bad["trunk.2.base"] = _forged_indices(SHAPES["trunk.2.base"])
    else:
        bad["trunk.2.base"] = encode_sparse(torch.ones(6, 3))
    accepted, rejected = screen_replies(sent, replies, lambda node: node - 100)
    assert [r.client for r in rejected] == [1]
    assert record in rejected[0].reason
    assert ("undecodable" if fault == "indices" else "shape") in rejected[0].reason
    assert len(accepted) == 2


def test_A_sent_in_the_middle_of_a_task_never_becomes_knowledge(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(rounds_per_task=2)
    start = _global()
    for server_round in (1, 2):
        sent = list(strategy.configure_train(server_round, start, ConfigRecord(), grid=None))
        replies = []
        for c, message in enumerate(sent):
            reply = reply_from(message, encode_sparse_state(_upload(c, {})), {"num-examples": 5})
            if server_round == 1:  # a client pushing A when no task ends
                reply.content[ADAPTIVE] = encode_sparse_state(_upload(30 + c, {}))
            replies.append(reply)
        accepted, _ = screen_replies(sent, replies, lambda node: node - 100)
        strategy.aggregate_train(server_round, accepted)
    assert all(
        KNOWLEDGE not in m.content.array_records for m in strategy.configure_train(3, start, ConfigRecord(), grid=None)
    )


def test_a_late_a_joins_the_next_knowledge_base(server_identity) -> None:  # type: ignore[no-untyped-def]
    """Rounds 2 per task: client 2 misses round 2 (task 1's last), so its task-1 A comes
    with its next reply (round 4) and is knowledge at round 5, the next task's start."""
    strategy = _strategy(rounds_per_task=2)
    base = encode_sparse_state(_upload(0, {}))
    a = {c: _upload(10 + c, {}) for c in range(3)}
    for server_round, answering, with_a in (
        (1, (0, 1, 2), ()),
        (2, (0, 1), (0, 1)),
        (3, (0, 1), ()),
        (4, (0, 1, 2), (2,)),
    ):
        sent = {
            m.metadata.dst_node_id - 100: m for m in strategy.configure_train(server_round, base, ConfigRecord(), None)
        }
        if server_round == 3:  # task 2 starts: each gets the other's task-1 A (client 2 sent none)
            assert len(sent[0].content[KNOWLEDGE]) == len(sent[2].content[KNOWLEDGE]) // 2 == len(SHAPES)
        replies = []
        for client in answering:
            reply = reply_from(sent[client], base, {"num-examples": 10})
            if client in with_a:
                reply.content[ADAPTIVE] = encode_sparse_state(a[client])
            replies.append(reply)
        strategy.aggregate_train(server_round, replies)
    fifth = {m.metadata.dst_node_id - 100: m for m in strategy.configure_train(5, base, ConfigRecord(), None)}
    assert KNOWLEDGE not in fifth[2].content.array_records  # its own A is not sent back
    knowledge = float_tensors(fifth[0].content[KNOWLEDGE])
    assert set(knowledge) == {f"kb0.{name}" for name in SHAPES}
    assert torch.equal(knowledge["kb0.trunk.0.base"], a[2]["trunk.0.base"])


def test_a_client_not_sampled_at_a_tasks_start_gets_the_knowledge_base_with_its_next_message(server_identity) -> None:  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get("fedweit")
    ctx = StrategyContext(
        ClientSampler(NodeDirectory({100 + c: c for c in range(3)}), 2, seed=0),
        client_eval=False,
        tasks=TasksConfig(rounds_per_task=3),
    )
    strategy = spec.build(spec.params(), ctx)
    base = encode_sparse_state(_upload(0, {}))
    strategy.pending = {c: encode_sparse_state(_upload(20 + c, {})) for c in range(3)}  # every task-1 A arrived
    served: set[int] = set()
    for server_round in (4, 5, 6):  # task 2
        for message in strategy.configure_train(server_round, base, ConfigRecord(), None):
            client = message.metadata.dst_node_id - 100
            assert (KNOWLEDGE in message.content.array_records) == (client not in served), (server_round, client)
            served.add(client)
    assert served == {0, 1, 2}
