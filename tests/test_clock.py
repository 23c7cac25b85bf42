"""The simulation clock: FLOPs counted by torch match the analytic formula of every
registry model, and seconds follow compute / speed + bytes / bandwidth."""

from __future__ import annotations

import pytest
from torch import nn

from fedsparse.clock import Device, SimulationClock, forward_flops, round_seconds, train_flops
from fedsparse.models import MODELS, build_model


def analytic_forward_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """2 per multiply-accumulate: conv 2·Cin·Cout·k²·H·W ('same' padding), linear 2·in·out."""
    flops, size = 0, input_shape[1]
    for module in model:
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0]
            flops += 2 * module.in_channels * module.out_channels * k * k * size * size
        elif isinstance(module, nn.MaxPool2d):
            size //= 2
        elif isinstance(module, nn.Linear):
            flops += 2 * module.in_features * module.out_features
    return flops


def _first_layer_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    first = next(m for m in model if isinstance(m, (nn.Conv2d, nn.Linear)))
    return analytic_forward_flops(nn.Sequential(first), input_shape)


@pytest.mark.parametrize("name", [name for name in MODELS.names() if name != "resnet18"])  # flat nets
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_flop_counts_match_the_analytic_formula(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, shape, 10)
    forward = analytic_forward_flops(model, shape)
    assert forward_flops(model, shape) == forward
    # backward = input gradients + weight gradients (2× forward), minus the first
    # layer's input gradient, which the image does not need
    assert train_flops(model, shape) == 3 * forward - _first_layer_flops(model, shape)


@pytest.mark.parametrize("size", [8, 28, 32])
def test_resnet18_flops_match_its_layer_by_layer_formula(size: int) -> None:
    """Stem, then per stage two blocks of two 3×3 convs (the first strided from stage 2 on,
    with a 1×1 shortcut where the shape changes) at the stage's map size, then the classifier."""
    widths = (64, 128, 256, 512)
    flops, channels, side = 2 * 1 * 64 * 9 * size * size, 64, size
    for stage, width in enumerate(widths):
        if stage:
            side = (side + 1) // 2  # 3×3, stride 2, padding 1
        flops += 2 * channels * width * 9 * side**2 + 2 * width * width * 9 * side**2  # block 1
        flops += 2 * channels * width * side**2 if channels != width else 0  # its shortcut
        flops += 2 * 2 * width * width * 9 * side**2  # block 2
        channels = width
    flops += 2 * 512 * 10
    assert forward_flops(build_model("resnet18", (1, size, size), 10), (1, size, size)) == flops


def test_seconds_are_compute_over_speed_plus_bytes_over_bandwidth() -> None:
    shape = (1, 8, 8)
    build = lambda: build_model("cnn", shape, 10)  # noqa: E731
    clock = SimulationClock([Device(1.0, None), Device(0.25, 8.0)], 2e9, shape, build)
    shapes = tuple((n, tuple(t.shape)) for n, t in build().state_dict().items())
    per_sample = train_flops(build(), shape)
    fast = clock.client_seconds(0, 1, shapes, samples=100, epochs=2, bytes_moved=10**6)
    slow = clock.client_seconds(1, 1, shapes, samples=100, epochs=2, bytes_moved=10**6)
    assert fast == pytest.approx(per_sample * 200 / 2e9)  # no bandwidth: transfers are free
    assert slow == pytest.approx(per_sample * 200 / 0.5e9 + 1.0)  # 1 MB at 8 Mbit/s = 1 s
    assert round_seconds({0: fast, 1: slow}) == slow and round_seconds({}) == 0.0


def test_jitter_scales_each_clients_round_time_by_a_seeded_factor_within_bounds() -> None:
    shape = (1, 8, 8)
    build = lambda: build_model("cnn", shape, 10)  # noqa: E731
    shapes = tuple((n, tuple(t.shape)) for n, t in build().state_dict().items())
    steady = SimulationClock([Device(1.0, None)] * 4, 1e9, shape, build)
    noisy = SimulationClock([Device(1.0, None)] * 4, 1e9, shape, build, jitter=0.2, seed=7)
    base = steady.client_seconds(0, 1, shapes, samples=50, epochs=1, bytes_moved=0)
    factors = [
        noisy.client_seconds(c, r, shapes, samples=50, epochs=1, bytes_moved=0) / base
        for r in range(1, 51)
        for c in range(4)
    ]
    assert all(0.8 <= f <= 1.2 for f in factors) and len(set(factors)) == len(factors)  # fresh per client and round
    assert min(factors) < 0.85 and max(factors) > 1.15  # it does spread over the range
    again = SimulationClock([Device(1.0, None)] * 4, 1e9, shape, build, jitter=0.2, seed=7)
    assert again.client_seconds(2, 9, shapes, samples=50, epochs=1, bytes_moved=0) / base == factors[8 * 4 + 2]
    other = SimulationClock([Device(1.0, None)] * 4, 1e9, shape, build, jitter=0.2, seed=8)
    assert other.noise(2, 9) != noisy.noise(2, 9)


def test_a_narrower_model_costs_fewer_flops() -> None:
    shape = (1, 28, 28)
    clock = SimulationClock([Device(1.0, None)], 1e9, shape, lambda: build_model("cnn", shape, 10))
    full = tuple((n, tuple(t.shape)) for n, t in build_model("cnn", shape, 10).state_dict().items())
    half = tuple(
        (n, tuple(t.shape)) for n, t in build_model("cnn", shape, 10, channels=(8, 16), hidden=32).state_dict().items()
    )
    assert clock.flops_per_sample(half) == train_flops(
        build_model("cnn", shape, 10, channels=(8, 16), hidden=32), shape
    )
    assert 0.2 < clock.flops_per_sample(half) / clock.flops_per_sample(full) < 0.35  # ≈ width²
