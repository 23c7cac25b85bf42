"""The Ray engine: the inline engine's Grid with its clients in Ray actors.

:class:`RayGrid` keeps every node's ``Context`` on the driver, as :class:`InlineGrid`
does, and runs ClientApp calls in a pool of long-lived Ray actors (one per
``client_resources`` share the cluster can hold, spread over its nodes). What makes it
lean next to Flower's Ray engine, which pickles the ClientApp, the Message and the
Context into one blocking actor call per message and polls a LinkState on both sides:

* the run's data is loaded once, by the driver, and put in Ray's object store; each
  actor reads it from there without a copy (:meth:`ClientTask.use_data`);
* each actor builds the ClientApp once and keeps it (and its imports) warm;
* a round's messages go out in even cohorts, a few clients per actor call, two queued on
  each actor at once, so it never waits for the driver to decode one cohort's replies
  or encode the next;
* a content object that several messages share (the model a round broadcasts) is
  encoded and put in the object store once, not once per message.

Messages and Contexts cross to the actors as Flower's protobuf (:mod:`fedsparse.compat`),
never pickled. A client call is exactly the inline engine's (:func:`call_client_app`: its
own copies, its torch thread count, its own RNG), so a seed gives the same bytes and
metrics on both engines. A reply that would arrive after ``send_and_receive``'s timeout
is dropped and its node's Context is not updated; the actor finishes the call first.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterable
from itertools import cycle, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from flwr.app import Message
from flwr.clientapp import ClientApp

from fedsparse.compat import (
    Run,
    content_to_bytes,
    context_from_bytes,
    context_to_bytes,
    envelope_to_bytes,
    message_from_bytes,
    message_from_parts,
    message_to_bytes,
    set_message_id,
    set_task_identity,
)
from fedsparse.inline import InlineGrid, call_client_app, client_threads

if TYPE_CHECKING:
    from fedsparse.config import ClientResources
    from fedsparse.task import ClientTask

log = logging.getLogger(__name__)
T = TypeVar("T")

REACH_SECONDS = 5.0  # how long a cluster's head may take to accept a connection
WORKER_NICENESS = "worker_niceness"  # Ray's system-config key for its workers' niceness
COHORTS_PER_ACTOR = 2  # cohorts queued on each actor: it runs one while the driver handles another


Job = tuple[bytes, int, bytes]  # a message's envelope, the index of its content in the call, the node's context


class ClientWorker:
    """One Ray actor: a warm ClientApp that runs cohorts of client calls."""

    def __init__(self, client_app: ClientApp, task_json: str, data: Any, threads: int, run_id: int) -> None:
        """``data``: the run's data as the driver loaded it (Ray resolves the object-store
        reference to arrays read in place)."""
        from fedsparse.task import ClientTask

        self._app = client_app
        self._threads = threads
        ClientTask.from_json(task_json).use_data(data)
        set_task_identity(run_id, None, None)  # replies are stamped with the run, as on Flower's engines

    def call(self, jobs: list[Job], *contents: bytes) -> list[tuple[bytes, bytes | None]]:
        """Each job (envelope, index of its content in ``contents``, context) in turn: the
        reply and the node's new context (None: the call raised)."""
        done: list[tuple[bytes, bytes | None]] = []
        for envelope, content, context in jobs:
            message = message_from_parts(envelope, contents[content])
            reply, new_context = call_client_app(self._app, message, context_from_bytes(context), self._threads)
            done.append((message_to_bytes(reply), None if new_context is None else context_to_bytes(new_context)))
        return done


def even_split(items: list[T], parts: int) -> list[list[T]]:
    """``items`` in order, cut into at most ``parts`` non-empty runs whose lengths differ by
    at most one (10 in 4: 3, 3, 2, 2), so no actor is left with a short last cohort while
    another still runs a full one."""
    parts = min(parts, len(items))
    if parts < 1:
        return []
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [items[start:stop] for start, stop in pairwise(bounds)]


def actor_count(resources: ClientResources, cluster: dict[str, float], clients: int) -> int:
    """How many actors of ``resources`` the cluster's totals hold at once (at most one per client)."""
    fits = math.floor(cluster.get("CPU", 0.0) / resources.num_cpus + 1e-9)
    if resources.num_gpus > 0:
        fits = min(fits, math.floor(cluster.get("GPU", 0.0) / resources.num_gpus + 1e-9))
    if fits < 1:
        raise RuntimeError(f"the Ray cluster ({cluster}) cannot hold one client of {resources.model_dump()}")
    return min(fits, clients)


class RayGrid(InlineGrid):
    """A Grid whose nodes' ClientApp calls run in Ray actors (see the module docstring)."""

    def __init__(
        self,
        client_app: ClientApp,
        task: ClientTask,
        num_nodes: int,
        run: Run,
        resources: ClientResources,
        *,
        state_root: Path | None = None,
    ) -> None:
        """Ray must be initialised; the actors start here and stop with :meth:`close`."""
        import ray

        super().__init__(client_app, num_nodes, run, state_root=state_root)
        threads = client_threads(resources.num_cpus)
        data = ray.put(task.loaded_data())
        worker = ray.remote(ClientWorker).options(
            num_cpus=resources.num_cpus,
            num_gpus=resources.num_gpus,
            scheduling_strategy="SPREAD",
        )
        count = actor_count(resources, ray.cluster_resources(), num_nodes)
        self._actors: list[Any] = [
            worker.remote(client_app, task.model_dump_json(), data, threads, run.run_id) for _ in range(count)
        ]

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._deliver([self._pending.pop(i) for i in message_ids if i in self._pending], math.inf)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        ids = list(self.push_messages(messages))
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        return self._deliver([self._pending.pop(i) for i in ids], deadline)

    def _deliver(self, messages: list[Message], deadline: float) -> list[Message]:
        """Run every message's ClientApp call on the actors, cohort by cohort, all queued
        at once (cohort i on actor i mod n); the replies that came back before
        ``deadline``, in the messages' order. The reply listener hears of each cohort's
        replies as they arrive (:meth:`InlineGrid.report_replies`)."""
        import ray

        cohorts = even_split(messages, COHORTS_PER_ACTOR * len(self._actors))
        stored: dict[int, Any] = {}  # id of a content object -> its bytes in Ray's object store
        running = {self._submit(actor, cohort, stored): cohort for actor, cohort in zip(cycle(self._actors), cohorts)}
        replies: dict[str, Message] = {}
        while running:
            wait = None if math.isinf(deadline) else max(deadline - time.monotonic(), 0.0)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=wait)
            if not ready:
                log.warning("round timeout: %d client calls still running get no reply", len(running))
                break
            cohort = running.pop(ready[0])
            for message, (reply, context) in zip(cohort, ray.get(ready[0]), strict=True):
                replies[message.metadata.message_id] = self._received(message, reply, context)
            self._replied(len(replies), len(messages))
        return [replies[m.metadata.message_id] for m in messages if m.metadata.message_id in replies]

    def _submit(self, actor: Any, cohort: list[Message], stored: dict[int, Any]) -> Any:
        """Start ``cohort``'s calls on ``actor``. A content object that several messages
        share (a round's broadcast model) is encoded and put in the object store once
        (``stored``), and each call receives each of its contents once."""
        import ray

        contents: list[Any] = []
        position: dict[int, int] = {}  # id of a content object -> its index in ``contents``
        jobs: list[Job] = []
        for message in cohort:
            content = message.content if message.has_content() else None
            key = id(content)
            if key not in stored:
                stored[key] = ray.put(content_to_bytes(content))
            if key not in position:
                position[key] = len(contents)
                contents.append(stored[key])
            context = context_to_bytes(self.node_context(message))
            jobs.append((envelope_to_bytes(message), position[key], context))
        return actor.call.remote(jobs, *contents)

    def _received(self, message: Message, reply_bytes: bytes, context_bytes: bytes | None) -> Message:
        if context_bytes is not None:
            self.commit(message, context_from_bytes(context_bytes))
        reply = message_from_bytes(reply_bytes)
        set_message_id(reply, str(uuid4()))
        return reply


def ray_init_args(address: str | None) -> dict[str, Any]:
    """``ray.init`` arguments: a private local Ray unless ``address`` names a cluster
    (``ray.init()`` with no address would attach to any cluster another process started).

    The private Ray runs its workers at the driver's priority. Ray's default starts them
    at niceness 15, so that the driver and Ray's own daemons win every contended core; in
    a simulation the workers are the clients, the whole workload, and at niceness 15 they
    wait on the driver's every thread. A cluster keeps what its raylets were started with
    (``RAY_worker_niceness=0 ray start ...`` does the same there)."""
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    args: dict[str, Any] = {"address": address or "local", "logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        args["_system_config"] = {WORKER_NICENESS: 0}
    return args


def cluster_resources(address: str) -> dict[str, float]:
    """The resource totals of the Ray cluster at ``address`` (attaches for the reading only,
    unless this process is attached already); ``OSError`` at once if a ``host:port``
    address does not answer."""
    import ray

    if ray.is_initialized():
        return dict(ray.cluster_resources())
    host, _, port = address.rpartition(":")
    if host and port.isdigit():  # Ray itself would retry an unreachable head for minutes
        socket.create_connection((host, int(port)), timeout=REACH_SECONDS).close()
    ray.init(**ray_init_args(address))
    try:
        return dict(ray.cluster_resources())
    finally:
        ray.shutdown()


def current_ray_node() -> str | None:
    """The id of the Ray node this process runs on, None outside Ray (checked without
    importing Ray where nothing has)."""
    if "ray" not in sys.modules:
        return None
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
