"""Device profiles: which client gets which hardware description.

A profile is declared in the config with a ``share`` of the federation. Assignment is a
pure function of the client id, so the server (which samples and schedules) and every
client process agree on it without talking to each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from fedsparse.clock import Device
from fedsparse.quant import FLOAT32, Precision

if TYPE_CHECKING:
    from fedsparse.config import ProfileConfig
    from fedsparse.nodes import Declaration

T = TypeVar("T")

# HeteroFL's capability levels (Diao et al., 2021): model widths a device may be given.
HETEROFL_WIDTHS = (1.0, 1 / 2, 1 / 4, 1 / 8, 1 / 16)


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


def per_client(num_clients: int, shares: Sequence[float], values: Sequence[T]) -> list[T]:
    """One value per profile spread over the clients (index = client id)."""
    return [values[index] for index, count in enumerate(profile_counts(num_clients, shares)) for _ in range(count)]


def client_precisions(num_clients: int, bitwidths: Sequence[int], shares: Sequence[float]) -> list[Precision]:
    """Each client's number format, from its profile's bitwidth (index = client id)."""
    return [Precision.from_bitwidth(bits) for bits in per_client(num_clients, shares, bitwidths)]


def precision_of(precisions: Sequence[Precision], client: int) -> Precision:
    """A client's format; an unknown client (id -1: a node that never identified) is float32."""
    return precisions[client] if 0 <= client < len(precisions) else FLOAT32


def heterofl_width(profile: ProfileConfig) -> float:
    """The profile's HeteroFL width: its own ``width``, else the widest capability level
    whose compute (∝ width², for conv nets) fits the device's ``speed`` in the reference
    time: the largest of 1, 1/2, … 1/16 not above sqrt(speed)."""
    if profile.width is not None:
        return profile.width
    fitting = [w for w in HETEROFL_WIDTHS if w <= math.sqrt(profile.speed) + 1e-12]
    return fitting[0] if fitting else HETEROFL_WIDTHS[-1]


def client_widths(num_clients: int, profiles: Sequence[ProfileConfig]) -> list[float]:
    return per_client(num_clients, [p.share for p in profiles], [heterofl_width(p) for p in profiles])


def client_devices(num_clients: int, profiles: Sequence[ProfileConfig]) -> list[Device]:
    devices = [Device(p.speed, p.bandwidth_mbps) for p in profiles]
    return per_client(num_clients, [p.share for p in profiles], devices)


@dataclass(frozen=True)
class Assignment:
    """The config's profile for every client id, to check what a real device declares.

    A device knows its own hardware (a fixed-precision accelerator, a slow CPU) and says
    so in its node config; the config assigns profiles by client id. Where the two
    disagree the run would send the device a model it cannot run or schedule it at the
    wrong speed, so the server leaves such a node out (see :func:`fedsparse.nodes.discover`).
    """

    num_clients: int
    profiles: Sequence[ProfileConfig]

    def contradiction(self, declared: Declaration) -> str | None:
        """Why ``declared`` contradicts this assignment, or None if it does not."""
        client = declared.client
        if not 0 <= client < self.num_clients:
            return f"client id {client} outside 0..{self.num_clients - 1}"
        if declared.num_partitions is not None and declared.num_partitions != self.num_clients:
            return f"num-partitions={declared.num_partitions}, the config has {self.num_clients} clients"
        profile = self.profiles[profile_index(client, self.num_clients, [p.share for p in self.profiles])]
        if declared.profile is not None and declared.profile != profile.name:
            return f"profile={declared.profile!r}, the config assigns {profile.name!r} to client {client}"
        if declared.bitwidth is not None and declared.bitwidth != profile.bitwidth:
            return f"bitwidth={declared.bitwidth}, the config assigns {profile.bitwidth} to client {client}"
        return None
