from __future__ import annotations


from fedsparse.clients.app import app
from fedsparse.nodes import CLIENT_ID, IDENTITY
from fedsparse.task import ClientTask
from fedsparse.wire import decode_state, encode_model

from ..helpers import context_for, train_message


def _distance(a: dict, b: dict) -> float:
    return float(sum(((a[k] - b[k]) ** 2).sum() for k in a) ** 0.5)


def test_train_reply_mirrors_the_model_and_counts_local_examples(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    start = encode_model(task.build_model())
    reply = app(train_message(task, start, node_id=1003), context_for(3, 10))
    assert not reply.has_error()
    arrays = reply.content["arrays"]
    assert {k: (v.shape, v.dtype) for k, v in arrays.items()} == {k: (v.shape, v.dtype) for k, v in start.items()}
    metrics = reply.content["metrics"]
    assert metrics["num-examples"] == len(task.client_data(3).train)
    assert _distance(decode_state(arrays), decode_state(start)) > 0  # it trained


def test_training_is_seeded_by_round_and_client(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    start = encode_model(task.build_model())
    first = decode_state(app(train_message(task, start, 1002), context_for(2, 10)).content["arrays"])
    again = decode_state(app(train_message(task, start, 1002), context_for(2, 10)).content["arrays"])
    later = decode_state(app(train_message(task, start, 1002, **{"server-round": 2}), context_for(2, 10)).content["arrays"])
    assert _distance(first, again) == 0
    assert _distance(first, later) > 0


def test_fedprox_mu_keeps_weights_near_the_global_model(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    start = encode_model(task.build_model())
    base = decode_state(start)

    def drift(mu: float) -> float:
        reply = app(train_message(task, start, 1001, **{"proximal-mu": mu}), context_for(1, 10))
        return _distance(decode_state(reply.content["arrays"]), base)

    assert drift(5.0) < 0.7 * drift(0.0)


def test_evaluate_and_identify(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    from flwr.app import ConfigRecord, Message, MessageType, RecordDict

    task = ClientTask.from_experiment(quickstart_cfg)
    msg = train_message(task, encode_model(task.build_model()), 1004)
    msg.metadata.message_type = MessageType.EVALUATE
    reply = app(msg, context_for(4, 10))
    assert reply.content["metrics"]["num-examples"] == len(task.client_data(4).val)
    assert 0.0 <= reply.content["metrics"]["val_accuracy"] <= 1.0
    query = Message(RecordDict({IDENTITY: ConfigRecord()}), dst_node_id=1004, message_type=MessageType.QUERY)
    assert app(query, context_for(4, 10)).content[IDENTITY][CLIENT_ID] == 4
