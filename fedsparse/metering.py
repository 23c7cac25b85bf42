"""A Grid wrapper that writes every message's array bytes to the ledger.

It sits between the server loop and whatever Grid the engine provides (Ray simulation,
deployment), so the count is the same for every engine and every strategy. It also
hands on every reply as coming from the node it answers: on real infrastructure the
SuperLink itself answers for a node that stopped sending heartbeats (Flower's
``NODE_UNAVAILABLE`` error), from its own node id, and the server would otherwise see a
reply from a node it never asked while the dead node seems silent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import Message
from flwr.serverapp import Grid

from fedsparse.ledger import DOWN, UP, ByteLedger, message_bytes


class MeteredGrid(Grid):
    def __init__(self, inner: Grid, ledger: ByteLedger) -> None:
        self.inner = inner
        self.ledger = ledger
        self.round = 0  # discovery, before any round, is round 0
        self.client_of: Callable[[int], int] = lambda node_id: node_id

    def begin_round(self, server_round: int, client_of: Callable[[int], int]) -> None:
        """Count what follows as ``server_round``'s, each node under ``client_of(node)``."""
        self.round = server_round
        self.client_of = client_of

    # --- metering
    def _count(self, messages: Iterable[Message], direction: str) -> None:
        for msg in messages:
            node = msg.metadata.dst_node_id if direction == DOWN else msg.metadata.src_node_id
            self.ledger.record(
                self.round, self.client_of(node), direction, msg.metadata.message_type, message_bytes(msg)
            )

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        ids = list(self.inner.push_messages(messages))
        self._count(messages, DOWN)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.inner.pull_messages(message_ids))
        self._count(replies, UP)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        replies = _from_addressees(messages, self.inner.send_and_receive(messages, timeout=timeout))
        self._count(messages, DOWN)
        self._count(replies, UP)
        return replies

    def report_replies(self, listener: Callable[[int, int], None] | None) -> bool:
        """Have the engine's grid call ``listener(done, sent)`` as each reply of a
        :meth:`send_and_receive` arrives; False where it cannot (fedsparse's inline and Ray
        grids can, Flower's own grid hands its replies over only all at once)."""
        from fedsparse.inline import InlineGrid

        if not isinstance(self.inner, InlineGrid):
            return False
        self.inner.report_replies(listener)
        return True

    # --- plain delegation
    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self.inner.run

    def set_run(self, run) -> None:  # type: ignore[no-untyped-def]
        self.inner.set_run(run)

    def create_message(self, *args, **kwargs) -> Message:  # type: ignore[no-untyped-def]
        return self.inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()


def _from_addressees(sent: list[Message], replies: Iterable[Message]) -> list[Message]:
    """``replies``, with every error reply another party made for a message (the
    SuperLink, for an unreachable node) re-issued from the node the message went to,
    error kept. ``sent`` carry their message ids once pushed."""
    addressed = {message.metadata.message_id: message for message in sent}
    out = []
    for reply in replies:
        original = addressed.get(reply.metadata.reply_to_message_id)
        if original is not None and reply.has_error() and reply.metadata.src_node_id != original.metadata.dst_node_id:
            reply = Message(reply.error, reply_to=original)
        out.append(reply)
    return out
