"""ClientApps that train honestly, then break their reply in a way chosen by the client
id: what a buggy or malicious device could send. Used by the end-to-end tests.

``app``, round 1: clients 0-6 misbehave, 7-9 are honest (3 valid replies).
Round 2: clients 6 and 7 fail, leaving 2 valid replies (fewer than min_replies=3).
Round 3: only clients 0-5 misbehave.

``slow_app``: client ``SLOW_CLIENT`` answers round 1 only after ``SLOW_SECONDS``.
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse import protocol
from fedsparse.clients import app as honest

app = ClientApp()
app.query()(honest.identify)

EXPECTED_REASONS = {
    0: "NaN or Inf",
    1: "shape",
    2: "dtype",
    3: "positive whole number",
    4: "missing num-examples",
    5: "client failed",
    6: "exceeds the",  # forged num-examples 10^12
}
SLOW_CLIENT, SLOW_SECONDS = 9, 6.0


def _replace_first(arrays: ArrayRecord, change) -> ArrayRecord:  # type: ignore[no-untyped-def]
    out = ArrayRecord({k: v for k, v in arrays.items()})
    name = next(iter(out))
    out[name] = Array(change(out[name].numpy()))
    return out


@app.train()
def train(message: Message, context: Context) -> Message:
    cid = int(context.node_config[protocol.PARTITION_ID])
    server_round = int(message.content["config"]["server-round"])
    if cid == 5 or (server_round == 2 and cid in (6, 7)):
        raise RuntimeError(f"device {cid} crashed")
    reply = honest.train(message, context)
    arrays, metrics = reply.content["arrays"], dict(reply.content["metrics"])
    if cid == 0:
        arrays = _replace_first(arrays, lambda a: a * np.nan)
    elif cid == 1:
        arrays = _replace_first(arrays, lambda a: a[:-1])
    elif cid == 2:
        arrays = _replace_first(arrays, lambda a: a.astype(np.float64))
    elif cid == 3:
        metrics["num-examples"] = -metrics["num-examples"]
    elif cid == 4:
        metrics.pop("num-examples")
    elif cid == 6 and server_round == 1:
        metrics["num-examples"] = 10**12
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(metrics)}), reply_to=message)


slow_app = ClientApp()
slow_app.query()(honest.identify)


@slow_app.train()
def slow_train(message: Message, context: Context) -> Message:
    if (
        int(context.node_config[protocol.PARTITION_ID]) == SLOW_CLIENT
        and int(message.content["config"]["server-round"]) == 1
    ):
        time.sleep(SLOW_SECONDS)
    return honest.train(message, context)
