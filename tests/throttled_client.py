"""A ClientApp on which one device is ``FACTOR`` times slower than the rest, for real:
client ``THROTTLED`` does its local training ``FACTOR`` times over (on whatever model it
was sent, so a smaller sub-model makes it faster) and reports the seconds it all took.
Used by the measured-clock tests."""

from __future__ import annotations

import time

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedsparse import protocol
from fedsparse.clients import app as honest
from fedsparse.clients.learner import ClientJob

THROTTLED, FACTOR = 3, 4

app = ClientApp()
app.query()(honest.identify)


@app.train()
def train(message: Message, context: Context) -> Message:
    started = time.perf_counter()
    reply = honest.train(message, context)
    if int(context.node_config[protocol.PARTITION_ID]) == THROTTLED:
        for _ in range(FACTOR - 1):
            honest.train_job(ClientJob(message, context, honest.task_of(message, context)))
        metrics = protocol.metrics_of(reply.content)
        assert metrics is not None
        metrics[protocol.TRAIN_SECONDS] = time.perf_counter() - started
    return reply
