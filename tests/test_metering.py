"""The metering grid hands on replies as from the nodes they answer."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message
from flwr.supercore.run import Run

from fedsparse.inline import InlineGrid
from fedsparse.ledger import ByteLedger
from fedsparse.metering import MeteredGrid
from fedsparse.protocol import IDENTITY


class OneDeadNode(InlineGrid):
    """The fedsparse ClientApp on 3 nodes, one of which stopped sending heartbeats: the
    SuperLink answers for it, with Flower's own NODE_UNAVAILABLE error reply."""

    def __init__(self) -> None:
        from fedsparse.clients.app import app

        super().__init__(app, 3, Run.create_empty(run_id=1))
        self.dead = sorted(self.get_node_ids())[1]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        alive = [m for m in messages if m.metadata.dst_node_id != self.dead]
        replies = list(super().send_and_receive(alive, timeout=timeout))
        for message in messages:
            if message.metadata.dst_node_id == self.dead:
                message.metadata.__dict__["_message_id"] = "pushed-to-the-dead-node"
                replies.append(create_message_error_unavailable_res_message(message.metadata, "node_unavail"))
        return replies


@pytest.mark.usefixtures("server_identity")
def test_a_superlink_error_reply_is_the_dead_nodes() -> None:
    inner = OneDeadNode()
    grid = MeteredGrid(inner, ByteLedger())
    queries = [
        Message(RecordDict({IDENTITY: ConfigRecord()}), dst_node_id=node, message_type=MessageType.QUERY)
        for node in inner.get_node_ids()
    ]
    replies = list(grid.send_and_receive(queries, timeout=30))
    assert sorted(r.metadata.src_node_id for r in replies) == sorted(inner.get_node_ids())
    dead = next(r for r in replies if r.metadata.src_node_id == inner.dead)
    assert dead.has_error() and "Node Unavailable" in dead.error.reason
    assert dead.metadata.reply_to_message_id == "pushed-to-the-dead-node"
