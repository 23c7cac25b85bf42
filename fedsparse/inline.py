"""The inline engine: the same ServerApp and ClientApp as on Ray, in one process.

Flower's Ray engine pays, per message, a blocking Ray call that cloudpickles the
ClientApp, the Message and the Context, plus 0.1 s polling on both sides of a LinkState;
for the small models most FL research simulates, that engine overhead, not training, is
the cost (see ``simulations/bench_engine.py``). :class:`InlineGrid` is a Flower ``Grid``
whose ``send_and_receive`` hands each Message straight to the ClientApp, with one
``Context`` per node kept across rounds, exactly as Flower's simulation keeps them.

What it keeps equal to the Ray engine, so bytes and results are identical for a seed:

* every message still passes through the wire codecs and the byte ledger (the
  ``MeteredGrid`` wraps this grid as it wraps Ray's);
* the ClientApp sees its own copy of the message, and a node's ``Context`` changes only
  when its ClientApp returns (a raising ClientApp leaves it as it was, as on Ray);
* clients train with the torch thread count a Ray actor gets for
  ``client_resources.num_cpus`` (``OMP_NUM_THREADS`` = floor(num_cpus), at least 1,
  unless the environment sets it), because float results depend on the thread count;
* a client's global RNG use does not leak into the server's (each Ray actor has its own);
* message validation, node config (``partition-id``, ``num-partitions``) and error
  replies (``ClientAppException`` → ``CLIENT_APP_RAISED_EXCEPTION``) follow Flower's.

Clients run one after another in the server's thread, so a ``timeout`` cannot interrupt
a client that hangs; a reply that would come after the deadline is dropped, as
``send_and_receive`` on Ray would not return it.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import torch
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fedsparse import protocol
from fedsparse.compat import (
    NODE_ID_NUM_BYTES,
    NUM_PARTITIONS_KEY,
    PARTITION_ID_KEY,
    Run,
    client_app_error,
    clone,
    lacks_query_handler,
    random_id,
    set_message_id,
    validate_message,
)
from fedsparse.node_state import restore_node_state, save_node_state

log = logging.getLogger(__name__)


def client_threads(num_cpus: float) -> int:
    """The torch thread count of a Ray actor given ``num_cpus`` (Ray's own rule)."""
    from_env = os.environ.get("OMP_NUM_THREADS")
    if from_env:
        return int(from_env)
    return max(math.floor(num_cpus), 1)


@contextmanager
def isolated_client(threads: int) -> Iterator[None]:
    """Give a client call its own torch thread count and global RNG, as its own process would."""
    server_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(server_threads)


ReplyListener = Callable[[int, int], None]  # (replies so far, messages sent) of one send_and_receive


class InlineGrid(Grid):
    """A Grid whose nodes are ClientApp calls in this process, one ``Context`` per node."""

    def __init__(
        self,
        client_app: ClientApp,
        num_nodes: int,
        run: Run,
        *,
        threads: int = 1,
        state_root: Path | None = None,
    ) -> None:
        """``state_root``: each node's state (whatever its learner leaves in
        ``Context.state``) is saved after every round it trains, in
        ``state_root/client-<id>`` (:mod:`fedsparse.node_state`), and restored from there
        when the node's Context holds none (a resumed run)."""
        self._app = client_app
        self._run = run
        self._threads = threads
        self._pending: dict[str, Message] = {}
        self._state_root = state_root
        # node id -> partition id, in partition order; the random ids ascend with the
        # partitions, so nodes that cannot say who they are (a stock ClientApp has no query
        # handler) are served as the client ids of their partitions (fedsparse.nodes._adopt)
        node_ids: set[int] = set()
        while len(node_ids) < num_nodes:
            node_ids.add(random_id(NODE_ID_NUM_BYTES))
        self._partition_of = {node_id: partition for partition, node_id in enumerate(sorted(node_ids))}
        self._contexts: dict[int, Context] = {}  # a node's Context, from its first successful call
        self._listener: ReplyListener | None = None

    def report_replies(self, listener: ReplyListener | None) -> None:
        """Call ``listener(done, sent)`` in :meth:`send_and_receive` as each reply arrives
        (``done`` of the ``sent`` messages have answered or run out of time); ``None``: stop."""
        self._listener = listener

    def _replied(self, done: int, sent: int) -> None:
        if self._listener is not None:
            self._listener(done, sent)

    # --- run and nodes
    @property
    def run(self) -> Run:
        return Run(**vars(self._run))

    def set_run(self, run: Run) -> None:
        if run.run_id != self._run.run_id:
            raise RuntimeError(f"Cannot find the run with ID: {run.run_id}")
        self._run = run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._partition_of)

    def context_of(self, node_id: int) -> Context:
        """A node's current Context (what its ClientApp sees next), kept from now on."""
        if node_id not in self._contexts:
            self._contexts[node_id] = self._fresh_context(node_id)
        return self._contexts[node_id]

    def _fresh_context(self, node_id: int) -> Context:
        """The Context a node starts the run with: its node config and an empty state.
        Built when first needed, so registering 10^5 nodes costs only their ids."""
        partition_id = self._partition_of[node_id]
        node_config: dict[str, bool | float | int | str] = {
            PARTITION_ID_KEY: partition_id,
            NUM_PARTITIONS_KEY: len(self._partition_of),
        }
        return Context(
            run_id=self._run.run_id,
            node_id=node_id,
            node_config=node_config,
            state=RecordDict(),
            run_config=dict(self._run.override_config),
        )

    def node_context(self, message: Message) -> Context:
        """The Context ``message``'s node is called with: its committed one (a fresh one
        before its first success) whose state, for a training message under a state
        root, is the one it had when the message's round began (restored from the node's
        folder when the Context holds none, as after a resume)."""
        node_id = message.metadata.dst_node_id
        context = self._contexts.get(node_id)
        if context is None:
            context = self._fresh_context(node_id)
        kept = self._kept_state(message)
        if kept is not None:
            restored = restore_node_state(context, *kept)
            if restored is not None:
                log.info("node state restored from %s", restored)
        return context

    def _kept_state(self, message: Message) -> tuple[Path, int] | None:
        """Where ``message``'s node keeps its state and the message's round; None when
        nodes keep none on disk (no state root) or the message trains nothing."""
        if self._state_root is None or message.metadata.message_type != MessageType.TRAIN:
            return None
        partition_id = self._partition_of[message.metadata.dst_node_id]
        folder = self._state_root / f"client-{partition_id}"
        return folder, protocol.server_round(protocol.config_of(message.content), default=0)

    def commit(self, message: Message, context: Context) -> None:
        """Keep ``context`` as the node's after a successful call; under a state root a
        training call's state is saved for its round too."""
        self._contexts[message.metadata.dst_node_id] = context
        kept = self._kept_state(message)
        if kept is not None:
            save_node_state(context, *kept)

    # --- messages
    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Queue messages for their nodes; invalid ones are logged and get no id, as in Flower."""
        ids: list[str] = []
        for message in messages:
            set_message_id(message, str(uuid4()))
            errors = validate_message(message, is_reply_message=False)
            if message.metadata.dst_node_id not in self._partition_of:
                errors.append(f"unknown destination node {message.metadata.dst_node_id}")
            if message.metadata.run_id != self._run.run_id:
                errors.append(f"invalid run ID {message.metadata.run_id}")
            if errors:
                log.error("message not sent: %s", "; ".join(errors))
                continue
            self._pending[message.metadata.message_id] = message
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Run the ClientApp for each pending message asked for; return the replies."""
        wanted = [i for i in message_ids if i in self._pending]
        return [self._call(self._pending.pop(i)) for i in wanted]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        ids = list(self.push_messages(messages))
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        for done, message_id in enumerate(ids, start=1):
            message = self._pending.pop(message_id)
            if time.monotonic() >= deadline:
                continue  # the round's time is up: no reply, as on Ray
            reply = self._call(message)
            if time.monotonic() < deadline:
                replies.append(reply)
            self._replied(done, len(ids))
        return replies

    def _call(self, message: Message) -> Message:
        """Run the ClientApp on a copy of ``message``; commit the node's Context on success."""
        committed = message.metadata.dst_node_id in self._contexts
        callee = self.node_context(message)  # the call's own copy of a Context others hold
        reply, context = call_client_app(
            self._app, clone(message), clone(callee) if committed else callee, self._threads
        )
        if context is not None:
            self.commit(message, context)
        set_message_id(reply, str(uuid4()))
        return reply


def call_client_app(app: ClientApp, message: Message, context: Context, threads: int) -> tuple[Message, Context | None]:
    """Deliver ``message`` to ``app`` with ``context`` (both the callee's own copies): the
    reply, and the node's new Context (None when the ClientApp raised: its error reply, as
    Flower's engines send, and the old Context stays)."""
    message.metadata.delivered_at = str(time.time())
    try:
        with isolated_client(threads):
            reply = app(message, context)
    except Exception as ex:  # a client's fault becomes its error reply, as on Ray
        if lacks_query_handler(str(ex)):  # a stock ClientApp asked who it is: expected, no traceback
            return client_app_error(ex, message), None
        log.error("ClientApp of node %s raised: %s\n%s", message.metadata.dst_node_id, ex, traceback.format_exc())
        return client_app_error(ex, message), None
    return reply, context
