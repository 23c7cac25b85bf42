"""Which node is which client, and which clients train in a round.

Flower gives nodes random 64-bit ids, different in every run; experiments are defined
over client ids (the data partition a node holds, ``partition-id`` in its node config).
The server asks every node once for its identity, then samples client ids with a seeded
RNG, so the same seed picks the same clients in every run and on every engine.

On real infrastructure a device also declares what it was set up as (``bitwidth``,
``profile`` in its node config); a node whose declaration contradicts the config's
assignment for its client id is left out rather than trained at the wrong format. A
device that brings its own data may declare how much (``num-examples``): the server then
bounds its replies' weight by that (:meth:`fedsparse.federation.Federation.example_bound`). A
node whose ClientApp has no query handler (a stock Flower ClientApp) cannot say who it
is: it is served under a client id nobody claimed, so it can still join.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedsparse.compat import lacks_query_handler, records_of
from fedsparse.protocol import BITWIDTH, CLIENT_ID, IDENTITY, NUM_EXAMPLES, NUM_PARTITIONS, PROFILE

log = logging.getLogger(__name__)


@dataclass
class NodeDirectory:
    client_by_node: dict[int, int] = field(default_factory=dict)
    declared_examples: dict[int, int] = field(default_factory=dict)  # client id → the num-examples it declared

    @property
    def node_by_client(self) -> dict[int, int]:
        return {client: node for node, client in self.client_by_node.items()}

    def client_of(self, node_id: int) -> int:
        """Client id of a node; unknown nodes map to -1 so they can still be logged."""
        return self.client_by_node.get(node_id, -1)

    def clients(self) -> list[int]:
        return sorted(self.client_by_node.values())


@dataclass(frozen=True)
class Declaration:
    """What a node says of itself: its client id and, if its node config sets them, the
    partition count, bitwidth and device profile it was set up with and the number of
    training examples it holds."""

    client: int
    num_partitions: int | None = None
    bitwidth: int | None = None
    profile: str | None = None
    num_examples: int | None = None

    @classmethod
    def from_record(cls, record: ConfigRecord | None) -> Declaration:
        """Parse an identity record; ``ValueError`` names what is missing or mistyped."""
        if record is None:
            raise ValueError("no identity record")
        client = record.get(CLIENT_ID)
        if isinstance(client, bool) or not isinstance(client, int):
            raise ValueError(f"bad client id {client!r}")
        fields = {NUM_PARTITIONS: int, BITWIDTH: int, PROFILE: str, NUM_EXAMPLES: int}
        for key, kind in fields.items():
            value = record.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
                raise ValueError(f"bad {key} {value!r}")
        examples = record.get(NUM_EXAMPLES)
        if examples is not None and examples < 1:  # type: ignore[operator]
            raise ValueError(f"bad {NUM_EXAMPLES} {examples!r}")
        return cls(client, *(record.get(key) for key in fields))  # type: ignore[arg-type]


# Why a declaration contradicts the run's config (None: it does not).
Vet = Callable[[Declaration], str | None]


def identity_reply(
    message: Message,
    client_id: int,
    num_clients: int,
    bitwidth: int | None = None,
    profile: str | None = None,
    num_examples: int | None = None,
) -> Message:
    """What a ClientApp answers to the identity query; ``bitwidth``, ``profile`` and
    ``num_examples`` only when the device declares them."""
    declared = {BITWIDTH: bitwidth, PROFILE: profile, NUM_EXAMPLES: num_examples}
    record = ConfigRecord(
        {CLIENT_ID: client_id, NUM_PARTITIONS: num_clients, **{k: v for k, v in declared.items() if v is not None}}
    )
    return Message(RecordDict({IDENTITY: record}), reply_to=message)


def _ask(
    grid: Grid, nodes: list[int], timeout: float, directory: NodeDirectory, vet: Vet | None
) -> tuple[dict[int, str], list[int]]:
    """Query ``nodes`` once and fill ``directory``.

    Returns ``{node: why}`` for the nodes worth asking again (no reply, an error, a bad
    or duplicate id) and the nodes without a query handler. A node whose declaration
    ``vet`` objects to is logged and left out for good: asking again would not change it.
    """
    queries = [
        Message(RecordDict({IDENTITY: ConfigRecord()}), dst_node_id=node, message_type=MessageType.QUERY)
        for node in nodes
    ]
    retry = {node: "no reply" for node in nodes}
    anonymous: list[int] = []
    known = set(directory.client_by_node.values())  # a set: O(1) per reply at 10k nodes
    for reply in grid.send_and_receive(queries, timeout=timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            if lacks_query_handler(reply.error.reason or ""):
                retry.pop(node, None)
                anonymous.append(node)
            else:
                retry[node] = f"error: {reply.error.reason}"
            continue
        try:
            declaration = Declaration.from_record(records_of(reply.content, ConfigRecord).get(IDENTITY))
        except ValueError as error:
            retry[node] = str(error)
            continue
        if declaration.client in known:
            retry[node] = f"duplicate client id {declaration.client}"
            continue
        retry.pop(node, None)
        problem = vet(declaration) if vet is not None else None
        if problem is not None:
            log.warning("node %s (client %d) left out of the federation: %s", node, declaration.client, problem)
            continue
        directory.client_by_node[node] = declaration.client
        if declaration.num_examples is not None:
            directory.declared_examples[declaration.client] = declaration.num_examples
        known.add(declaration.client)
    return retry, anonymous


def _adopt(directory: NodeDirectory, anonymous: list[int], num_clients: int) -> None:
    """Serve nodes that cannot identify themselves under the client ids nobody claimed,
    lowest id to lowest node id. Such a node keeps whatever data it holds; the id only
    decides when it is sampled, what it is sent (its profile's bitwidth) and its ledger row."""
    claimed = set(directory.client_by_node.values())
    free = iter(client for client in range(num_clients) if client not in claimed)
    for node in sorted(anonymous):
        client = next(free, None)
        if client is None:
            log.warning("node %s cannot identify itself and no client id is left; left out", node)
            continue
        directory.client_by_node[node] = client
        log.warning("node %s has no query handler (a stock Flower ClientApp?); serving it as client %d", node, client)


def wait_for_nodes(grid: Grid, expected: int, timeout: float, poll: float = 0.05) -> list[int]:
    """Node ids once ``expected`` nodes are connected, or whatever is there at ``timeout``.

    An engine may start the ServerApp while it is still registering nodes (Flower's Ray
    simulation registers them in a loop beside the ServerApp's thread, which at 10,000
    nodes takes seconds), and real SuperNodes join when they come up. Reading the node
    list once would then build the federation from whichever nodes came first.
    """
    deadline = time.monotonic() + timeout
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < expected and time.monotonic() < deadline:
        time.sleep(poll)
        nodes = sorted(grid.get_node_ids())
    if len(nodes) < expected:
        log.warning("%d of %d nodes connected after %.0f s; going on with them", len(nodes), expected, timeout)
    return nodes


def discover(grid: Grid, expected: int, timeout: float, attempts: int = 3, vet: Vet | None = None) -> NodeDirectory:
    """Ask every connected node for its client id (one small query message each).

    A node missing from the directory would silently change which clients the seeded
    sampler picks, so the server first waits for ``expected`` nodes, and nodes that fail
    to answer (an actor still starting, a transient error) are asked again before giving
    up on them. ``vet`` checks what each node declares against the run's config.
    """
    directory = NodeDirectory()
    pending = wait_for_nodes(grid, expected, timeout)
    anonymous: list[int] = []
    for attempt in range(1, attempts + 1):
        failed, no_handler = _ask(grid, pending, timeout, directory, vet)
        anonymous += no_handler
        pending = sorted(failed)
        if not pending:
            break
        for node, why in failed.items():
            what_next = "asking again" if attempt < attempts else "left out of the federation"
            log.warning("node %s did not identify itself (%s); %s", node, why, what_next)
    _adopt(directory, anonymous, expected)
    return directory


class ClientSampler:
    """Seeded choice of client ids per round, mapped to the nodes that hold them."""

    def __init__(self, directory: NodeDirectory, per_round: int, seed: int) -> None:
        self.directory = directory
        self.per_round = per_round
        self.seed = seed

    def sample(self, server_round: int, purpose: str = "train") -> list[int]:
        """Node ids of the clients chosen for ``server_round``, in client-id order."""
        clients = self.directory.clients()
        stream = 0 if purpose == "train" else 1
        rng = np.random.default_rng([self.seed, server_round, stream])
        chosen = sorted(rng.choice(clients, size=min(self.per_round, len(clients)), replace=False))
        nodes = self.directory.node_by_client
        return [nodes[int(c)] for c in chosen]
