"""AdaptCL's rate learning: from round times alone, every worker ends within the slack of
the fastest, on the real simulation clock (counted FLOPs and bytes of real sub-models)."""
# The convergence test also guards the reference choice: with t* taken from every worker,
# one whole-channel jump below t* drags all rates up round after round (see rates.py).

from __future__ import annotations

import math

import numpy as np
import pytest

from fedsparse.clock import Device, SimulationClock
from fedsparse.models import build_model
from fedsparse.prune import by_importance, channel_layout, submodel_shapes
from fedsparse.prune.rates import FittedRateLearner, PrunedRateLearner
from fedsparse.wire import encode_state

SHAPE = (1, 28, 28)


def _build():  # type: ignore[no-untyped-def]
    return build_model("cnn", SHAPE, 10, channels=[16, 32], hidden=128)


def _seconds(clock: SimulationClock, state, layout, client: int, rate: float) -> float:  # type: ignore[no-untyped-def]
    shapes = submodel_shapes(state, layout, by_importance(layout, state, rate))
    nbytes = 2 * 4 * sum(math.prod(s) for s in shapes.values())  # float32, down and up
    return clock.client_seconds(client, 1, tuple(shapes.items()), samples=500, epochs=1, bytes_moved=nbytes)


@pytest.mark.parametrize("slack", [0.05, 0.1, 0.3])
def test_round_times_converge_within_the_slack(slack: float) -> None:
    devices = [Device(1.0, 50), Device(0.7, 20), Device(0.25, 10), Device(0.1, 2), Device(0.04, 5)]
    clock = SimulationClock(devices, 1e9, SHAPE, _build)
    model = _build()
    layout = channel_layout(model)
    state = {n: t.detach().numpy() for n, t in model.state_dict().items()}
    learner = PrunedRateLearner(slack=slack, max_rate=0.95)
    for _ in range(12):
        times = {c: _seconds(clock, state, layout, c, learner.rate(c)) for c in range(len(devices))}
        learner.observe(times)
    # the round lasts at most slack longer than the fastest device's full-model time;
    # whole channels may land a small sub-model below it, never above the band
    assert max(times.values()) <= times[0] * (1 + slack)
    rates = [learner.rate(c) for c in range(len(devices))]
    assert rates[0] == 0.0 and rates == sorted(rates)  # slower devices prune more
    assert rates[-1] > 0.75  # 25× slower: about 1/5 of the channels


def test_the_cap_holds_and_a_capped_worker_stays_slow() -> None:
    learner = PrunedRateLearner(slack=0.1, max_rate=0.5)
    for _ in range(10):
        kept = {c: 1 - learner.rate(c) for c in (0, 1)}
        learner.observe({0: 1.0 * kept[0] ** 2, 1: 100.0 * kept[1] ** 2})
    assert learner.rate(0) == 0.0 and learner.rate(1) == 0.5


def test_a_quadratic_cost_converges_in_one_full_step() -> None:
    learner = PrunedRateLearner(slack=0.1, max_rate=0.99)
    learner.observe({0: 1.0, 1: 16.0})
    assert 1 - learner.rate(1) == pytest.approx(np.sqrt(1.05 / 16.0))  # aims at t*·(1 + slack/2)
    halfway = PrunedRateLearner(slack=0.1, max_rate=0.99, step=0.5)
    halfway.observe({0: 1.0, 1: 16.0})
    assert 1 - halfway.rate(1) == pytest.approx((1.05 / 16.0) ** 0.25)


def test_bad_knobs_are_refused() -> None:
    for kwargs in (
        {"slack": 0.0, "max_rate": 0.5},
        {"slack": 0.1, "max_rate": 1.0},
        {"slack": 0.1, "max_rate": 0.5, "step": 0.0},
    ):
        with pytest.raises(ValueError):
            PrunedRateLearner(**kwargs)  # type: ignore[arg-type]


def test_encoded_bytes_track_the_sub_model_size() -> None:
    """The byte count the test above assumes is what the dense codec really sends (+ headers)."""
    model = _build()
    layout = channel_layout(model)
    state = {n: t.detach().numpy() for n, t in model.state_dict().items()}
    shapes = submodel_shapes(state, layout, by_importance(layout, state, 0.5))
    record = encode_state({n: model.state_dict()[n][tuple(slice(0, s) for s in shape)] for n, shape in shapes.items()})
    assert 0 < record.count_bytes() - 4 * sum(math.prod(s) for s in shapes.values()) < 200 * len(shapes)


def test_a_pruned_worker_that_undershoots_does_not_become_the_reference() -> None:
    learner = PrunedRateLearner(slack=0.1, max_rate=0.9)
    learner.observe({0: 1.0, 1: 4.0})
    learner.observe({0: 1.0, 1: 0.5})  # whole channels: the pruned worker landed far below
    learner.observe({0: 1.0, 1: 0.5})
    assert learner.fastest == 1.0 and learner.rate(0) == 0.0


MIXED = [Device(1.0, 50)] * 4 + [Device(0.25, 10)] * 4 + [Device(0.1, 2)] * 2  # the high config's devices


def _learn(learner: PrunedRateLearner | FittedRateLearner, jitter: float, seed: int) -> tuple[float, float]:
    """20 rounds on MIXED with jittered times: (mean rate of the 4 fast devices, the noise-free
    round time it ends with over the fast devices' full-model time)."""
    steady = SimulationClock(MIXED, 1e9, SHAPE, _build)
    noisy = SimulationClock(MIXED, 1e9, SHAPE, _build, jitter=jitter, seed=seed)
    model = _build()
    layout = channel_layout(model)
    state = {n: t.detach().numpy() for n, t in model.state_dict().items()}
    for server_round in range(1, 21):
        true = {c: _seconds(steady, state, layout, c, learner.rate(c)) for c in range(len(MIXED))}
        learner.observe({c: t * noisy.noise(c, server_round) for c, t in true.items()})
    fast_full = _seconds(steady, state, layout, 0, 0.0)
    return float(np.mean([learner.rate(c) for c in range(4)])), max(true.values()) / fast_full


def test_under_noisy_times_the_fitted_rule_keeps_fast_devices_whole_and_the_step_rule_does_not() -> None:
    step = [_learn(PrunedRateLearner(0.1, 0.9), 0.2, seed) for seed in range(3)]
    fit = [_learn(FittedRateLearner(0.1, 0.9), 0.2, seed) for seed in range(3)]
    assert np.mean([rate for rate, _ in step]) > 0.1  # a fast device's slow draw ratchets its rate up
    assert np.mean([rate for rate, _ in step]) > 3 * np.mean([rate for rate, _ in fit])
    assert all(rate < 0.1 for rate, _ in fit)
    assert all(ratio <= 1.1 + 0.05 for _, ratio in fit)  # the noise-free round stays about in the band


def test_without_noise_both_rules_settle_on_the_same_rates() -> None:
    _, step_ratio = _learn(step := PrunedRateLearner(0.1, 0.9), 0.0, 0)
    _, fit_ratio = _learn(fit := FittedRateLearner(0.1, 0.9), 0.0, 0)
    for client in range(len(MIXED)):
        assert fit.rate(client) == pytest.approx(step.rate(client), abs=0.02)
    assert fit_ratio <= 1.1 and step_ratio <= 1.1


def test_the_fitted_rule_recomputes_rates_so_a_slow_draw_is_undone() -> None:
    learner = FittedRateLearner(slack=0.1, max_rate=0.9, window=1)
    learner.observe({0: 1.0, 1: 1.5})  # one slow draw of a device as fast as the other
    assert learner.rate(1) > 0
    learner.observe({0: 1.0, 1: 1.0 * (1 - learner.rate(1)) ** 2})  # its true speed shows
    assert learner.rate(1) == 0.0
    again = FittedRateLearner(slack=0.1, max_rate=0.9, window=1)
    again.load(learner.state())
    assert again.rates == learner.rates and again.history == learner.history
