"""The fedsparse ClientApp: the same code runs in simulation and on a real SuperNode.

A node learns who it is from its node config (``partition-id``, ``num-partitions``, and
optionally ``data-path`` for a device that keeps its data elsewhere, ``bitwidth`` for
a device with fixed-precision hardware and ``profile`` naming the config's device
profile it is; it declares the last two when the server asks who it is); everything
about what to train comes with the message (:class:`fedsparse.task.ClientTask`, plus
``bitwidth``, ``upload`` and ``width-scale`` keys; with task streams,
:mod:`fedsparse.clients.continual` takes over). Under a server that sends no task
(Flower's own strategies), the run config's ``fedsparse`` table says what to train
(:func:`fedsparse.deployment.experiment_from_run_config`).
A pruned sub-model simply arrives with narrower arrays: the client
builds the task's model at the received shapes and trains it like any other.

At a bitwidth below 32 the client trains with quantization-aware training (a float
latent copy, forward through Q_b, straight-through gradients) and uploads Q_b(latent)
bit-packed; with ``upload = "delta"`` (FedPAQ) it uploads the stochastically quantized
difference to the model it received instead.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsparse.clients.continual import train_continual
from fedsparse.deployment import experiment_from_run_config
from fedsparse.nodes import PROFILE, identity_reply
from fedsparse.quant import Precision
from fedsparse.quant.qat import quantization_aware
from fedsparse.prune import resize_to, scaled_activations
from fedsparse.screening import ARRAYS as ARRAYS_KEY
from fedsparse.screening import BITWIDTH, NUM_EXAMPLES
from fedsparse.strategies.fedpaq import UPLOAD, UPLOAD_DELTA
from fedsparse.strategies.fedprox import PROXIMAL_MU
from fedsparse.strategies.submodel import WIDTH_SCALE
from fedsparse.task import CONFIG_KEY, TASK_KEY, ClientTask
from fedsparse.training import evaluate as evaluate_model
from fedsparse.training import make_optimizer, pick_device, train_epochs
from fedsparse.wire import encode_at, load_into

app = ClientApp()



def client_id(context: Context) -> int:
    return int(context.node_config["partition-id"])


def _data_path(context: Context) -> str | None:
    path = context.node_config.get("data-path")
    return str(path) if path else None


def _precision(message: Message, context: Context) -> Precision:
    """The bitwidth the server sent; a device that declares its own must agree."""
    sent = int(message.content[CONFIG_KEY].get(BITWIDTH, 32))
    device = context.node_config.get(BITWIDTH)
    if device is not None and int(device) != sent:
        raise ValueError(f"server sent a {sent}-bit model to a {int(device)}-bit device")
    return Precision.from_bitwidth(sent)


def _task(message: Message, context: Context) -> ClientTask:
    """The task the server sent, else (a server that sends none) the run config's."""
    config = message.content.config_records.get(CONFIG_KEY)
    if config is not None and TASK_KEY in config:
        return ClientTask.from_message(message)
    return ClientTask.from_experiment(experiment_from_run_config(context.run_config))


def _model_from(message: Message, task: ClientTask) -> torch.nn.Module:
    """The task's model at the shapes received: a pruned sub-model arrives narrower."""
    model = task.build_model()
    arrays = message.content[ARRAYS_KEY]
    resize_to(model, {name: array.shape for name, array in arrays.items()})
    load_into(model, arrays)
    return model


@app.query()
def identify(message: Message, context: Context) -> Message:
    node = context.node_config
    return identity_reply(
        message,
        client_id(context),
        int(node["num-partitions"]),
        bitwidth=int(node[BITWIDTH]) if BITWIDTH in node else None,
        profile=str(node[PROFILE]) if PROFILE in node else None,
    )


@app.train()
def train(message: Message, context: Context) -> Message:
    task = _task(message, context)
    cid = client_id(context)
    if task.tasks is not None:
        return train_continual(message, context, task, cid, _data_path(context))
    config = message.content[CONFIG_KEY]
    precision = _precision(message, context)
    data = task.client_data(cid, _data_path(context))
    model = _model_from(message, task)
    upload_delta = config.get(UPLOAD) == UPLOAD_DELTA
    received = {name: t.clone() for name, t in model.state_dict().items()} if upload_delta else {}
    device = pick_device(task.use_gpu)
    server_round = int(config.get("server-round", 0))
    seed = int(np.random.SeedSequence([task.seed, server_round, cid]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(seed)
    width_scale = float(config.get(WIDTH_SCALE, 1.0))
    with quantization_aware(model, precision), scaled_activations(model, width_scale):
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
    state = {name: t.cpu() for name, t in model.state_dict().items()}
    if upload_delta:
        delta = {name: state[name] - received[name] for name in state}
        arrays = encode_at(delta, precision, generator=torch.Generator().manual_seed(seed + 1))
    else:
        arrays = encode_at(state, precision)
    metrics = MetricRecord(
        {
            NUM_EXAMPLES: stats.num_examples,
            "train_loss": stats.loss,
            "train_accuracy": stats.accuracy,
            BITWIDTH: precision.bits,
        }
    )
    return Message(RecordDict({ARRAYS_KEY: arrays, "metrics": metrics}), reply_to=message)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Evaluate the received model on this client's local validation split."""
    task = _task(message, context)
    data = task.client_data(client_id(context), _data_path(context))
    model = _model_from(message, task)
    stats = evaluate_model(model, data.val, pick_device(task.use_gpu))
    metrics = MetricRecord(
        {NUM_EXAMPLES: max(stats.num_examples, 1), "val_loss": stats.loss, "val_accuracy": stats.accuracy}
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=message)
