"""SCAFFOLD, FedDyn and Ditto against hand computations on a tiny model: one local SGD
step of each client rule, each client state update, and each server update."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord
from torch import nn

from fedsparse import protocol
from fedsparse.capabilities import checkpoint_state, restore_checkpoint_state
from fedsparse.catalog import STRATEGIES
from fedsparse.clients.feddyn import FedDynParams, next_gradient
from fedsparse.clients.fedprox import proximal_term
from fedsparse.clients.plain import summed
from fedsparse.clients.scaffold import linear_term, local_steps, next_control
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.strategies.scaffold import ScaffoldParams
from fedsparse.strategy import StrategyContext

from ..helpers import reply_from

LR = 0.1
X = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
Y = torch.tensor([[1.0], [0.0]])


def _model() -> nn.Linear:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.2, -0.3]]))
    return model


def _loss(model: nn.Module) -> torch.Tensor:
    return ((model(X) - Y) ** 2).mean()


def _gradient(w: torch.Tensor) -> torch.Tensor:
    """d/dw mean((X w - Y)²) = 2/n · Xᵀ(X w - Y), written out."""
    return (2 / len(X) * X.T @ (X @ w.T - Y)).T


def _one_step(model: nn.Module, extra) -> torch.Tensor:  # type: ignore[no-untyped-def]
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    (_loss(model) + extra()).backward()
    optimizer.step()
    return model.weight.detach().clone()


def test_scaffold_corrects_each_step_by_c_minus_ci_and_option_two_gives_the_gradient() -> None:
    model, x = _model(), _model().weight.detach().clone()
    c, c_i = torch.tensor([[0.3, -0.1]]), torch.tensor([[0.1, 0.4]])
    y = _one_step(model, linear_term(model, {"weight": c - c_i}))
    torch.testing.assert_close(y, x - LR * (_gradient(x) + c - c_i))
    # option II after K = 1 step: c_i+ = c_i - c + (x - y) / (K η) = ∇L(x)
    updated = next_control({"weight": c_i}, {"weight": c}, {"weight": x}, {"weight": y}, local_steps(2, 2, 1) * LR)
    torch.testing.assert_close(updated["weight"], _gradient(x))
    assert local_steps(33, 16, 2) == 6
    assert next_control({"w": c_i}, {"w": c}, {"w": x}, {"w": y}, 0.0)["w"] is c_i  # no step: c_i kept


def test_feddyn_steps_on_the_loss_minus_g_and_updates_g_by_alpha_times_the_drift() -> None:
    model, x = _model(), _model().weight.detach().clone()
    g, alpha = torch.tensor([[0.5, -0.2]]), 0.3
    y = _one_step(model, summed([linear_term(model, {"weight": -g}), proximal_term(model, alpha)]))
    torch.testing.assert_close(y, x - LR * (_gradient(x) - g))  # the proximal gradient is 0 at x
    torch.testing.assert_close(
        next_gradient({"weight": g}, {"weight": x}, {"weight": y}, alpha)["weight"], g - alpha * (y - x)
    )


def test_ditto_pulls_the_personal_model_towards_the_global_one() -> None:
    personal, w = _model(), torch.tensor([[1.0, 1.0]])
    v = personal.weight.detach().clone()
    lam = 0.7
    v_next = _one_step(personal, proximal_term(personal, lam, [w]))
    torch.testing.assert_close(v_next, v - LR * (_gradient(v) + lam * (v - w)))


def _context(clients: int) -> StrategyContext:
    directory = NodeDirectory({100 + i: i for i in range(clients)})
    return StrategyContext(ClientSampler(directory, 2, seed=0), client_eval=False)


def _round(strategy, model: np.ndarray, uploads: list[dict], weights: list[int]) -> tuple[list, np.ndarray]:  # type: ignore[no-untyped-def,type-arg]
    sent = list(strategy.configure_train(1, ArrayRecord({"w": Array(model)}), ConfigRecord(), None))
    replies = []
    for message, records, weight in zip(sent, uploads, weights, strict=True):
        reply = reply_from(message, ArrayRecord({"w": Array(records["w"])}), {"num-examples": weight})
        if "dc" in records:
            reply.content[protocol.CONTROL] = ArrayRecord({"w": Array(records["dc"])})
        replies.append(reply)
    arrays, _ = strategy.aggregate_train(1, replies)
    return sent, arrays["w"].numpy()


def test_scaffold_server_steps_the_model_and_moves_c_by_the_sampled_share(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = STRATEGIES.get("scaffold").build(ScaffoldParams(server_lr=0.5), _context(4))
    x = np.array([1.0, 0.0], np.float32)
    uploads = [
        {"w": np.array([2.0, 1.0], np.float32), "dc": np.array([1.0, 0.0], np.float32)},
        {"w": np.array([0.0, 3.0], np.float32), "dc": np.array([0.0, 2.0], np.float32)},
    ]
    sent, new_x = _round(strategy, x, uploads, weights=[3, 1])
    np.testing.assert_array_equal(sent[0].content[protocol.CONTROL]["w"].numpy(), [0.0, 0.0])  # c starts at 0
    mean = 0.75 * uploads[0]["w"] + 0.25 * uploads[1]["w"]  # example-weighted: (1.5, 1.5)
    np.testing.assert_allclose(new_x, x + 0.5 * (mean - x))
    np.testing.assert_allclose(strategy.control["w"], 2 / 4 * np.array([0.5, 1.0]))  # |S|/N · plain mean of Δc
    resumed = STRATEGIES.get("scaffold").build(ScaffoldParams(), _context(4))
    restore_checkpoint_state(resumed, checkpoint_state(strategy))
    np.testing.assert_array_equal(resumed.control["w"], strategy.control["w"])


def test_feddyn_server_keeps_h_and_corrects_the_mean(server_identity) -> None:  # type: ignore[no-untyped-def]
    alpha = 0.5
    strategy = STRATEGIES.get("feddyn").build(FedDynParams(alpha=alpha), _context(4))
    x = np.array([1.0, 0.0], np.float32)
    uploads = [{"w": np.array([2.0, 1.0], np.float32)}, {"w": np.array([0.0, 3.0], np.float32)}]
    _, new_x = _round(strategy, x, uploads, weights=[3, 1])
    h = -alpha / 4 * ((uploads[0]["w"] - x) + (uploads[1]["w"] - x))  # -(α/N) Σ drift = (0, -0.5)
    np.testing.assert_allclose(strategy.h["w"], h)
    np.testing.assert_allclose(new_x, (uploads[0]["w"] + uploads[1]["w"]) / 2 - h / alpha)  # (1, 3)
