"""Device profiles: which client gets which hardware description.

A profile is declared in the config with a ``share`` of the federation. Assignment is a
pure function of the client id, so the server (which samples and schedules) and every
client process agree on it without talking to each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedsparse.quant import FLOAT32, Precision

def profile_counts(num_clients: int, shares: Sequence[float]) -> list[int]:
    """Split ``num_clients`` by ``shares`` with the largest-remainder method.

    Plain rounding can lose or add a client (0.5/0.5 of 3), which would leave a client
    without a profile; largest remainder always sums to ``num_clients``.
    """
    total = sum(shares)
    exact = [num_clients * s / total for s in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: num_clients - sum(counts)]:
        counts[i] += 1
    return counts


def profile_index(client_id: int, num_clients: int, shares: Sequence[float]) -> int:
    """Index of the profile that client ``client_id`` runs on (contiguous blocks)."""
    if not 0 <= client_id < num_clients:
        raise ValueError(f"client id {client_id} outside 0..{num_clients - 1}")
    upper = 0
    for index, count in enumerate(profile_counts(num_clients, shares)):
        upper += count
        if client_id < upper:
            return index
    raise AssertionError("profile counts do not cover every client")


def client_precisions(num_clients: int, bitwidths: Sequence[int], shares: Sequence[float]) -> list[Precision]:
    """Each client's number format, from its profile's bitwidth (index = client id)."""
    return [
        Precision.from_bitwidth(bitwidths[index])
        for index, count in enumerate(profile_counts(num_clients, shares))
        for _ in range(count)
    ]


def precision_of(precisions: Sequence[Precision], client: int) -> Precision:
    """A client's format; an unknown client (id -1: a node that never identified) is float32."""
    return precisions[client] if 0 <= client < len(precisions) else FLOAT32
