"""The simulation clock: counted FLOPs and counted bytes turned into device seconds.

A client's round takes compute time (training FLOPs of the model it was sent × its
samples × epochs, over the reference FLOP/s times its profile's ``speed``) plus transfer
time (the bytes the ledger saw it receive and send, over its profile's bandwidth). The
round takes as long as its slowest participant. Everything is counted, nothing timed, so
the clock is the same on every machine and every run (docs/methods.md §2, "Simulation clock").
Real devices are noisy: with ``jitter`` each client's round time is multiplied by a factor
uniform in [1 − jitter, 1 + jitter], drawn from the run seed, the round and the client
(so it is the same whatever order clients are timed in, and on a resumed run).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fedsparse.prune import resize_to

Shapes = tuple[tuple[str, tuple[int, ...]], ...]
_JITTER = 0x717  # seeds the jitter's random stream apart from every other


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one sample's forward pass, as torch's own counter counts them.

    Convolutions and matrix products count 2 per multiply-accumulate; biases,
    activations and pooling are not counted (they are a rounding error next to them).
    """
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_shape))
    return int(counter.get_total_flops())


def train_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one sample's forward and backward pass (weight and input gradients).

    About 3× the forward pass; the first layer computes no input gradient, which the
    counter sees because the image does not require one.
    """
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape)).sum().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class Device:
    """What the clock knows about one client: relative speed and link bandwidth."""

    speed: float  # multiple of the reference FLOP/s
    bandwidth_mbps: float | None  # None: transfers take no simulated time


class SimulationClock:
    def __init__(
        self,
        devices: Sequence[Device],
        reference_flops: float,
        input_shape: tuple[int, ...],
        build_model: Callable[[], nn.Module],
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.devices = list(devices)
        self.jitter = jitter
        self.seed = seed
        self.reference_flops = reference_flops
        self.input_shape = input_shape
        self.build_model = build_model

    @functools.lru_cache(maxsize=256)  # noqa: B019 (one clock per run; shapes repeat every round)
    def flops_per_sample(self, shapes: Shapes) -> int:
        """Training FLOPs per sample of a model with these parameter shapes (sub-models too)."""
        return train_flops(resize_to(self.build_model(), dict(shapes)), self.input_shape)

    def client_seconds(
        self, client: int, server_round: int, shapes: Shapes, samples: int, epochs: int, bytes_moved: int
    ) -> float:
        device = self.devices[client]
        compute = self.flops_per_sample(shapes) * samples * epochs / (self.reference_flops * device.speed)
        return (compute + self.transfer_seconds(client, bytes_moved)) * self.noise(client, server_round)

    def transfer_seconds(self, client: int, bytes_moved: int) -> float:
        """``bytes_moved`` over the client's bandwidth (0 without one)."""
        bandwidth = self.devices[client].bandwidth_mbps
        return 0.0 if bandwidth is None else bytes_moved * 8 / (bandwidth * 1e6)

    def noise(self, client: int, server_round: int) -> float:
        """The factor on ``client``'s time in ``server_round`` (1 without jitter)."""
        if self.jitter == 0:
            return 1.0
        draw = np.random.default_rng([self.seed, _JITTER, server_round, client]).uniform(-1.0, 1.0)
        return 1.0 + self.jitter * float(draw)


def round_seconds(client_seconds: Mapping[int, float]) -> float:
    """A synchronous round lasts as long as its slowest participant."""
    return max(client_seconds.values(), default=0.0)
