from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Error

from fedsparse.screening import ExampleBound, Rejection, RejectionTally, screen_replies
from fedsparse.server import run_status
from fedsparse.task import ClientTask
from fedsparse.wire import encode_model

from .helpers import reply_from, train_message


@pytest.fixture
def sent(quickstart_cfg, server_identity):  # type: ignore[no-untyped-def]
    task = ClientTask.from_experiment(quickstart_cfg)
    arrays = encode_model(task.build_model())
    return {node: train_message(task, arrays, node) for node in (10, 11, 12)}, arrays


def _with(arrays: ArrayRecord, name: str, value: np.ndarray) -> ArrayRecord:
    out = ArrayRecord({k: v for k, v in arrays.items()})
    out[name] = Array(value)
    return out


def _first(arrays: ArrayRecord) -> tuple[str, np.ndarray]:
    name = next(iter(arrays))
    return name, arrays[name].numpy()


BAD = {
    "nan": lambda a: (_with(a, _first(a)[0], _first(a)[1] * np.nan), {"num-examples": 5}, "NaN or Inf"),
    "inf": lambda a: (_with(a, _first(a)[0], _first(a)[1] + np.inf), {"num-examples": 5}, "NaN or Inf"),
    "shape": lambda a: (_with(a, _first(a)[0], _first(a)[1][:-1]), {"num-examples": 5}, "shape"),
    "dtype": lambda a: (_with(a, _first(a)[0], _first(a)[1].astype(np.float64)), {"num-examples": 5}, "dtype"),
    "missing-array": lambda a: (
        ArrayRecord({k: v for k, v in list(a.items())[1:]}),
        {"num-examples": 5},
        "array names differ",
    ),
    "negative": lambda a: (a, {"num-examples": -3}, "positive whole number"),
    "zero": lambda a: (a, {"num-examples": 0}, "positive whole number"),
    "fraction": lambda a: (a, {"num-examples": 2.5}, "positive whole number"),
    "missing-count": lambda a: (a, {"loss": 1.0}, "missing num-examples"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_reply_is_rejected_and_the_rest_kept(sent, kind: str) -> None:  # type: ignore[no-untyped-def]
    messages, arrays = sent
    bad_arrays, bad_metrics, reason = BAD[kind](arrays)
    replies = [
        reply_from(messages[12], arrays, {"num-examples": 7}),
        reply_from(messages[11], bad_arrays, bad_metrics),
        reply_from(messages[10], arrays, {"num-examples": 9}),
    ]
    client_of = {10: 0, 11: 1, 12: 2}.get
    accepted, rejected = screen_replies(messages.values(), replies, client_of)
    assert [client_of(m.metadata.src_node_id) for m in accepted] == [0, 2]  # client-id order
    assert len(rejected) == 1 and rejected[0].client == 1 and reason in rejected[0].reason


def test_failed_missing_and_unsolicited_replies(sent) -> None:  # type: ignore[no-untyped-def]
    from flwr.app import Message

    messages, arrays = sent
    failed = Message(Error(code=0, reason="boom"), reply_to=messages[10])
    task = ClientTask.model_validate_json(str(messages[10].content["config"]["task"]))
    stranger = reply_from(train_message(task, arrays, 99), arrays, {"num-examples": 3})
    accepted, rejected = screen_replies(
        messages.values(),
        [failed, stranger, reply_from(messages[12], arrays, {"num-examples": 1})],
        {10: 0, 11: 1, 12: 2, 99: 9}.get,
    )
    assert len(accepted) == 1
    reasons = {r.client: r.reason for r in rejected}
    assert "boom" in reasons[0]
    assert reasons[1] == "no reply before the round timeout"
    assert reasons[9] == "reply from a node that was not asked"


@pytest.fixture
def sent_4bit(quickstart_cfg, server_identity):  # type: ignore[no-untyped-def]
    from fedsparse.quant import Precision
    from fedsparse.wire import encode_at, float_tensors

    task = ClientTask.from_experiment(quickstart_cfg)
    model = encode_model(task.build_model())
    arrays = encode_at(float_tensors(model), Precision(4, "int"))
    return train_message(task, arrays, 10, bitwidth=4), arrays, model


def _truncated(arrays: ArrayRecord) -> ArrayRecord:
    name = next(iter(arrays))
    array = arrays[name]
    out = ArrayRecord(dict(arrays.items()))
    out[name] = Array(dtype=array.dtype, shape=tuple(array.shape), stype=array.stype, data=array.data[:-1])
    return out


def test_a_low_bit_reply_must_match_the_bitwidth_it_was_sent(sent_4bit) -> None:  # type: ignore[no-untyped-def]
    from fedsparse.quant import Precision
    from fedsparse.wire import encode_at, float_tensors

    message, arrays, model = sent_4bit
    as_int8 = encode_at(float_tensors(model), Precision(8, "int"))
    cases = {
        "good": (arrays, {"num-examples": 5, "bitwidth": 4}, None),
        "payload at 8 bits": (as_int8, {"num-examples": 5, "bitwidth": 4}, "dtype int8 != int4"),
        "payload in float32": (model, {"num-examples": 5, "bitwidth": 4}, "dtype float32 != int4"),
        "declares 8 bits": (arrays, {"num-examples": 5, "bitwidth": 8}, "declared bitwidth 8, sent 4"),
        "declares nothing": (arrays, {"num-examples": 5}, "declared bitwidth None, sent 4"),
        "truncated packing": (_truncated(arrays), {"num-examples": 5, "bitwidth": 4}, "undecodable"),
    }
    for case, (reply_arrays, metrics, reason) in cases.items():
        accepted, rejected = screen_replies([message], [reply_from(message, reply_arrays, metrics)], {10: 0}.get)
        if reason is None:
            assert len(accepted) == 1 and not rejected, case
        else:
            assert not accepted and reason in rejected[0].reason, (case, rejected)


def test_a_forged_num_examples_is_rejected_above_the_clients_training_set(sent) -> None:  # type: ignore[no-untyped-def]
    messages, arrays = sent
    replies = [
        reply_from(messages[10], arrays, {"num-examples": 10**12}),
        reply_from(messages[11], arrays, {"num-examples": 100}),
    ]
    client_of = {10: 0, 11: 1, 12: 2}.get
    bound = ExampleBound(100, "training samples this client holds")
    accepted, rejected = screen_replies(messages.values(), replies, client_of, example_bound=lambda client: bound)
    assert [client_of(m.metadata.src_node_id) for m in accepted] == [1]  # at the limit: accepted
    assert rejected[0].client == 0 and "1000000000000 exceeds the 100 training samples" in rejected[0].reason


def test_rejections_are_tallied_by_kind_and_judge_the_run() -> None:
    tally = RejectionTally()
    tally.add([Rejection(0, "num-examples 599 exceeds the 431 training samples this client holds")])
    tally.add([Rejection(1, "num-examples 646 exceeds the 431 training samples this client holds")])
    tally.add([Rejection(2, "no reply before the round timeout"), Rejection(3, "conv1.weight: contains NaN or Inf")])
    assert tally.total() == 4
    assert tally.top(2) == [
        {"reason": "num-examples 599 exceeds the 431 training samples this client holds", "count": 2},
        {"reason": "no reply before the round timeout", "count": 1},
    ]
    assert RejectionTally.from_values(tally.values()).top(3) == tally.top(3)  # as a checkpoint keeps it

    assert run_status(4, 2, tally, 0.5) == ("ok", None)
    status, why = run_status(4, 3, tally, 0.5)
    assert status == "degraded" and why is not None and why.startswith("3 of 4 rounds skipped")
    status, why = run_status(4, 4, tally, 1.0)
    assert status == "failed" and why is not None and "\n" not in why
    assert why.startswith("no round aggregated (4 of 4 skipped); rejected replies: 2x 'num-examples 599 exceeds")


def test_an_oversized_payload_is_rejected_before_decoding(sent) -> None:  # type: ignore[no-untyped-def]
    messages, arrays = sent
    name, _ = _first(arrays)
    honest = arrays[name]
    padded = ArrayRecord({k: v for k, v in arrays.items()})
    padded[name] = Array(
        dtype=honest.dtype,
        shape=tuple(honest.shape),
        stype=honest.stype,
        data=honest.data + bytes(64 * len(honest.data) + 4096),
    )
    replies = [reply_from(messages[10], padded, {"num-examples": 5})]
    accepted, rejected = screen_replies(messages.values(), replies, {10: 0, 11: 1, 12: 2}.get)
    assert not accepted and "oversized payload" in rejected[0].reason
