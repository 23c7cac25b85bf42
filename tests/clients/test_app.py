from __future__ import annotations

import pytest
import torch

from fedsparse import protocol
from fedsparse.clients.app import app
from fedsparse.protocol import CLIENT_ID, IDENTITY
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
    later = decode_state(
        app(train_message(task, start, 1002, **{"server-round": 2}), context_for(2, 10)).content["arrays"]
    )
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


def _quantized_start(task: ClientTask, bitwidth: int):  # type: ignore[no-untyped-def]
    from fedsparse.quant import Precision
    from fedsparse.strategy import quantized_copy

    return quantized_copy(encode_model(task.build_model()), Precision.from_bitwidth(bitwidth))


def test_a_low_bit_client_trains_quantization_aware_and_replies_in_its_format(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    from fedsparse.quant import Precision, fake_quantize
    from fedsparse.wire import BITPACKED, float_tensors

    task = ClientTask.from_experiment(quickstart_cfg)
    start = _quantized_start(task, 4)
    reply = app(train_message(task, start, 1001, bitwidth=4), context_for(1, 10))
    assert not reply.has_error() and reply.content["metrics"]["bitwidth"] == 4
    arrays = reply.content["arrays"]
    assert all(a.stype == BITPACKED and a.dtype == "int4" for a in arrays.values())
    assert {k: tuple(a.shape) for k, a in arrays.items()} == {k: tuple(a.shape) for k, a in start.items()}
    weights = float_tensors(arrays)
    for tensor in weights.values():  # on the 4-bit grid, and trained
        assert torch.equal(fake_quantize(tensor, Precision(4, "int")), tensor)
    assert _distance(weights, float_tensors(start)) > 0


def test_fedpaq_clients_upload_a_stochastically_quantized_difference(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    from fedsparse.wire import float_tensors

    task = ClientTask.from_experiment(quickstart_cfg)
    start = _quantized_start(task, 8)
    weights = app(train_message(task, start, 1001, bitwidth=8), context_for(1, 10)).content["arrays"]
    delta = app(train_message(task, start, 1001, bitwidth=8, learner="fedpaq"), context_for(1, 10)).content["arrays"]
    trained, received, step = float_tensors(weights), float_tensors(start), float_tensors(delta)
    moved = {k: trained[k] - received[k] for k in trained}
    # the same training; the upload is its difference, up to one 8-bit step per element
    for name in moved:
        step_size = moved[name].abs().reshape(moved[name].shape[0], -1).amax(1).max() / 127
        assert (step[name] - moved[name]).abs().max() <= step_size * 1.01 + 2 * (trained[name].abs().max() / 127)


def test_a_device_that_declares_another_bitwidth_refuses_the_model(quickstart_cfg, server_identity) -> None:  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    context = context_for(1, 10)
    context.node_config["bitwidth"] = 8
    with pytest.raises(ValueError, match="4-bit model to a 8-bit device"):  # the engine turns it into an error reply
        app(train_message(task, _quantized_start(task, 4), 1001, bitwidth=4), context)


def test_identify_declares_the_devices_own_bitwidth_and_profile(server_identity) -> None:  # type: ignore[no-untyped-def]
    from flwr.app import ConfigRecord, Message, MessageType, RecordDict

    from fedsparse.nodes import Declaration

    query = Message(RecordDict({IDENTITY: ConfigRecord()}), dst_node_id=1001, message_type=MessageType.QUERY)
    context = context_for(1, 3)
    assert Declaration.from_record(app(query, context).content[IDENTITY]) == Declaration(1, 3)
    context.node_config.update({"bitwidth": 8, "profile": "pi"})
    assert Declaration.from_record(app(query, context).content[IDENTITY]) == Declaration(1, 3, 8, "pi")


def test_without_a_task_in_the_message_the_run_config_says_what_to_train(server_identity) -> None:  # type: ignore[no-untyped-def]
    """What Flower's own FedAvg sends: ``arrays`` and a ``config`` holding the round only."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

    from fedsparse.config import ConfigError
    from fedsparse.deployment import experiment_from_run_config

    table = {
        "fedsparse.model.name": "mlp",
        "fedsparse.federation.num_clients": 3,
        "fedsparse.federation.clients_per_round": 3,
    }
    task = ClientTask.from_experiment(experiment_from_run_config(table))
    start = ArrayRecord(task.build_model().state_dict())
    node = {"partition-id": 2, "num-partitions": 3}
    context = Context(run_id=1, node_id=1002, node_config=node, state=RecordDict(), run_config=table)  # type: ignore[arg-type]
    for kind in (MessageType.TRAIN, MessageType.EVALUATE):
        content = RecordDict({"arrays": start, "config": ConfigRecord({"server-round": 1})})
        reply = app(Message(content, dst_node_id=1002, message_type=kind), context)
        assert not reply.has_error(), reply.error
        split = task.client_data(2).train if kind == MessageType.TRAIN else task.client_data(2).val
        assert reply.content["metrics"]["num-examples"] == len(split)
    context.run_config = {}
    content = RecordDict({"arrays": start, "config": ConfigRecord({"server-round": 1})})
    with pytest.raises(ConfigError, match="no fedsparse task"):
        app(Message(content, dst_node_id=1002, message_type=MessageType.TRAIN), context)


@pytest.mark.parametrize(("fraction", "wait"), [(0.25, 6.0), (0.5, 2.0), (1.0, None)])
def test_a_throttled_node_waits_in_proportion_to_its_work(
    monkeypatch: pytest.MonkeyPatch, fraction: float, wait: float | None
) -> None:
    from fedsparse.clients import app as client_app

    waits: list[float] = []
    monkeypatch.setattr(client_app.time, "sleep", waits.append)
    context = context_for(0, 2)
    context.node_config[protocol.THROTTLE] = fraction
    client_app.throttle(context, busy=2.0)  # a device 1/fraction as slow takes 2 s / fraction
    assert waits == ([] if wait is None else [pytest.approx(wait)])


def test_a_throttle_outside_0_1_is_refused() -> None:
    from fedsparse.clients import app as client_app

    context = context_for(0, 2)
    context.node_config[protocol.THROTTLE] = 0.0
    with pytest.raises(ValueError, match="throttle"):
        client_app.throttle(context, busy=1.0)
