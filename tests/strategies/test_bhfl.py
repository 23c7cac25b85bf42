"""Server rules of the bit-heterogeneous strategies on hand-built replies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord

from fedsparse.catalog import STRATEGIES
from fedsparse.nodes import ClientSampler, NodeDirectory
from fedsparse.quant import FLOAT32, Precision, fake_quantize
from fedsparse.strategies.prowd import ProWDParams
from fedsparse.strategy import StrategyContext
from fedsparse.wire import encode_at, float_tensors

from ..helpers import reply_from

INT8, INT4 = Precision(8, "int"), Precision(4, "int")
PRECISIONS = (FLOAT32, FLOAT32, INT8, INT4)  # clients 0..3 on nodes 100..103


def _strategy(name: str, params=None):  # type: ignore[no-untyped-def]
    spec = STRATEGIES.get(name)
    directory = NodeDirectory({100 + c: c for c in range(4)})
    ctx = StrategyContext(ClientSampler(directory, 4, seed=0), client_eval=False, precisions=PRECISIONS)
    return spec.build(params or spec.params(), ctx)


def _record(values) -> ArrayRecord:  # type: ignore[no-untyped-def]
    return ArrayRecord({"w": Array(np.asarray(values, np.float32).reshape(1, -1))})


def _round(strategy, start, uploads, weights=(1, 1, 1, 1)):  # type: ignore[no-untyped-def]
    """Send ``start``; client c replies ``uploads[c]`` at its precision; aggregate."""
    sent = list(strategy.configure_train(1, _record(start), ConfigRecord(), grid=None))
    replies = []
    for message, upload, weight in zip(sent, uploads, weights, strict=True):
        client = message.metadata.dst_node_id - 100
        precision = PRECISIONS[client]
        arrays = encode_at({"w": torch.tensor(upload, dtype=torch.float32).reshape(1, -1)}, precision)
        replies.append(reply_from(message, arrays, {"num-examples": weight, "bitwidth": precision.bits}))
    arrays, _ = strategy.aggregate_train(1, replies)
    return sent, arrays


def _values(record: ArrayRecord) -> np.ndarray:
    return float_tensors(record)["w"].numpy().reshape(-1)


def _q(values, precision: Precision) -> np.ndarray:  # type: ignore[no-untyped-def]
    return fake_quantize(torch.tensor(values, dtype=torch.float32).reshape(1, -1), precision).numpy().reshape(-1)


START = [0.5, -0.25, 0.1, 0.9]
UPLOADS = [[1.0, 0.0, 0.2, 0.7], [0.6, -0.5, 0.4, 0.3], [0.9, 0.2, -0.3, 0.6], [1.2, -0.1, 0.5, -0.8]]


def test_each_client_receives_the_model_at_its_bitwidth(server_identity) -> None:  # type: ignore[no-untyped-def]
    sent, _ = _round(_strategy("fedavg"), START, UPLOADS)
    for message in sent:
        precision = PRECISIONS[message.metadata.dst_node_id - 100]
        assert message.content["config"]["bitwidth"] == precision.bits
        assert np.array_equal(_values(message.content["arrays"]), _q(START, precision))


def test_fedavg_averages_dequantized_uploads_ignoring_bitwidth(server_identity) -> None:  # type: ignore[no-untyped-def]
    _, arrays = _round(_strategy("fedavg"), START, UPLOADS, weights=(1, 2, 3, 4))
    received = [_q(u, p) for u, p in zip(UPLOADS, PRECISIONS, strict=False)]
    expected = sum(w * r for w, r in zip((1, 2, 3, 4), received, strict=False)) / 10
    np.testing.assert_allclose(_values(arrays), expected, rtol=1e-6)


def test_grouped_avg_keeps_one_model_per_bitwidth(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("grouped_avg")
    _, arrays = _round(strategy, START, UPLOADS)
    np.testing.assert_allclose(_values(arrays), (np.array(UPLOADS[0]) + UPLOADS[1]) / 2, rtol=1e-6)
    for client in (2, 3):
        model = strategy.model_for(PRECISIONS[client], _record(START))
        np.testing.assert_allclose(_values(model), _q(UPLOADS[client], PRECISIONS[client]), rtol=1e-6)


def test_grouped_avg_asym_sends_low_bit_clients_the_all_client_mean(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("grouped_avg_asym")
    _, arrays = _round(strategy, START, UPLOADS)
    received = [_q(u, p) for u, p in zip(UPLOADS, PRECISIONS, strict=False)]
    np.testing.assert_allclose(_values(arrays), (received[0] + received[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(_values(strategy.model_for(INT4, arrays)), sum(received) / 4, rtol=1e-6)
    assert strategy.model_for(FLOAT32, _record(START)) is arrays


def test_fedpaq_adds_the_mean_uploaded_difference(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("fedpaq")
    sent, arrays = _round(strategy, START, [[0.1, 0.0, -0.2, 0.05]] * 4)
    assert all(m.content["config"]["learner"] == "fedpaq" for m in sent)
    deltas = [_q([0.1, 0.0, -0.2, 0.05], p) for p in PRECISIONS]
    np.testing.assert_allclose(_values(arrays), np.array(START, np.float32) + sum(deltas) / 4, rtol=1e-6)


def test_prowd_without_its_parts_is_fedavg_and_with_selection_drops_disagreeing_low_bits(server_identity) -> None:  # type: ignore[no-untyped-def]
    neither = _strategy("prowd", ProWDParams(dequantizer=False, selective=False, low_bit_update="from_global"))
    _, plain = _round(neither, START, UPLOADS)
    _, fedavg = _round(_strategy("fedavg"), START, UPLOADS)
    np.testing.assert_allclose(_values(plain), _values(fedavg), rtol=1e-6)

    start = np.array(START, np.float32)
    high = (np.array(UPLOADS[0]) + UPLOADS[1]) / 2 - start  # [0.3, 0, 0.2, -0.4]
    low = [_q(UPLOADS[c], PRECISIONS[c]) - start for c in (2, 3)]
    for normalise in ("agreeing", "all"):
        params = ProWDParams(dequantizer=False, selective=True, low_bit_update="from_global", normalise=normalise)
        _, arrays = _round(_strategy("prowd", params), START, UPLOADS)
        expected = []
        for i in range(4):
            kept = [d[i] for d in low if d[i] * high[i] > 0]
            weight = 2 + len(kept) if normalise == "agreeing" else 4
            expected.append(start[i] + (2 * high[i] + sum(kept)) / weight)
        np.testing.assert_allclose(_values(arrays), expected, rtol=1e-5)
    assert ProWDParams().normalise == "all"


def test_prowd_measures_low_bit_updates_from_the_model_the_client_received(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("prowd", ProWDParams(dequantizer=False, selective=False))
    _, arrays = _round(strategy, START, UPLOADS)
    start = np.array(START, np.float32)
    low = [start + _q(UPLOADS[c], PRECISIONS[c]) - _q(START, PRECISIONS[c]) for c in (2, 3)]
    expected = (np.array(UPLOADS[0]) + UPLOADS[1] + low[0] + low[1]) / 4
    np.testing.assert_allclose(_values(arrays), expected, rtol=1e-5)


def test_prowd_dequantizer_state_round_trips(server_identity) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy("prowd", ProWDParams(distill_weight=0.0, steps=3, batch_elements=4))
    _round(strategy, START, UPLOADS)
    state = strategy.state_arrays()
    fresh = _strategy("prowd", ProWDParams(distill_weight=0.0, steps=3, batch_elements=4))
    fresh.load_state_arrays(state)
    for a, b in zip(strategy.dequantizer.parameters(), fresh.dequantizer.parameters(), strict=False):
        assert torch.equal(a, b)
    assert any(p.abs().sum() > 0 for p in fresh.dequantizer.blocks[0].net[-1].parameters())  # it had trained
    assert (
        fresh.trainer.optimizer.state_dict()["state"].keys() == strategy.trainer.optimizer.state_dict()["state"].keys()
    )


@pytest.mark.parametrize("name", ["grouped_avg", "grouped_avg_asym"])
def test_groups_that_have_not_trained_keep_the_first_model(server_identity, name: str) -> None:  # type: ignore[no-untyped-def]
    strategy = _strategy(name)
    strategy.configure_train(1, _record(START), ConfigRecord(), grid=None)
    np.testing.assert_allclose(_values(strategy.model_for(INT8, _record([9, 9, 9, 9]))), START)
