from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MessageType

from fedsparse.catalog import STRATEGIES
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.strategies.fedprox import FedProxParams
from fedsparse.strategy import StrategyContext

from ..helpers import reply_from


def _strategy(name: str, params=None):  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get(name)
    ctx = StrategyContext(ClientSampler(NodeDirectory({100: 0, 101: 1, 102: 2}), 2, seed=0), client_eval=False)
    return spec.build(params or spec.params(), ctx)


def test_configure_train_sends_the_model_to_the_sampled_clients(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("fedprox", FedProxParams(mu=0.3))
    arrays = ArrayRecord({"w": Array(np.ones(3, np.float32))})
    messages = list(strategy.configure_train(4, arrays, ConfigRecord({"task": "{}"}), grid=None))
    assert [m.metadata.dst_node_id for m in messages] == strategy.context.sampler.sample(4)
    for msg in messages:
        assert msg.metadata.message_type == MessageType.TRAIN
        assert msg.content["config"]["server-round"] == 4
        assert msg.content["config"]["proximal-mu"] == 0.3
        assert np.array_equal(msg.content["arrays"]["w"].numpy(), np.ones(3))


def test_aggregate_is_the_example_weighted_mean(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("fedavg")
    sent = list(strategy.configure_train(1, ArrayRecord({"w": Array(np.zeros(2, np.float32))}), ConfigRecord(), None))
    assert len(sent) == 2
    values = [([1.0, 2.0], 1, 0.5), ([4.0, -1.0], 3, 2.5)]
    replies = [
        reply_from(msg, ArrayRecord({"w": Array(np.array(w, np.float32))}), {"num-examples": n, "train_loss": loss})
        for msg, (w, n, loss) in zip(sent, values, strict=False)
    ]
    arrays, metrics = strategy.aggregate_train(1, replies)
    np.testing.assert_allclose(arrays["w"].numpy(), [(1 * 1 + 4 * 3) / 4, (2 * 1 - 1 * 3) / 4], rtol=1e-6)
    assert metrics["train_loss"] == (0.5 * 1 + 2.5 * 3) / 4
