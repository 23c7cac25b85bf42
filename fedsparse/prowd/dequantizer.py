"""ProWD's trainable progressive dequantizer (docs/methods.md §1, steps 1–3), plain PyTorch.

The bit ladder sorts the precisions present and inserts integer rungs so no step more
than doubles the bits (8 → int16 → 32). Block D_k maps a weight at rung k towards rung
k+1 with a bounded residual, D_k(x) = x + step_k(x) · ½·tanh(g_k(features)), where g_k is
a small MLP applied per element to features of the element and its output channel (its
position on the rung's grid, |position|, the channel's mean and spread, and its offset
from the nearest grid point). The bound keeps a correction inside the quantization bin
the true value must lie in; the last layer starts at zero, so an untrained dequantizer is
plain scale dequantization. A b-bit weight passes through every block from its rung up.

Weights of many tensors are handled as one flat vector with a channel id per element
(:class:`FlatWeights`), so features and corrections are a few vectorised ops per round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fedsparse.quant import FLOAT32, Precision, fake_quantize

FLOAT16_LEVELS = 2**10  # float16 has 10 mantissa bits: its step at the channel max
NUM_FEATURES = 5


def bit_ladder(present: Iterable[Precision]) -> list[Precision]:
    """Rungs from the least precise present format up to float32, never more than doubling."""
    rungs = sorted(set(present) | {FLOAT32}, key=lambda p: p.rank)
    ladder = [rungs[0]]
    for rung in rungs[1:]:
        while rung.bits > 2 * ladder[-1].bits:
            ladder.append(Precision(2 * ladder[-1].bits, "int"))
        ladder.append(rung)
    return ladder


def _levels(precision: Precision) -> int:
    return precision.qmax if precision.kind == "int" else FLOAT16_LEVELS


@dataclass(frozen=True)
class FlatWeights:
    """The floating tensors of a model laid end to end, with each element's channel."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    channel: torch.Tensor  # (N,) long: global output-channel id of every element
    num_channels: int
    counts: torch.Tensor  # (num_channels,) elements per channel

    @classmethod
    def of(cls, state: Mapping[str, torch.Tensor]) -> FlatWeights:
        names, shapes, ids = [], [], []
        offset = 0
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                continue
            rows = tensor.shape[0] if tensor.dim() >= 2 else 1
            per_row = tensor.numel() // rows
            ids.append(torch.arange(offset, offset + rows).repeat_interleave(per_row))
            names.append(name)
            shapes.append(tensor.shape)
            offset += rows
        channel = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long)
        counts = torch.bincount(channel, minlength=offset).float()
        return cls(tuple(names), tuple(shapes), channel, offset, counts)

    def flatten(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([state[name].reshape(-1).float() for name in self.names])

    def unflatten(self, values: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [s.numel() for s in self.shapes]
        return {
            name: chunk.reshape(shape)
            for name, shape, chunk in zip(self.names, self.shapes, torch.split(values, sizes), strict=True)
        }

    def channel_amax(self, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.num_channels)
        return out.scatter_reduce(0, self.channel, values.abs(), reduce="amax", include_self=True)

    def channel_mean(self, values: torch.Tensor) -> torch.Tensor:
        sums = torch.zeros(self.num_channels).index_add(0, self.channel, values)
        return sums / self.counts.clamp_min(1)

    def quantized(self, state: Mapping[str, torch.Tensor], precision: Precision) -> torch.Tensor:
        """Q_p of every tensor (per-tensor channel scales), flattened."""
        return torch.cat([fake_quantize(state[name], precision).reshape(-1) for name in self.names])


def features(values: torch.Tensor, flat: FlatWeights, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-element features, per-element step) of weights at ``precision``'s rung.

    Statistics are taken without gradient: they describe where a weight sits, and the
    correction must not learn to move them.
    """
    levels = _levels(precision)
    with torch.no_grad():
        step = (flat.channel_amax(values) / levels)[flat.channel]
        safe = torch.where(step > 0, step, torch.ones_like(step))
        code = values.detach() / safe
        position = code / levels
        mean = flat.channel_mean(position)[flat.channel]
        spread = flat.channel_mean(position.abs())[flat.channel]
        offset = code - torch.round(code)
    return torch.stack([position, position.abs(), mean, spread, offset], dim=1), step


class DequantizerBlock(nn.Module):
    """D_k: one rung up the ladder."""

    def __init__(self, source: Precision, hidden: int) -> None:
        super().__init__()
        self.source = source
        self.net = nn.Sequential(
            nn.Linear(NUM_FEATURES, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def correct(self, values: torch.Tensor, feats: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        return values + step * 0.5 * torch.tanh(self.net(feats).squeeze(1))

    def forward(self, values: torch.Tensor, flat: FlatWeights) -> torch.Tensor:
        return self.correct(values, *features(values, flat, self.source))


class ProgressiveDequantizer(nn.Module):
    def __init__(self, ladder: Sequence[Precision], hidden: int = 16) -> None:
        super().__init__()
        if not ladder or not ladder[-1].is_float32:
            raise ValueError("the ladder must end at float32")
        self.ladder = list(ladder)
        self.blocks = nn.ModuleList(DequantizerBlock(p, hidden) for p in self.ladder[:-1])

    def typed_blocks(self) -> list[DequantizerBlock]:
        """The blocks D_0 … D_{K-1}, lowest rung first."""
        return [block for block in self.blocks if isinstance(block, DequantizerBlock)]

    def rung(self, precision: Precision) -> int:
        try:
            return self.ladder.index(precision)
        except ValueError:
            raise ValueError(f"{precision} is not on the bit ladder {[str(p) for p in self.ladder]}") from None

    def forward(self, values: torch.Tensor, flat: FlatWeights, start: Precision) -> torch.Tensor:
        """Progressive: through every block from ``start``'s rung to float32."""
        for block in self.blocks[self.rung(start) :]:
            values = block(values, flat)
        return values

    @torch.no_grad()
    def restore(self, state: Mapping[str, torch.Tensor], precision: Precision) -> dict[str, torch.Tensor]:
        """A b-bit model's float tensors, dequantized progressively (others unchanged)."""
        flat = FlatWeights.of(state)
        restored = flat.unflatten(self(flat.flatten(state), flat, precision))
        return {name: restored.get(name, tensor) for name, tensor in state.items()}
