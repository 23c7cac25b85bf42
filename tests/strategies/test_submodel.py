"""Server side of the sub-model strategies on hand-built replies: what each client is
sent (HeteroFL first-k, FedRolex rolling, AdaptCL by importance and learned rate), the
scatter-back over holders, and screening of replies that do not fit their sub-model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord
from torch import nn

from fedsparse.catalog import STRATEGIES
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.protocol import KEPT, PRUNED_RATE, WIDTH_SCALE
from fedsparse.quant import FLOAT32, Precision
from fedsparse.screening import screen_replies
from fedsparse.strategy import StrategyContext
from fedsparse.wire import BITPACKED, encode_state, float_tensors

from ..helpers import reply_from

WIDTHS = (1.0, 1.0, 0.5, 0.25)  # clients 0..3 on nodes 100..103


def _net() -> nn.Module:
    """4 inputs → 8 hidden units → 3 classes."""
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _start() -> ArrayRecord:
    torch.manual_seed(0)
    net = _net()
    with torch.no_grad():  # hidden unit i gets L1 norm growing with (i * 5) mod 8: a known order
        for i in range(8):
            net[0].weight[i] = float((i * 5) % 8 + 1) / 4
    return encode_state(net.state_dict())


def _strategy(name: str, precisions=()):  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get(name)
    directory = NodeDirectory({100 + c: c for c in range(4)})
    ctx = StrategyContext(
        ClientSampler(directory, 4, seed=0), client_eval=False, precisions=precisions, build_model=_net, widths=WIDTHS
    )
    return spec.build(spec.params(), ctx)


def _by_client(messages):  # type: ignore[no-untyped-def]
    return {m.metadata.dst_node_id - 100: m for m in messages}


def _kept(message) -> list[int]:  # type: ignore[no-untyped-def]
    return message.content[KEPT]["0"].numpy().tolist()


def test_heterofl_sends_first_k_channels_with_the_scaler(server_identity) -> None:  # type: ignore[no-untyped-def]
    start = _start()
    sent = _by_client(_strategy("heterofl").configure_train(1, start, ConfigRecord(), grid=None))
    full = float_tensors(start)
    for client, width in enumerate(WIDTHS):
        message = sent[client]
        units = int(8 * width)
        assert _kept(message) == list(range(units))
        arrays = float_tensors(message.content["arrays"])
        assert arrays["0.weight"].shape == (units, 4) and arrays["2.weight"].shape == (3, units)
        torch.testing.assert_close(arrays["2.weight"], full["2.weight"][:, :units])
        assert message.content["config"][PRUNED_RATE] == 1 - width
        assert message.content["config"][WIDTH_SCALE] == pytest.approx(1 / width)
    assert sent[0].content is sent[1].content  # same width and bitwidth: one payload
    sizes = [sent[c].content["arrays"].count_bytes() for c in range(4)]
    assert sizes[0] > sizes[2] > sizes[3]


def test_fedrolex_rolls_the_window_one_channel_a_round(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("fedrolex")
    for server_round, expected in ((1, [0, 1]), (2, [1, 2]), (8, [0, 7])):
        sent = _by_client(strategy.configure_train(server_round, _start(), ConfigRecord(), grid=None))
        assert _kept(sent[3]) == expected


def test_adaptcl_starts_full_then_keeps_the_most_important_channels(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("adaptcl")
    sent = _by_client(strategy.configure_train(1, _start(), ConfigRecord(), grid=None))
    assert all(_kept(m) == list(range(8)) for m in sent.values())
    assert all(WIDTH_SCALE not in m.content["config"] for m in sent.values())
    strategy.observe_round_times(1, {0: 1.0, 1: 1.05, 2: 4.0, 3: 16.0})
    assert [strategy.rate_for(c, 2) for c in (0, 1)] == [0.0, 0.0]  # within the slack
    sent = _by_client(strategy.configure_train(2, _start(), ConfigRecord(), grid=None))
    # unit i's L1 norm ∝ (5i mod 8) + 1, so by importance: 3, 6, 1, 4, 7, 2, 5, 0
    assert _kept(sent[2]) == [1, 3, 4, 6, 7]  # ceil(sqrt(1.05/4)·8) = 5 units
    assert _kept(sent[3]) == [1, 3, 6]  # ceil(sqrt(1.05/16)·8) = 3 units
    assert sent[3].content["config"][PRUNED_RATE] == pytest.approx(1 - (1.05 / 16) ** 0.5)
    assert strategy.pruned_rate(3) == sent[3].content["config"][PRUNED_RATE] and strategy.pruned_rate(0) == 0.0


def _replies(sent, fill):  # type: ignore[no-untyped-def]
    """Client c replies its sub-model's shapes filled with ``fill[c]``, weight c + 1."""
    replies = []
    for client, message in sent.items():
        arrays = float_tensors(message.content["arrays"])
        upload = encode_state({n: torch.full_like(t, fill[client]) for n, t in arrays.items()})
        replies.append(reply_from(message, upload, {"num-examples": client + 1}))
    return replies


def test_each_element_becomes_the_mean_over_the_clients_that_held_it(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("heterofl")
    start = _start()
    sent = _by_client(strategy.configure_train(1, start, ConfigRecord(), grid=None))
    fill = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    arrays, _ = strategy.aggregate_train(1, _replies(sent, fill))
    hidden = float_tensors(arrays)["0.bias"].numpy()
    # units 0-1: all four clients; 2-3: clients 0, 1, 2; 4-7: clients 0 and 1 (weights 1..4)
    expected = [(1 + 4 + 9 + 16) / 10] * 2 + [(1 + 4 + 9) / 6] * 2 + [(1 + 4) / 3] * 4
    np.testing.assert_allclose(hidden, expected, rtol=1e-6)
    np.testing.assert_allclose(float_tensors(arrays)["2.bias"].numpy(), [3.0] * 3, rtol=1e-6)  # everyone


def test_a_reply_that_does_not_fit_its_sub_model_is_rejected(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("heterofl")
    start = _start()
    sent = _by_client(strategy.configure_train(1, start, ConfigRecord(), grid=None))
    replies = _replies(sent, {c: 0.5 for c in range(4)})
    replies[3] = reply_from(sent[3], start, {"num-examples": 4})  # the full model back from a 1/4 client
    accepted, rejected = screen_replies(sent.values(), replies, lambda node: node - 100)
    assert [r.client for r in rejected] == [3] and "shape (8, 4) != (2, 4)" in rejected[0].reason
    arrays, _ = strategy.aggregate_train(1, accepted)
    assert arrays is not None


def test_low_bit_clients_get_their_sub_model_bit_packed(server_identity) -> None:  # type: ignore[no-untyped-def]
    int4 = Precision(4, "int")
    sent = _by_client(
        _strategy("heterofl", (FLOAT32, FLOAT32, FLOAT32, int4)).configure_train(1, _start(), ConfigRecord(), grid=None)
    )
    record = sent[3].content["arrays"]
    assert record["0.weight"].stype == BITPACKED and tuple(record["0.weight"].shape) == (2, 4)
    assert sent[3].content["config"]["bitwidth"] == 4
