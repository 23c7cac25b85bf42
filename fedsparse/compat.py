"""Every use of Flower's internals, in one place.

fedsparse runs on Flower's public API (``flwr.app``, ``flwr.serverapp``,
``flwr.clientapp``, ``flwr.simulation``) except for what this module wraps: pieces of
Flower's own engines that an in-process engine and a deployment guard need to behave
exactly as Flower does. ``tests/test_compat.py`` checks each against the installed
Flower, so an upgrade that moves one fails there, naming what to update, and nowhere
else. They are those of Flower 1.41.
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp.client_app import ClientAppException
from flwr.common.config import get_project_dir
from flwr.common.constant import (
    NODE_ID_NUM_BYTES,
    NUM_PARTITIONS_KEY,
    PARTITION_ID_KEY,
    RUN_ID_NUM_BYTES,
    SUPERLINK_NODE_ID,
    TASK_ID_NUM_BYTES,
    ErrorCode,
)
from flwr.common.serde import (
    context_from_proto,
    context_to_proto,
    error_to_proto,
    message_from_proto,
    message_to_proto,
    metadata_to_proto,
    recorddict_to_proto,
)
from flwr.proto.message_pb2 import Context as ProtoContext
from flwr.proto.message_pb2 import Message as ProtoMessage
from flwr.server.utils.validator import validate_message
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.grid.inmemory_grid import InMemoryGrid

__all__ = [
    "NODE_ID_NUM_BYTES",
    "NUM_PARTITIONS_KEY",
    "PARTITION_ID_KEY",
    "SUPERLINK_NODE_ID",
    "Run",
    "app_dir",
    "client_app_error",
    "content_to_bytes",
    "context_from_bytes",
    "context_to_bytes",
    "envelope_to_bytes",
    "flower_strategy_state",
    "lacks_query_handler",
    "message_from_bytes",
    "message_from_parts",
    "message_to_bytes",
    "new_run",
    "random_id",
    "restore_flower_strategy_state",
    "set_message_id",
    "simulated_supernodes",
    "validate_message",
]

# What Flower's ClientApp answers to a message type it has no handler for
# (flwr/clientapp/client_app.py): the node runs, but cannot identify itself.
NO_QUERY_HANDLER = "No query function registered"


RecordKind = TypeVar("RecordKind", ArrayRecord, ConfigRecord, MetricRecord)


def records_of(content: RecordDict, kind: type[RecordKind]) -> dict[str, RecordKind]:
    """The records of one kind in ``content`` by name, as a plain dict to read.

    Flower's ``RecordDict.array_records`` (and its config and metric twins) builds a view
    that writes through to the RecordDict and holds a bound method of itself: a reference
    cycle per access, which only the cyclic collector frees. On the per-message paths (the
    ledger, node discovery, screening) those cycles made the collector run so often that it
    took a third of the time to discover 100,000 nodes."""
    return {name: record for name, record in content.items() if isinstance(record, kind)}


def lacks_query_handler(error_reason: str) -> bool:
    """Whether an error reply says the node's ClientApp has no query handler."""
    return NO_QUERY_HANDLER in error_reason


def set_message_id(message: Message, message_id: str) -> None:
    """Give ``message`` an id, as Flower's LinkState does when a message is stored."""
    message.metadata.__dict__["_message_id"] = message_id


def random_id(num_bytes: int) -> int:
    """A random unsigned id as Flower draws them (its helper's module imports the whole
    LinkState stack), never 0 or the SuperLink's own node id."""
    while (value := int.from_bytes(os.urandom(num_bytes), "little")) in (0, SUPERLINK_NODE_ID):
        pass
    return value


def new_run() -> Run:
    """A run with fresh ids, set as this process's task identity (Flower stamps every
    new Message with it), as ``flwr.simulation.run_simulation`` sets one up."""
    run = Run.create_empty(run_id=random_id(RUN_ID_NUM_BYTES))
    run.primary_task_id = random_id(TASK_ID_NUM_BYTES)
    set_task_identity(run.run_id, run.primary_task_id, SUPERLINK_NODE_ID)
    return run


def task_identity() -> tuple[int | None, int | None, int | None]:
    """The process's task identity (run id, task id, node id), to put back later."""
    return TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id


def set_task_identity(run_id: int | None, task_id: int | None, node_id: int | None) -> None:
    for name, value in (("_run_id", run_id), ("_task_id", task_id), ("_node_id", node_id)):
        setattr(TaskIdentity, name, value)


def client_app_error(error: Exception, reply_to: Message) -> Message:
    """The error reply Flower's engines send when a ClientApp raises."""
    wrapped = ClientAppException(str(error))
    reason = f"{type(wrapped)}:<'{wrapped}'>"
    return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=reply_to)


def simulated_supernodes(grid: Grid, settle: float = 0.5, timeout: float = 30.0) -> int | None:
    """The number of SuperNodes of Flower's simulation runtime (``flwr run`` on a local
    SuperLink) that ``grid`` belongs to; None when ``grid`` is not that runtime's (real
    SuperNodes join whenever they come up, so no count is final there).

    The runtime starts the ServerApp, then registers its nodes in one quick loop: the count
    is read once it is non-zero and has held for ``settle`` seconds (at most ``timeout``)."""
    if not isinstance(grid, InMemoryGrid):
        return None
    deadline = time.monotonic() + timeout
    count, since = len(list(grid.get_node_ids())), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(settle / 5)
        now = len(list(grid.get_node_ids()))
        if now != count:
            count, since = now, time.monotonic()
        elif count and time.monotonic() - since >= settle:
            break
    return count


def app_dir(run: Run) -> Path:
    """Where Flower installed a run's FAB (the rule its own loader uses)."""
    return Path(get_project_dir(run.fab_id, run.fab_version, run.fab_hash))


# A Flower strategy's server state between rounds, by attribute: the FedOpt family's
# moments (dicts by array name) and FedAvgM's momentum (a list in array order). Each is
# None until the first aggregation.
FLOWER_STRATEGY_STATE: dict[str, type] = {"m_t": dict, "v_t": dict, "momentum_vector": list}


def flower_strategy_state(strategy: object) -> dict[str, dict[str, np.ndarray]]:
    """The server state ``strategy`` holds (none for a stateless one), as arrays by name."""
    state: dict[str, dict[str, np.ndarray]] = {}
    for attribute in FLOWER_STRATEGY_STATE:
        value = getattr(strategy, attribute, None)
        if isinstance(value, dict):
            state[attribute] = dict(value)
        elif isinstance(value, list):
            state[attribute] = {str(index): array for index, array in enumerate(value)}
    return state


def restore_flower_strategy_state(strategy: object, state: dict[str, dict[str, np.ndarray]]) -> None:
    """Put back what :func:`flower_strategy_state` took."""
    for attribute, arrays in state.items():
        if FLOWER_STRATEGY_STATE[attribute] is list:
            setattr(strategy, attribute, [arrays[str(index)] for index in range(len(arrays))])
        else:
            setattr(strategy, attribute, dict(arrays))


def message_to_bytes(message: Message) -> bytes:
    """A Message as Flower's protobuf (what its gRPC transport sends), metadata included."""
    return bytes(message_to_proto(message).SerializeToString())


def message_from_bytes(data: bytes) -> Message:
    proto = ProtoMessage()
    proto.ParseFromString(data)
    return message_from_proto(proto)


def envelope_to_bytes(message: Message) -> bytes:
    """A Message's protobuf without its content (metadata, error): joined to
    :func:`content_to_bytes` of its content it is :func:`message_to_bytes`'s message
    (protobuf merges concatenated fields), so messages sharing one content object can
    share its bytes."""
    envelope = ProtoMessage(metadata=metadata_to_proto(message.metadata))
    if message.has_error():
        envelope.error.CopyFrom(error_to_proto(message.error))
    return bytes(envelope.SerializeToString())


def content_to_bytes(content: RecordDict | None) -> bytes:
    """A message's content (None: it has none) as the rest of :func:`envelope_to_bytes`."""
    if content is None:
        return b""
    return bytes(ProtoMessage(content=recorddict_to_proto(content)).SerializeToString())


def message_from_parts(envelope: bytes, content: bytes) -> Message:
    """The Message whose envelope and content these are (parsed in place, not joined)."""
    proto = ProtoMessage()
    proto.ParseFromString(envelope)
    proto.MergeFromString(content)
    return message_from_proto(proto)


def context_to_bytes(context: Context) -> bytes:
    """A node's Context (node config, state, run config) as Flower's protobuf."""
    return bytes(context_to_proto(context).SerializeToString())


def context_from_bytes(data: bytes) -> Context:
    proto = ProtoContext()
    proto.ParseFromString(data)
    return context_from_proto(proto)


_SHARED_LEAVES = (type(None), bool, int, float, str, bytes)  # immutable: a copy may share them


@functools.cache
def _rebuilt_by_attributes(kind: type) -> bool:
    """Whether :func:`clone` copies ``kind`` attribute by attribute: a Flower class whose
    instances keep all their state in ``__dict__`` (no slots anywhere in its MRO)."""
    slotted = any(vars(base).get("__slots__") for base in kind.__mro__)
    return kind.__module__.startswith("flwr.") and "__dict__" in dir(kind) and not slotted


def clone(obj: Any) -> Any:
    """A deep copy of a Flower ``Message`` or ``Context``, equal to ``copy.deepcopy``'s but
    about twice as fast: Flower's records are plain objects over dicts and lists of
    immutable leaves (an ``Array`` holds ``bytes``), so they are rebuilt attribute by
    attribute, sharing the leaves and the records' type-check functions; anything else
    falls back to ``copy.deepcopy``."""
    kind: Any = type(obj)
    if kind in _SHARED_LEAVES:
        return obj
    if kind is list or kind is tuple:
        return kind(clone(item) for item in obj)
    if kind is dict or kind is OrderedDict:
        return kind((key, clone(value)) for key, value in obj.items())
    if _rebuilt_by_attributes(kind):
        twin = kind.__new__(kind)
        twin.__dict__.update({name: value if callable(value) else clone(value) for name, value in vars(obj).items()})
        return twin
    return copy.deepcopy(obj)
