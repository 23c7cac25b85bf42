"""Which node is which client, and which clients train in a round.

Flower gives nodes random 64-bit ids, different in every run; experiments are defined
over client ids (the data partition a node holds, ``partition-id`` in its node config).
The server asks every node once for its identity, then samples client ids with a seeded
RNG, so the same seed picks the same clients in every run and on every engine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

log = logging.getLogger("fedsparse")

IDENTITY = "identity"
CLIENT_ID = "client-id"


@dataclass
class NodeDirectory:
    client_by_node: dict[int, int] = field(default_factory=dict)

    @property
    def node_by_client(self) -> dict[int, int]:
        return {client: node for node, client in self.client_by_node.items()}

    def client_of(self, node_id: int) -> int:
        """Client id of a node; unknown nodes map to -1 so they can still be logged."""
        return self.client_by_node.get(node_id, -1)

    def clients(self) -> list[int]:
        return sorted(self.client_by_node.values())


def identity_reply(message: Message, client_id: int, num_clients: int) -> Message:
    """What a ClientApp answers to the identity query."""
    record = ConfigRecord({CLIENT_ID: client_id, "num-partitions": num_clients})
    return Message(RecordDict({IDENTITY: record}), reply_to=message)


def _ask(grid: Grid, nodes: list[int], timeout: float, directory: NodeDirectory) -> dict[int, str]:
    """Query ``nodes`` once; fill ``directory``; return ``{node: why}`` for the unanswered."""
    queries = [
        Message(RecordDict({IDENTITY: ConfigRecord()}), dst_node_id=node, message_type=MessageType.QUERY)
        for node in nodes
    ]
    failed = {node: "no reply" for node in nodes}
    known = set(directory.client_by_node.values())  # a set: O(1) per reply at 10k nodes
    for reply in grid.send_and_receive(queries, timeout=timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            failed[node] = f"error: {reply.error.reason}"
            continue
        record = reply.content.config_records.get(IDENTITY)
        client = record.get(CLIENT_ID) if record is not None else None
        if not isinstance(client, int) or client in known:
            failed[node] = f"bad or duplicate client id {client!r}"
            continue
        directory.client_by_node[node] = client
        known.add(client)
        failed.pop(node, None)
    return failed


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


def discover(grid: Grid, expected: int, timeout: float, attempts: int = 3) -> NodeDirectory:
    """Ask every connected node for its client id (one small query message each).

    A node missing from the directory would silently change which clients the seeded
    sampler picks, so the server first waits for ``expected`` nodes, and nodes that fail
    to answer (an actor still starting, a transient error) are asked again before giving
    up on them.
    """
    directory = NodeDirectory()
    pending = wait_for_nodes(grid, expected, timeout)
    failed: dict[int, str] = {}
    for attempt in range(1, attempts + 1):
        failed = _ask(grid, pending, timeout, directory)
        pending = sorted(failed)
        if not pending:
            break
        for node, why in failed.items():
            what_next = "asking again" if attempt < attempts else "left out of the federation"
            log.warning("node %s did not identify itself (%s); %s", node, why, what_next)
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
