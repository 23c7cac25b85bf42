"""The byte ledger: what every message's arrays cost, per round, client and direction.

Entries are written by the metering grid (:mod:`fedsparse.metering`) where messages
leave and arrive, never by strategies, so no strategy can forget to count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from flwr.app import ArrayRecord, Message

from fedsparse.compat import records_of

UP = "up"
DOWN = "down"


def message_bytes(message: Message) -> int:
    """Encoded size of the arrays a message carries (Flower's own per-dtype count)."""
    if message.has_error() or not message.has_content():
        return 0
    return sum(record.count_bytes() for record in records_of(message.content, ArrayRecord).values())


@dataclass(frozen=True)
class Transfer:
    round: int
    client: int
    direction: str
    phase: str
    nbytes: int


class ByteLedger:
    def __init__(self) -> None:
        self.transfers: list[Transfer] = []

    def record(self, round_: int, client: int, direction: str, phase: str, nbytes: int) -> None:
        self.transfers.append(Transfer(round_, client, direction, phase, nbytes))

    def rows(self) -> list[list[int | str]]:
        """Every transfer as a JSON-able row, for checkpoints."""
        return [[t.round, t.client, t.direction, t.phase, t.nbytes] for t in self.transfers]

    def load_rows(self, rows: list[list[int | str]]) -> None:
        """Replace the ledger with ``rows`` from :meth:`rows`."""
        self.transfers = [Transfer(int(r), int(c), str(d), str(p), int(n)) for r, c, d, p, n in rows]

    def round_clients(self, round_: int) -> dict[int, dict[str, int]]:
        """``{client: {"bytes_up": .., "bytes_down": ..}}`` for one round, all phases."""
        per_client: dict[int, dict[str, int]] = defaultdict(lambda: {"bytes_up": 0, "bytes_down": 0})
        for t in self.transfers:
            if t.round == round_:
                per_client[t.client][f"bytes_{t.direction}"] += t.nbytes
        return dict(sorted(per_client.items()))

    def round_total(self, round_: int, direction: str) -> int:
        return sum(t.nbytes for t in self.transfers if t.round == round_ and t.direction == direction)

    def total(self, direction: str) -> int:
        return sum(t.nbytes for t in self.transfers if t.direction == direction)
