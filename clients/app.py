"""The fedsparse ClientApp: the same code runs in simulation and on a real SuperNode.

A node learns who it is from its node config (``partition-id``, ``num-partitions``, and
optionally ``data-path`` for a device that keeps its data elsewhere, ``bitwidth`` for a
device with fixed-precision hardware, ``profile`` naming the config's device profile
it is and ``num-examples`` for a device that holds its own data; it declares the last
three when the server asks who it is). Everything about what
to train comes with the message: the task (:class:`fedsparse.task.ClientTask`), the
round, and the learner to run (:mod:`fedsparse.clients.learner`) with its
hyperparameters. Under a server that sends no task (Flower's own strategies), the run
config's ``fedsparse`` table says what to train
(:func:`fedsparse.deployment.experiment_from_run_config`).

A node with ``throttle`` = f in its node config stands for a device f times as fast as
the machine it runs on: it waits in proportion to each round's work, so its measured
time (``federation.clock: measured``) is that device's.

A learner may keep state between rounds in ``Context.state`` (SCAFFOLD's control
variate, Ditto's personal model, a task stream's heads); with ``state-dir`` in its node
config the node also keeps it on disk (:mod:`fedsparse.node_state`) and
continues with it after a restart.
"""

from __future__ import annotations

import logging
import time

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob, Learner
from fedsparse.node_state import restore_node_state, save_node_state, state_dir_of
from fedsparse.nodes import identity_reply
from fedsparse.ray_grid import current_ray_node
from fedsparse.task import ClientTask
from fedsparse.training import evaluate as evaluate_model

log = logging.getLogger(__name__)
app = ClientApp()


def task_of(message: Message, context: Context) -> ClientTask:
    """The task the server sent, else (a server that sends none) the run config's."""
    config = protocol.config_of(message.content)
    if protocol.TASK in config:
        return ClientTask.from_config(config)
    from fedsparse.deployment import experiment_from_run_config

    return ClientTask.from_experiment(experiment_from_run_config(context.run_config))


@app.query()
def identify(message: Message, context: Context) -> Message:
    node = context.node_config
    return identity_reply(
        message,
        int(node[protocol.PARTITION_ID]),
        int(node[protocol.NUM_PARTITIONS]),
        bitwidth=int(node[protocol.BITWIDTH]) if protocol.BITWIDTH in node else None,
        profile=str(node[protocol.PROFILE]) if protocol.PROFILE in node else None,
        num_examples=int(node[protocol.NUM_EXAMPLES]) if protocol.NUM_EXAMPLES in node else None,
    )


def train_job(job: ClientJob, learner: Learner | None = None) -> RecordDict:
    """Run ``learner`` (default: the one the message names); a node with ``state-dir`` in
    its node config starts from the state it had when the round began (restored from
    disk after a restart) and saves the state the learner leaves."""
    learner = learner or LEARNERS.get(protocol.learner_of(job.config))()
    state_dir = state_dir_of(job.context)
    if state_dir is None:
        return learner.train(job)
    restored = restore_node_state(job.context, state_dir, job.server_round)
    if restored is not None:
        log.warning("node state restored from %s", restored)
    content = learner.train(job)
    save_node_state(job.context, state_dir, job.server_round)
    return content


@app.train()
def train(message: Message, context: Context) -> Message:
    """Train as the message says; the reply's metrics also carry the seconds it took here
    (``train-seconds``: the learner's whole job, training and its own evaluation; not the
    one-time imports and data load, which would make every device's first round look slow),
    and its ``runtime`` record where (device, Ray node) and when the job ran."""
    job = ClientJob(message, context, task_of(message, context))
    learner = LEARNERS.get(protocol.learner_of(job.config))()  # imports every learner the first time
    job.load_data()
    began, started = time.time(), time.perf_counter()
    content = train_job(job, learner)
    throttle(context, time.perf_counter() - started)
    metrics = protocol.metrics_of(content)
    if metrics is not None:
        metrics[protocol.TRAIN_SECONDS] = time.perf_counter() - started
    content[protocol.RUNTIME] = protocol.runtime_record(job.device.type, current_ray_node(), began, time.time())
    return Message(content, reply_to=message)


def throttle(context: Context, busy: float) -> None:
    """On a node configured with ``throttle`` = f, wait (1/f − 1) × ``busy`` seconds: the
    node then takes as long as a device f times as fast would, in proportion to the work
    it was given (a smaller sub-model shortens the wait too)."""
    fraction = float(context.node_config.get(protocol.THROTTLE, 1.0))
    if not 0 < fraction <= 1:
        raise ValueError(f"node config {protocol.THROTTLE}={fraction}: must be in (0, 1]")
    if fraction < 1:
        time.sleep(busy * (1 / fraction - 1))


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Evaluate the received model on this client's local validation split."""
    job = ClientJob(message, context, task_of(message, context))
    stats = evaluate_model(job.received_model(), job.client_data().val, job.device)
    metrics = protocol.eval_metrics(max(stats.num_examples, 1), stats.loss, stats.accuracy)
    return Message(protocol.reply(None, metrics), reply_to=message)
