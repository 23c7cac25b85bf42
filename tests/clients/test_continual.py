"""The continual ClientApp path, called directly: node state across rounds and a task
boundary, FedWeIT's uploads, and the knowledge base a client accepts."""

from __future__ import annotations

import logging

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Message, MessageType, RecordDict

from fedsparse import protocol
from fedsparse.clients.app import app
from fedsparse.clients.fedweit import NET_STATE, STRUCTURE, FedWeITParams, read_knowledge
from fedsparse.clients.local import MODEL_STATE
from fedsparse.config import apply_overrides, read_yaml, validate_config
from fedsparse.protocol import ADAPTIVE, KNOWLEDGE, TASK_ACCURACY
from fedsparse.strategies.fedweit import base_record
from fedsparse.task import ClientTask
from fedsparse.wire import SPARSE, encode_sparse, encode_sparse_state, float_tensors, sparse_bytes

from ..conftest import REPO
from ..helpers import context_for

DIGITS = [
    "data.dataset=digits",
    "data.path=null",
    "model.options={channels: [8, 16], hidden: 32}",
    "data.tasks.num_tasks=2",
    "data.tasks.rounds_per_task=2",
    "federation.rounds=4",
    "federation.num_clients=2",
    "federation.clients_per_round=2",
    "data.tasks.max_train_per_task=null",
    "data.tasks.max_test_per_task=null",
    "federation.lr=0.005",
    "federation.local_epochs=2",
    "federation.batch_size=32",
]


def digits_task(strategy: str) -> ClientTask:
    raw = apply_overrides(read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"), [*DIGITS, f"strategy.name={strategy}"])
    return ClientTask.from_experiment(validate_config(raw))


def fedweit_message(
    task: ClientTask, server_round: int, base: ArrayRecord, knowledge: ArrayRecord | None = None
) -> Message:
    config = task.to_config()
    config[protocol.SERVER_ROUND] = server_round
    params = FedWeITParams(lambda1=1e-3, lambda2=100.0, weight_decay=1e-4, client_sparsity=0.3)
    protocol.with_learner(config, "fedweit", params.model_dump())
    content = RecordDict({protocol.ARRAYS: encode_sparse_state(float_tensors(base)), protocol.CONFIG: config})
    if knowledge is not None:
        content[KNOWLEDGE] = knowledge
    return Message(content, dst_node_id=1000, message_type=MessageType.TRAIN)


def test_fedweit_client_keeps_its_state_across_rounds_and_a_task_boundary(server_identity) -> None:  # type: ignore[no-untyped-def]
    task = digits_task("fedweit")
    base = base_record(task.initial_model())
    context = context_for(0, 2)
    replies, states = [], []
    for server_round in (1, 2, 3):
        reply = app(fedweit_message(task, server_round, base), context)
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        replies.append(reply)
        states.append(context.state[NET_STATE].to_torch_state_dict())
    structure = dict(context.state.config_records[STRUCTURE])
    first, second = task.continual_data().streams[0]
    assert structure == {"tasks": [first, second], "finished": [first], "knowledge": 0}
    # the task's last round uploads its hard-sparsified A: sparse, and only then
    assert ADAPTIVE not in replies[0].content.array_records and ADAPTIVE in replies[1].content.array_records
    adaptive = replies[1].content[ADAPTIVE]
    nonzero = total = 0
    for name, array in adaptive.items():
        values = float_tensors(ArrayRecord({name: array}))[name]
        assert array.stype == SPARSE and len(array.data) == sparse_bytes(values)
        assert torch.all(values.abs()[values != 0] > 1e-3)  # |A| <= lambda1 was cut
        nonzero, total = nonzero + int((values != 0).sum()), total + values.numel()
        assert torch.equal(values, states[1][name.replace(".base", f".adaptive.{first}")])  # what it keeps
        # learning the next task leaves the finished A exactly as sparse as it was uploaded
        assert torch.equal(values, states[2][name.replace(".base", f".adaptive.{first}")])
    assert 0 < nonzero < total
    # round 3 learns the second task and still reports the first from the stored weights
    accuracies = replies[2].content[protocol.METRICS][TASK_ACCURACY]
    assert len(accuracies) == 2 and accuracies[0] > 0.9
    for reply in replies:
        upload = reply.content[protocol.ARRAYS]
        for name, array in upload.items():
            values = float_tensors(ArrayRecord({name: array}))[name]
            dropped = (values.reshape(values.shape[0], -1) == 0).all(dim=1)
            assert int(dropped.sum()) == int(0.3 * values.shape[0])


def test_the_local_learner_trains_its_own_model_and_sends_no_arrays(server_identity) -> None:  # type: ignore[no-untyped-def]
    task = digits_task("local")
    context = context_for(1, 2)
    snapshots = []
    for server_round in (1, 2):
        config = task.to_config()
        config[protocol.SERVER_ROUND] = server_round
        protocol.with_learner(config, "local")
        message = Message(RecordDict({protocol.CONFIG: config}), dst_node_id=1001, message_type=MessageType.TRAIN)
        reply = app(message, context)
        assert not reply.has_error() and not reply.content.array_records
        snapshots.append({k: v.clone() for k, v in context.state[MODEL_STATE].to_torch_state_dict().items()})
    initial = task.initial_model().state_dict()
    # round 2 continued from round 1's model: it differs from both it and the initial model
    assert any(not torch.equal(snapshots[0][k], initial[k]) for k in initial)
    assert any(not torch.equal(snapshots[1][k], snapshots[0][k]) for k in initial)


def test_malformed_knowledge_entries_are_dropped_and_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    shapes = {"trunk.0.base": (4, 3), "trunk.2.base": (2, 4)}
    rng = np.random.default_rng(0)
    good = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    record = ArrayRecord()
    for entry in range(4):
        for name in shapes:
            record[f"kb{entry}.{name}"] = encode_sparse(good[name] * (entry + 1))
    record["kb1.trunk.2.base"] = encode_sparse(np.ones((4, 2), dtype=np.float32))  # wrong shape
    wrong = encode_sparse(np.eye(4, 3, dtype=np.float32))
    record["kb2.trunk.0.base"] = Array(
        dtype=wrong.dtype, shape=wrong.shape, stype=wrong.stype, data=wrong.data[:-2]
    )  # truncated
    del record["kb3.trunk.2.base"]  # incomplete entry
    with caplog.at_level(logging.WARNING, logger="fedsparse"):
        knowledge = read_knowledge(record, shapes)
    assert {name: tuple(t.shape) for name, t in knowledge.items()} == {"trunk.0": (1, 4, 3), "trunk.2": (1, 2, 4)}
    assert np.allclose(knowledge["trunk.0"][0].numpy(), good["trunk.0.base"])
    rejected = " ".join(r.getMessage() for r in caplog.records)
    for entry in ("kb1", "kb2", "kb3"):
        assert f"entry {entry} rejected" in rejected
    assert read_knowledge(None, shapes) == {}


def test_past_tasks_A_stay_as_sparse_as_at_their_own_end_over_a_split_mnist_stream(  # type: ignore[no-untyped-def]
    server_identity, mnist_dir
) -> None:
    raw = apply_overrides(
        read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"),
        [
            f"data.path={mnist_dir}",
            "data.tasks.num_tasks=3",
            "data.tasks.rounds_per_task=2",
            "federation.rounds=6",
            "federation.num_clients=2",
            "federation.clients_per_round=2",
            "data.tasks.max_train_per_task=300",
            "data.tasks.max_test_per_task=200",
            "federation.local_epochs=2",
        ],
    )
    task = ClientTask.from_experiment(validate_config(raw))
    base = base_record(task.initial_model())
    context = context_for(0, 2)
    stream = task.continual_data().streams[0]

    def nonzeros_of_A(pool_id: int) -> int:
        state = context.state[NET_STATE].to_torch_state_dict()
        return sum(int((t != 0).sum()) for name, t in state.items() if name.endswith(f".adaptive.{pool_id}"))

    at_own_end = {}
    for server_round in range(1, 7):
        reply = app(fedweit_message(task, server_round, base), context)
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        if server_round % 2 == 0:
            at_own_end[stream[server_round // 2 - 1]] = nonzeros_of_A(stream[server_round // 2 - 1])
    assert all(count > 0 for count in at_own_end.values())
    for pool_id, count in at_own_end.items():
        assert nonzeros_of_A(pool_id) <= 1.5 * count
