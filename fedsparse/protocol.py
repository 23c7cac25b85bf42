"""What crosses the wire between the fedsparse server and its clients, spelled once.

Every record name, config key, metric key and node-config key that a server, a client or
a deployed device reads or writes is a constant here; nothing else spells one. Server
and client halves both import this module (``clients/`` never imports ``strategies/``).

A message's :class:`~flwr.app.RecordDict` holds:

========================  ==============  ===============================================
record                    kind            contents
========================  ==============  ===============================================
``arrays``                ArrayRecord     the model (or the part a strategy shares)
``config``                ConfigRecord    round, task, bitwidth, learner and its params
``metrics``               MetricRecord    a reply's ``num-examples`` and training metrics
``kept``                  ArrayRecord     a sub-model's kept channel indices per layer
``adaptive``              ArrayRecord     FedWeIT: a finished task's sparse A (reply)
``knowledge``             ArrayRecord     FedWeIT: the other clients' A (``kb<j>.<name>``)
``identity``              ConfigRecord    the answer to the server's identity query
``runtime``               ConfigRecord    a training reply: where and when the client ran
``control``               ArrayRecord     SCAFFOLD: the server's control variate c (down),
                                          a client's control change Δc_i (up)
========================  ==============  ===============================================

Algorithm-specific client hyperparameters travel as one JSON object under
``learner-params`` (validated on arrival by the learner's own schema), so an algorithm
that changes the client adds no key here. ``proximal-mu`` is Flower's own key, so that
Flower's FedProx strategy drives fedsparse clients and the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedsparse.compat import records_of

# ---------------------------------------------------------------- record names
ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"
KEPT = "kept"
ADAPTIVE = "adaptive"
KNOWLEDGE = "knowledge"
IDENTITY = "identity"
RUNTIME = "runtime"
CONTROL = "control"

# ---------------------------------------------------------------- config keys (server → client)
SERVER_ROUND = "server-round"  # Flower's key: the round a message belongs to
TASK = "task"  # the client task (fedsparse.task.ClientTask) as JSON
BITWIDTH = "bitwidth"  # the device format the model was sent at (also a reply metric)
LEARNER = "learner"  # which client learner trains (clients/ registry name)
LEARNER_PARAMS = "learner-params"  # that learner's hyperparameters, a JSON object
PROXIMAL_MU = "proximal-mu"  # Flower's FedProx key
PRUNED_RATE = "pruned-rate"  # the pruned rate of the sub-model sent
WIDTH_SCALE = "width-scale"  # multiply hidden activations by this while training

# ---------------------------------------------------------------- metric keys (client → server)
NUM_EXAMPLES = "num-examples"  # Flower's key: the weight of a reply
TRAIN_LOSS = "train_loss"
TRAIN_ACCURACY = "train_accuracy"
VAL_LOSS = "val_loss"
VAL_ACCURACY = "val_accuracy"
TASK_ACCURACY = "task-accuracy"  # continual learning: accuracy on each task seen so far, in stream order
TASK_VAL_ACCURACY = "task-val-accuracy"  # the same on each task's validation split (data.tasks.val_fraction > 0)
MODEL_SIZE = "model-size-bytes"  # continual learning: what the client stores to serve all its tasks
STATE_SIZE = "state-size-bytes"  # … and with what only further training needs (past weights, EWC's)
TRAIN_SECONDS = "train-seconds"  # the wall-clock seconds a client spent on the training message, measured there
PERSONAL_ACCURACY = "personal_accuracy"  # Ditto: a client's personal model on its own held-out split
PERSONAL_LOSS = "personal_loss"
# facts about one client, not quantities to average over clients
PER_CLIENT_METRICS = (BITWIDTH, TASK_ACCURACY, TASK_VAL_ACCURACY, MODEL_SIZE, STATE_SIZE, TRAIN_SECONDS)

# ---------------------------------------------------------------- identity query (client → server)
CLIENT_ID = "client-id"
NUM_PARTITIONS = "num-partitions"
PROFILE = "profile"

# ---------------------------------------------------------------- node config (set on each device)
PARTITION_ID = "partition-id"  # Flower's key: the client id
# NUM_PARTITIONS (Flower's key), BITWIDTH and PROFILE are node-config keys too, and so is
# NUM_EXAMPLES: the training examples a device that brings its own data holds (declared
# at discovery, the bound on its replies' num-examples)
DATA_PATH = "data-path"  # a device's own copy of the dataset
STATE_DIR = "state-dir"  # where a deployed node keeps its state on disk, one folder per run beneath it
RUN_STATE_DIR = "run-state-dir"  # set by a simulation engine: this run's own state folder for the node, as is
THROTTLE = "throttle"  # emulate a device this fraction as fast as the machine (0 < throttle <= 1)

# ---------------------------------------------------------------- run config (flwr run)
RUN_CONFIG_EXPERIMENT = "config"  # the experiment YAML, inside the installed app
RUN_CONFIG_OUT = "out"  # the output folder, inside $FEDSPARSE_RUNS_ROOT
RUN_CONFIG_TABLE = "fedsparse"  # [tool.flwr.app.config.fedsparse]: an experiment spelled inline

# ---------------------------------------------------------------- the learners' names
PLAIN = "plain"  # the default learner: train the model received


# ---------------------------------------------------------------- runtime record keys
RAN_ON_NODE = "node"  # the Ray node a simulated client ran on (absent off Ray)
DEVICE = "device"  # the torch device type it trained on: "cuda" or "cpu"
STARTED_AT = "started-at"  # wall-clock time.time() when the training job began there
FINISHED_AT = "finished-at"  # ... and when it ended


# ---------------------------------------------------------------- typed helpers
def config_of(content: RecordDict) -> ConfigRecord:
    """The message's config record (an empty one if it carries none)."""
    record = records_of(content, ConfigRecord).get(CONFIG)
    return record if record is not None else ConfigRecord()


def metrics_of(content: RecordDict) -> MetricRecord | None:
    """A reply's metrics record, if it has one."""
    return records_of(content, MetricRecord).get(METRICS)


def arrays_of(content: RecordDict) -> ArrayRecord:
    """The model record a message carries: ``arrays``, else its only ArrayRecord (a stock
    Flower client may name it otherwise); ``KeyError`` if there is none to pick."""
    records = records_of(content, ArrayRecord)
    if ARRAYS in records or len(records) != 1:
        return records[ARRAYS]
    return next(iter(records.values()))


def server_round(config: ConfigRecord, default: int | None = None) -> int:
    """The round a message belongs to; ``default`` where a sender may omit it (``None``: required)."""
    if SERVER_ROUND in config:
        return int(config[SERVER_ROUND])  # type: ignore[arg-type]
    if default is None:
        raise ValueError(f"config has no {SERVER_ROUND!r}")
    return default


def learner_of(config: ConfigRecord) -> str:
    """The client learner a message asks for.

    A server that names none is taken at its word: Flower's FedProx sends only
    ``proximal-mu`` (the ``fedprox`` learner), any other Flower strategy nothing
    (the ``plain`` learner).
    """
    if LEARNER in config:
        return str(config[LEARNER])
    return "fedprox" if PROXIMAL_MU in config else PLAIN


def learner_params(config: ConfigRecord) -> dict[str, Any]:
    """The learner's hyperparameters sent with the message (an empty mapping if none)."""
    raw = config.get(LEARNER_PARAMS)
    if raw is None:
        return {}
    params = json.loads(str(raw))
    if not isinstance(params, dict):
        raise ValueError(f"{LEARNER_PARAMS} must be a JSON object")
    return params


def with_learner(config: ConfigRecord, learner: str, params: Mapping[str, Any] | None = None) -> ConfigRecord:
    """``config`` naming ``learner`` and, if given, its hyperparameters."""
    config[LEARNER] = learner
    if params:
        config[LEARNER_PARAMS] = json.dumps(dict(params))
    return config


def sent_bitwidth(config: ConfigRecord) -> int:
    """The format the model in this message was sent at (float32 when not said)."""
    return int(config.get(BITWIDTH, 32))  # type: ignore[arg-type]


def reply(arrays: ArrayRecord | None, metrics: Mapping[str, Any], **records: ArrayRecord) -> RecordDict:
    """A reply's content: the model record (if any), its metrics, and any further records."""
    content = RecordDict({ARRAYS: arrays} if arrays is not None else {})
    content[METRICS] = MetricRecord(dict(metrics))
    for name, record in records.items():
        content[name] = record
    return content


def train_metrics(num_examples: int, loss: float, accuracy: float, **extra: Any) -> dict[str, Any]:
    """The metrics every training reply carries, plus learner-specific ones."""
    return {NUM_EXAMPLES: num_examples, TRAIN_LOSS: loss, TRAIN_ACCURACY: accuracy, **extra}


def eval_metrics(num_examples: int, loss: float, accuracy: float) -> dict[str, Any]:
    """The metrics of an evaluation reply on a client's validation split."""
    return {NUM_EXAMPLES: num_examples, VAL_LOSS: loss, VAL_ACCURACY: accuracy}


def num_examples(metrics: MetricRecord) -> int:
    """A screened reply's ``num-examples`` (a positive whole number)."""
    value = metrics[NUM_EXAMPLES]
    if not isinstance(value, (int, float)):
        raise ValueError(f"{NUM_EXAMPLES} must be a number")
    return int(value)


def knowledge_key(entry: int, name: str) -> str:
    """FedWeIT knowledge record: the ``entry``-th other client's layer ``name``."""
    return f"kb{entry}.{name}"


def split_knowledge_key(key: str) -> tuple[str, str]:
    """The inverse of :func:`knowledge_key`: ``(entry, layer name)``."""
    entry, _, name = key.partition(".")
    return entry, name


def runtime_record(device: str, node: str | None, started: float, finished: float) -> ConfigRecord:
    """A training reply's ``runtime`` record."""
    record = ConfigRecord({DEVICE: device, STARTED_AT: started, FINISHED_AT: finished})
    if node is not None:
        record[RAN_ON_NODE] = node
    return record


def runtime_of(content: RecordDict) -> dict[str, Any]:
    """A reply's ``runtime`` record as a metrics row's client fields (``device``, ``node``,
    ``started``, ``finished``); empty if the reply has none."""
    record = records_of(content, ConfigRecord).get(RUNTIME)
    if record is None:
        return {}
    fields = {DEVICE: record.get(DEVICE), RAN_ON_NODE: record.get(RAN_ON_NODE)}
    for field, key in (("started", STARTED_AT), ("finished", FINISHED_AT)):
        value = record.get(key)
        fields[field] = round(float(value), 3) if isinstance(value, (int, float)) else None
    return fields
