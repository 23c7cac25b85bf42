"""FedAvgM: the server's velocity and step, round after round, and its checkpoint."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord

from fedsparse.capabilities import checkpoint_state, restore_checkpoint_state
from fedsparse.catalog import STRATEGIES
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.strategies.fedavg_momentum import FedAvgMomentumParams
from fedsparse.strategy import StrategyContext

from ..helpers import reply_from


def _strategy(params: FedAvgMomentumParams):  # type: ignore[no-untyped-def]
    ctx = StrategyContext(ClientSampler(NodeDirectory({100: 0, 101: 1}), 2, seed=0), client_eval=False)
    return STRATEGIES.get("fedavg_momentum").build(params, ctx)


def _round(strategy, server_round: int, model: np.ndarray, uploads: list[np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    sent = list(strategy.configure_train(server_round, ArrayRecord({"w": Array(model)}), ConfigRecord(), None))
    replies = [
        reply_from(m, ArrayRecord({"w": Array(u)}), {"num-examples": 1}) for m, u in zip(sent, uploads, strict=False)
    ]
    arrays, _ = strategy.aggregate_train(server_round, replies)
    return arrays["w"].numpy()


def test_the_velocity_accumulates_the_averaged_updates(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(FedAvgMomentumParams(server_lr=0.5, momentum=0.9))
    x0 = np.zeros(2, np.float32)
    # round 1: mean update (1, -1); v = (1, -1); x = 0.5 v
    x1 = _round(strategy, 1, x0, [np.array([0.0, -2.0], np.float32), np.array([2.0, 0.0], np.float32)])
    np.testing.assert_allclose(x1, [0.5, -0.5])
    # round 2: mean update (1, 1) from x1; v = 0.9 (1, -1) + (1, 1); x = x1 + 0.5 v
    x2 = _round(strategy, 2, x1, [x1 + 1, x1 + 1])
    np.testing.assert_allclose(x2, x1 + 0.5 * np.array([1.9, 0.1]), rtol=1e-6)


def test_without_momentum_and_a_unit_step_it_is_fedavg(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(FedAvgMomentumParams(server_lr=1.0, momentum=0.0))
    uploads = [np.array([3.0, 1.0], np.float32), np.array([1.0, 5.0], np.float32)]
    np.testing.assert_allclose(_round(strategy, 1, np.zeros(2, np.float32), uploads), [2.0, 3.0])


def test_a_restored_strategy_continues_with_the_same_velocity(server_identity) -> None:  # type: ignore[no-untyped-def]
    params = FedAvgMomentumParams(server_lr=1.0, momentum=0.5)
    first = _strategy(params)
    x1 = _round(first, 1, np.zeros(2, np.float32), [np.ones(2, np.float32)] * 2)
    resumed = _strategy(params)
    restore_checkpoint_state(resumed, checkpoint_state(first))
    uploads = [x1 + 2, x1 + 2]
    np.testing.assert_array_equal(_round(resumed, 2, x1, uploads), _round(first, 2, x1, uploads))
