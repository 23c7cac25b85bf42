"""One round's metrics row, as the round loop knows it (evaluators add theirs):
bytes per direction and per client, who was rejected and why, training metrics, and
wall and simulated seconds; per accepted client also where and when it ran (``device``,
``node`` on Ray, ``started`` and ``finished`` wall-clock times) as its reply says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedsparse import capabilities, protocol
from fedsparse.clock import round_seconds

if TYPE_CHECKING:
    from fedsparse.callbacks.base import RoundOutcome
    from fedsparse.server import RoundLoop


def round_row(loop: RoundLoop, server_round: int, outcome: RoundOutcome, seconds: float) -> dict[str, Any]:
    ledger, client_of = loop.ledger, loop.directory.client_of
    examples, runtime = {}, {}
    for reply in outcome.accepted:
        client = client_of(reply.metadata.src_node_id)
        metrics = protocol.metrics_of(reply.content)
        if metrics is not None:
            examples[client] = protocol.num_examples(metrics)
        runtime[client] = protocol.runtime_of(reply.content)
    return {
        "round": server_round,
        "skipped": outcome.skipped,
        "bytes_up": ledger.round_total(server_round, "up"),
        "bytes_down": ledger.round_total(server_round, "down"),
        "clients": [
            {
                "id": client,
                **counts,
                "num_examples": examples.get(client),
                "bitwidth": loop.federation.precision_of(client).label,
                "pruned_rate": capabilities.pruned_rate(loop.strategy, client),
                "sim_seconds": round(outcome.client_seconds.get(client, 0.0), 4),
                **runtime.get(client, {}),
            }
            for client, counts in ledger.round_clients(server_round).items()
        ],
        "rejected": [{"id": r.client, "reason": r.reason} for r in outcome.rejected],
        **outcome.train_metrics,
        "round_seconds": round(seconds, 4),
        "sim_seconds": round(round_seconds(outcome.client_seconds), 4),
        "sim_seconds_total": round(loop.sim_seconds_total, 4),
    }
