"""The fedsparse ClientApp: the same code runs in simulation and on a real SuperNode.

A node learns who it is from its node config (``partition-id``, ``num-partitions``, and
optionally ``data-path`` for a device that keeps its data elsewhere); everything about
what to train comes with the message (:class:`fedsparse.task.ClientTask`).
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse.nodes import identity_reply
from fedsparse.screening import NUM_EXAMPLES
from fedsparse.strategies.fedprox import PROXIMAL_MU
from fedsparse.task import CONFIG_KEY, ClientTask
from fedsparse.training import evaluate as evaluate_model
from fedsparse.training import make_optimizer, pick_device, train_epochs
from fedsparse.wire import encode_model, load_into

app = ClientApp()

ARRAYS_KEY = "arrays"


def client_id(context: Context) -> int:
    return int(context.node_config["partition-id"])


def _data_path(context: Context) -> str | None:
    path = context.node_config.get("data-path")
    return str(path) if path else None


def _model_from(message: Message, task: ClientTask) -> torch.nn.Module:
    model = task.build_model()
    load_into(model, message.content[ARRAYS_KEY])
    return model


@app.query()
def identify(message: Message, context: Context) -> Message:
    return identity_reply(message, client_id(context), int(context.node_config["num-partitions"]))


@app.train()
def train(message: Message, context: Context) -> Message:
    task = ClientTask.from_message(message)
    config = message.content[CONFIG_KEY]
    cid = client_id(context)
    data = task.client_data(cid, _data_path(context))
    model = _model_from(message, task)
    device = pick_device(task.use_gpu)
    server_round = int(config.get("server-round", 0))
    seed = int(np.random.SeedSequence([task.seed, server_round, cid]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(seed)
    stats = train_epochs(
        model,
        data.train,
        epochs=task.local_epochs,
        batch_size=task.batch_size,
        optimizer=make_optimizer(
            model.parameters(), task.optimizer, task.lr, task.momentum, task.weight_decay
        ),
        generator=generator,
        device=device,
        proximal_mu=float(config.get(PROXIMAL_MU, 0.0)),
    )
    metrics = MetricRecord(
        {NUM_EXAMPLES: stats.num_examples, "train_loss": stats.loss, "train_accuracy": stats.accuracy}
    )
    content = RecordDict({ARRAYS_KEY: encode_model(model), "metrics": metrics})
    return Message(content, reply_to=message)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Evaluate the received model on this client's local validation split."""
    task = ClientTask.from_message(message)
    data = task.client_data(client_id(context), _data_path(context))
    model = _model_from(message, task)
    stats = evaluate_model(model, data.val, pick_device(task.use_gpu))
    metrics = MetricRecord(
        {NUM_EXAMPLES: max(stats.num_examples, 1), "val_loss": stats.loss, "val_accuracy": stats.accuracy}
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=message)
