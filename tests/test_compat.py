"""Flower's internals that fedsparse uses, checked against the installed Flower.

Everything here goes through :mod:`fedsparse.compat`; when a Flower upgrade moves or
changes one of them, the test that fails names it and says what to update.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse import compat


def test_a_client_app_without_query_handler_answers_with_the_text_compat_matches(server_identity) -> None:  # type: ignore[no-untyped-def]
    app = ClientApp()
    query = Message(RecordDict({"q": ConfigRecord()}), dst_node_id=5, message_type=MessageType.QUERY)
    context = Context(run_id=1, node_id=5, node_config={}, state=RecordDict(), run_config={})
    try:
        reply = app(query, context)
        reason = reply.error.reason if reply.has_error() else ""
    except Exception as error:  # Flower raises; its engines turn that into the error reply
        reason = str(error)
    assert compat.lacks_query_handler(reason), (
        f"Flower's ClientApp now says {reason!r} for a missing query handler: update compat.NO_QUERY_HANDLER"
    )


def test_message_ids_can_be_set_as_linkstate_sets_them(server_identity) -> None:  # type: ignore[no-untyped-def]
    message = Message(RecordDict(), dst_node_id=5, message_type=MessageType.TRAIN)
    compat.set_message_id(message, "abc")
    assert message.metadata.message_id == "abc", (
        "Message.metadata keeps its id elsewhere now: update compat.set_message_id"
    )


def test_new_run_sets_the_task_identity_new_messages_are_stamped_with() -> None:
    saved = compat.task_identity()
    try:
        run = compat.new_run()
        message = Message(RecordDict(), dst_node_id=5, message_type=MessageType.TRAIN)
        assert message.metadata.run_id == run.run_id, "Flower stamps messages differently: update compat.new_run"
        assert compat.task_identity() == (run.run_id, run.primary_task_id, compat.SUPERLINK_NODE_ID)
    finally:
        compat.set_task_identity(*saved)


def test_validate_message_and_client_errors_keep_their_shape(server_identity) -> None:  # type: ignore[no-untyped-def]
    message = Message(RecordDict(), dst_node_id=5, message_type=MessageType.TRAIN)
    compat.set_message_id(message, "m1")
    assert isinstance(compat.validate_message(message, is_reply_message=False), list)
    reply = compat.client_app_error(ValueError("boom"), message)
    assert reply.has_error() and "boom" in reply.error.reason
    assert reply.metadata.reply_to_message_id == "m1"


def test_app_dir_follows_flowers_install_layout(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    run = compat.Run.create_empty(run_id=7)
    run.fab_id, run.fab_version, run.fab_hash = "fedsparse/fedsparse", "0.1.0", "0123456789abcdef"
    path = compat.app_dir(run)
    assert path.is_relative_to(tmp_path) and "fedsparse" in str(path), (
        f"Flower installs apps elsewhere now ({path}): update compat.app_dir"
    )


def test_clone_is_a_deep_copy_that_encodes_the_same(server_identity) -> None:  # type: ignore[no-untyped-def]
    message = Message(
        RecordDict({"model": ArrayRecord([np.arange(6.0).reshape(2, 3)]), "config": ConfigRecord({"ids": [1, 2]})}),
        dst_node_id=5,
        message_type="train",
    )
    compat.set_message_id(message, "m-1")
    state = RecordDict({"metrics": MetricRecord({"loss": 1.0})})
    context = Context(run_id=1, node_id=5, node_config={"partition-id": 3}, state=state, run_config={"k": 1})
    message_twin, context_twin = compat.clone(message), compat.clone(context)
    assert compat.message_to_bytes(message_twin) == compat.message_to_bytes(message)
    assert compat.context_to_bytes(context_twin) == compat.context_to_bytes(context)
    message_twin.content["config"]["ids"].append(3)
    message_twin.metadata.delivered_at = "later"
    context_twin.state["metrics"]["loss"] = 2.0
    context_twin.state["new"] = ConfigRecord()
    context_twin.node_config["partition-id"] = 9
    assert message.content["config"]["ids"] == [1, 2] and message.metadata.delivered_at != "later"
    assert context.state["metrics"]["loss"] == 1.0 and "new" not in context.state
    assert context.node_config["partition-id"] == 3


def test_records_of_reads_a_kind_of_record_without_leaving_reference_cycles(server_identity) -> None:  # type: ignore[no-untyped-def]
    import gc

    from fedsparse.ledger import message_bytes
    from fedsparse.protocol import arrays_of, config_of, metrics_of

    arrays = ArrayRecord([np.ones(3, dtype=np.float32)])
    content = RecordDict({"arrays": arrays, "config": ConfigRecord({"lr": 0.1}), "metrics": MetricRecord({"n": 1})})
    assert compat.records_of(content, ArrayRecord) == {"arrays": arrays}
    assert list(compat.records_of(content, MetricRecord)) == ["metrics"]
    message = Message(content, dst_node_id=1, message_type=MessageType.TRAIN)
    gc.collect()
    for _ in range(10):
        message_bytes(message), arrays_of(content), config_of(content), metrics_of(content)
        compat.records_of(content, ConfigRecord)
    assert gc.collect() == 0  # Flower's content.array_records view leaves a cycle per access


def test_a_message_split_into_envelope_and_content_joins_back_to_the_same_protobuf(server_identity) -> None:  # type: ignore[no-untyped-def]
    content = RecordDict({"model": ArrayRecord([np.arange(6.0)]), "config": ConfigRecord({"lr": 0.1})})
    message = Message(content, dst_node_id=5, message_type=MessageType.TRAIN)
    compat.set_message_id(message, "m-1")
    envelope, body = compat.envelope_to_bytes(message), compat.content_to_bytes(content)
    assert envelope + body == compat.message_to_bytes(message)
    joined = compat.message_from_parts(envelope, body)
    assert compat.message_to_bytes(joined) == compat.message_to_bytes(message)
    assert joined.metadata.dst_node_id == 5 and joined.content["config"]["lr"] == 0.1

    error = compat.client_app_error(ValueError("boom"), message)
    envelope, body = compat.envelope_to_bytes(error), compat.content_to_bytes(None)
    assert compat.message_to_bytes(compat.message_from_parts(envelope, body)) == compat.message_to_bytes(error)
