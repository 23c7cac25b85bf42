"""Screening of client replies before any strategy sees them.

A reply must mirror what was sent: the same array names, shapes, dtypes and encodings (a
b-bit payload is checked against the b-bit payload that client received, and the
``bitwidth`` the client declares against the one it was sent), no more bytes than such
an array can honestly take, finite floats, and a positive, finite, whole ``num-examples``
within the client's :class:`ExampleBound` (a forged 10^12 would otherwise own the
average). Anything else is rejected with a reason and logged; the round goes on with the
rest. Accepted replies come back sorted by client
id, so aggregation never depends on arrival order.

A run's rejections are tallied by kind (:class:`RejectionTally`), so its summary can say
why rounds were lost.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord

from fedsparse import protocol
from fedsparse.compat import records_of
from fedsparse.wire import float_values

log = logging.getLogger(__name__)

NUM_EXAMPLES = protocol.NUM_EXAMPLES
BITWIDTH = protocol.BITWIDTH

T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    client: int
    reason: str


class RejectedReply(ValueError):
    pass


@dataclass(frozen=True)
class ExampleBound:
    """The most ``num-examples`` a client may report, and what that number is, as the
    rejection reason says it: ``exceeds the <limit> <basis>``."""

    limit: int
    basis: str


class RejectionTally:
    """A run's rejected replies counted by kind: reasons alike but for their numbers
    (client sizes, array names' indices) are one kind, shown by its first reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, rejections: Iterable[Rejection]) -> None:
        for rejection in rejections:
            kind = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "#", rejection.reason)
            self.counts[kind] += 1
            self.examples.setdefault(kind, rejection.reason)

    def total(self) -> int:
        return sum(self.counts.values())

    def top(self, n: int) -> list[dict[str, object]]:
        """The ``n`` most frequent kinds, most frequent first: ``{"reason", "count"}``."""
        return [{"reason": self.examples[kind], "count": count} for kind, count in self.counts.most_common(n)]

    def values(self) -> list[list[object]]:
        """JSON-able state: ``[kind, count, first reason]`` per kind."""
        return [[kind, count, self.examples[kind]] for kind, count in self.counts.items()]

    @classmethod
    def from_values(cls, values: Iterable[list[object]]) -> RejectionTally:
        tally = cls()
        for kind, count, example in values:
            tally.counts[str(kind)] = int(count)  # type: ignore[call-overload]
            tally.examples[str(kind)] = str(example)
        return tally


def _only(records: Mapping[str, T], kind: str) -> T:
    if len(records) != 1:
        raise RejectedReply(f"expected exactly one {kind}, got {len(records)}")
    return next(iter(records.values()))


def check_num_examples(value: object, bound: ExampleBound | None = None) -> int:
    """A positive whole count, within ``bound`` if there is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectedReply(f"{NUM_EXAMPLES} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise RejectedReply(f"{NUM_EXAMPLES} must be a positive whole number, got {value}")
    if bound is not None and value > bound.limit:
        raise RejectedReply(f"{NUM_EXAMPLES} {int(value)} exceeds the {bound.limit} {bound.basis}")
    return int(value)


def byte_budget(expected: Array) -> int:
    """The most bytes an honest reply's array of ``expected``'s shape takes: float64 values
    (no codec here does worse: sparse is at most 4-byte indices plus float32 values) plus
    header room. Checked before decoding, so an oversized payload is never parsed."""
    return 8 * math.prod(expected.shape) + max(len(expected.data), 1024)


def check_arrays(received: ArrayRecord, expected: ArrayRecord) -> None:
    if set(received) != set(expected):
        missing, extra = set(expected) - set(received), set(received) - set(expected)
        raise RejectedReply(f"array names differ (missing {sorted(missing)}, unexpected {sorted(extra)})")
    for name, want in expected.items():
        got = received[name]
        if tuple(got.shape) != tuple(want.shape):
            raise RejectedReply(f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}")
        if got.dtype != want.dtype:
            raise RejectedReply(f"{name}: dtype {got.dtype} != {want.dtype}")
        if got.stype != want.stype:
            raise RejectedReply(f"{name}: encoding {got.stype} != {want.stype}")
        if len(got.data) > byte_budget(want):
            raise RejectedReply(f"{name}: oversized payload ({len(got.data)} bytes, at most {byte_budget(want)})")
        try:
            values = float_values(got)
        except Exception as error:  # malformed bytes: any decode error means reject
            raise RejectedReply(f"{name}: undecodable array ({error})") from None
        if values.shape != tuple(want.shape):
            raise RejectedReply(f"{name}: payload holds shape {values.shape}")
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            raise RejectedReply(f"{name}: contains NaN or Inf")


def check_bitwidth(metrics: MetricRecord, sent: Message) -> None:
    """A client declares the bitwidth it trained at; it must be the one it was sent.

    A float32 client may stay silent (a stock Flower client knows nothing of bitwidths;
    its float32 payload is checked by dtype like any other).
    """
    sent_config = next(iter(records_of(sent.content, ConfigRecord).values()), None)
    if sent_config is None or BITWIDTH not in sent_config:
        return
    declared = metrics.get(BITWIDTH, 32 if sent_config[BITWIDTH] == 32 else None)
    if declared != sent_config[BITWIDTH]:
        raise RejectedReply(f"declared {BITWIDTH} {declared!r}, sent {sent_config[BITWIDTH]!r}")


def check_reply(reply: Message, sent: Message, with_arrays: bool, example_bound: ExampleBound | None = None) -> None:
    if reply.has_error():
        raise RejectedReply(f"client failed: {reply.error.reason!s}")
    if not reply.has_content():
        raise RejectedReply("empty reply")
    metrics = _only(records_of(reply.content, MetricRecord), "MetricRecord")
    if NUM_EXAMPLES not in metrics:
        raise RejectedReply(f"missing {NUM_EXAMPLES}")
    check_num_examples(metrics[NUM_EXAMPLES], example_bound)
    if with_arrays:
        check_bitwidth(metrics, sent)
        check_reply_arrays(records_of(reply.content, ArrayRecord), records_of(sent.content, ArrayRecord))


def check_reply_arrays(received: Mapping[str, ArrayRecord], sent: Mapping[str, ArrayRecord]) -> None:
    """The reply's records against the model record that was sent.

    No model sent (local learning): no arrays may come back. Otherwise the reply holds
    the model record (``arrays``, or its only record under any name, as a stock Flower
    client sends it) and possibly others, such as FedWeIT's task-adaptive weights at a
    task's end; every one must have the sent model's names, shapes and encoding.
    """
    if not sent:
        if received:
            raise RejectedReply("arrays in a reply to a message that carried none")
        return
    expected = sent[protocol.ARRAYS] if protocol.ARRAYS in sent else _only(sent, "ArrayRecord in the sent message")
    if len(received) > 1 and protocol.ARRAYS not in received:
        raise RejectedReply(f"several ArrayRecords but none named {protocol.ARRAYS!r}")
    if not received:
        raise RejectedReply("expected an ArrayRecord, got none")
    for name, record in received.items():
        try:
            check_arrays(record, expected)
        except RejectedReply as error:
            raise RejectedReply(f"record {name!r}: {error}") from None


def screen_replies(
    sent: Iterable[Message],
    replies: Iterable[Message],
    client_of: Callable[[int], int],
    with_arrays: bool = True,
    example_bound: Callable[[int], ExampleBound | None] = lambda client: None,
) -> tuple[list[Message], list[Rejection]]:
    """Split replies into accepted (sorted by client id) and rejected (with reasons).

    ``example_bound(client)``: the most ``num-examples`` that client may report (None:
    no bound).
    """
    replies = list(replies)  # read twice below
    sent_by_node = {msg.metadata.dst_node_id: msg for msg in sent}
    accepted: dict[int, Message] = {}
    rejected: list[Rejection] = []
    for reply in replies:
        node = reply.metadata.src_node_id
        client = client_of(node)
        try:
            if node not in sent_by_node:
                raise RejectedReply("reply from a node that was not asked")
            if client in accepted:
                raise RejectedReply("second reply from the same client")
            check_reply(reply, sent_by_node[node], with_arrays, example_bound(client))
        except RejectedReply as error:
            rejected.append(Rejection(client, str(error)))
            continue
        accepted[client] = reply
    answered = {client_of(m.metadata.src_node_id) for m in replies}
    for node in sent_by_node:
        if client_of(node) not in answered:
            rejected.append(Rejection(client_of(node), "no reply before the round timeout"))
    for rejection in rejected:
        log.warning("rejected reply of client %s: %s", rejection.client, rejection.reason)
    return [accepted[c] for c in sorted(accepted)], sorted(rejected, key=lambda r: r.client)
