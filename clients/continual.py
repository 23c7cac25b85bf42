"""The continual-learning side of the ClientApp: a client working through its task stream.

The round number says which task of its stream a client learns (``data.tasks``:
``rounds_per_task`` rounds each); after training it reports its accuracy on every task
it has seen so far (``task-accuracy``, in stream order), on that task's test set with
that task's head. How it keeps its model depends on the strategy (``learner`` key):

* ``shared`` (FedAvg, FedProx): the multi-head model arrives with every message and the
  trained one goes back whole;
* ``local``: the client's own multi-head model lives in its node state; nothing travels;
* ``fedweit``: a decomposed net (:mod:`fedsparse.decompose`) in its node state; the
  base comes from the server (written where non-zero), the sparse base goes back, and
  at a task's end the hard-sparsified A too.

Node state is Flower's ``Context.state`` (a RecordDict of arrays and configs, no
pickle), which the simulation engines carry between a node's rounds whichever process
runs them, and which a SuperNode keeps in memory; with ``state-dir`` in its node config
a node also keeps it on disk (:mod:`fedsparse.clients.node_state`) and survives a restart.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from fedsparse.clients.node_state import restore_node_state, save_node_state, state_dir_of
from fedsparse.data import ContinualData
from fedsparse.decompose import DecomposedNet
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.screening import ARRAYS, NUM_EXAMPLES, TASK_ACCURACY
from fedsparse.strategies.fedprox import PROXIMAL_MU
from fedsparse.strategies.fedweit import (
    ADAPTIVE,
    FEDWEIT,
    KNOWLEDGE,
    LAMBDA1,
    LAMBDA2,
    SPARSITY,
    WEIGHT_DECAY,
)
from fedsparse.strategies.local import LEARNER, LOCAL, SHARED
from fedsparse.task import CONFIG_KEY, ClientTask
from fedsparse.training import Stats, evaluate, make_optimizer, pick_device, train_epochs
from fedsparse.wire import encode_sparse_state, encode_state, float_tensors, load_into

log = logging.getLogger("fedsparse")

MODEL_STATE = "continual.model"  # Context.state: the client's own model tensors
STRUCTURE = "continual.structure"  # Context.state: a FedWeIT net's tasks and roles


class ClientStream:
    """One client's view of its stream in the current round."""

    def __init__(self, task: ClientTask, client: int, server_round: int, data_path: str | None) -> None:
        self.task = task
        self.client = client
        self.data: ContinualData = task.continual_data(data_path)
        self.server_round = server_round
        self.stage = self.data.stage_of_round(server_round)
        self.current = self.data.task(client, self.stage)
        self.device = pick_device(task.use_gpu)

    @property
    def pool_id(self) -> int:
        return self.current.spec.pool_id

    @property
    def ends_task(self) -> bool:
        return self.data.is_last_round_of_stage(self.server_round)

    @property
    def has_next_task(self) -> bool:
        return self.stage + 1 < self.data.config.num_tasks

    def train(self, model: torch.nn.Module, proximal_mu: float = 0.0, regularizer=None) -> Stats:  # type: ignore[no-untyped-def]
        seed = int(np.random.SeedSequence([self.task.seed, self.server_round, self.client]).generate_state(1)[0])
        trainable = [p for p in model.parameters() if p.requires_grad]
        return train_epochs(
            model,
            self.current.train,
            epochs=self.task.local_epochs,
            batch_size=self.task.batch_size,
            optimizer=make_optimizer(trainable, self.task.optimizer, self.task.lr, self.task.momentum, self.task.weight_decay),
            generator=torch.Generator().manual_seed(seed),
            device=self.device,
            proximal_mu=proximal_mu,
            regularizer=regularizer,
        )

    def task_accuracies(self, model: MultiHeadNet | DecomposedNet) -> list[float]:
        """Accuracy on each task of the stream so far (this one included), with its head."""
        accuracies = []
        for stage in range(self.stage + 1):
            seen = self.data.task(self.client, stage)
            model.select(seen.spec.pool_id)
            accuracies.append(evaluate(model, seen.test, self.device).accuracy)
        return accuracies

    def metrics(self, stats: Stats, accuracies: list[float]) -> MetricRecord:
        return MetricRecord(
            {
                NUM_EXAMPLES: stats.num_examples,
                "train_loss": stats.loss,
                "train_accuracy": stats.accuracy,
                TASK_ACCURACY: accuracies,
            }
        )


# ---------------------------------------------------------------- shared and local models
def _train_multihead(stream: ClientStream, model: MultiHeadNet, proximal_mu: float) -> tuple[Stats, list[float]]:
    model.select(stream.pool_id)
    stats = stream.train(model, proximal_mu=proximal_mu)
    return stats, stream.task_accuracies(model)


def train_shared(message: Message, stream: ClientStream) -> RecordDict:
    model = stream.task.build_model()
    assert isinstance(model, MultiHeadNet)
    load_into(model, message.content[ARRAYS])
    stats, accuracies = _train_multihead(stream, model, float(message.content[CONFIG_KEY].get(PROXIMAL_MU, 0.0)))
    state = {name: t.detach().cpu() for name, t in model.state_dict().items()}
    return RecordDict({ARRAYS: encode_state(state), "metrics": stream.metrics(stats, accuracies)})


def train_local(message: Message, stream: ClientStream, context: Context) -> RecordDict:
    model = stream.task.initial_model()
    assert isinstance(model, MultiHeadNet)
    if MODEL_STATE in context.state.array_records:
        model.load_state_dict(context.state.array_records[MODEL_STATE].to_torch_state_dict())
    stats, accuracies = _train_multihead(stream, model, 0.0)
    context.state[MODEL_STATE] = ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return RecordDict({"metrics": stream.metrics(stats, accuracies)})


# ---------------------------------------------------------------- FedWeIT
def read_knowledge(record: ArrayRecord | None, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """The knowledge base a server sent, stacked per layer; malformed entries are dropped.

    Entry ``kb<j>`` must hold every base name with the base's shape and decode cleanly
    (sparse indices in range, lengths consistent); an entry that does not is logged and
    left out, and the client learns with the rest.
    """
    if record is None:
        return {}
    entries: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    problems: dict[str, str] = {}
    for key in record:
        entry, _, name = key.partition(".")
        try:
            if name not in shapes:
                raise ValueError(f"unknown layer {name!r}")
            values = float_tensors(ArrayRecord({name: record[key]}))[name]
            if tuple(values.shape) != shapes[name]:
                raise ValueError(f"{name}: shape {tuple(values.shape)} != {shapes[name]}")
            if not torch.isfinite(values).all():
                raise ValueError(f"{name}: NaN or Inf")
            entries[entry][name] = values.clone()
        except ValueError as error:
            problems.setdefault(entry, str(error))
    for entry, layers in entries.items():
        if entry not in problems and set(layers) != set(shapes):
            problems[entry] = f"missing layers {sorted(set(shapes) - set(layers))}"
    for entry, reason in sorted(problems.items()):
        log.warning("knowledge-base entry %s rejected: %s", entry, reason)
    valid = [entries[e] for e in sorted(entries) if e not in problems]
    if not valid:
        return {}
    return {name.rsplit(".", 1)[0]: torch.stack([entry[name] for entry in valid]) for name in shapes}


def _restore_net(stream: ClientStream, context: Context) -> DecomposedNet:
    plain = stream.task.initial_model()
    assert isinstance(plain, MultiHeadNet)
    if MODEL_STATE not in context.state.array_records:
        return DecomposedNet(plain)
    structure = context.state.config_records[STRUCTURE]
    state = context.state.array_records[MODEL_STATE].to_torch_state_dict()
    return DecomposedNet.restore(plain, dict(structure), state)


def _save_net(net: DecomposedNet, context: Context) -> None:
    context.state[MODEL_STATE] = ArrayRecord({k: v.detach().cpu() for k, v in net.state_dict().items()})
    context.state[STRUCTURE] = ConfigRecord(net.structure())


def train_fedweit(message: Message, stream: ClientStream, context: Context) -> RecordDict:
    config = message.content[CONFIG_KEY]
    lambda1, sparsity = float(config[LAMBDA1]), float(config[SPARSITY])
    net = _restore_net(stream, context)
    net.load_global_base(float_tensors(message.content[ARRAYS]))
    if stream.pool_id not in net.tasks:
        if net.current is not None:  # missed its last round: close it without an upload
            net.finish_task(lambda1)
        knowledge = read_knowledge(message.content.array_records.get(KNOWLEDGE), net.base_shapes())
        net.add_task(stream.pool_id, knowledge)
    net.select(stream.pool_id)
    stats = stream.train(
        net,
        regularizer=lambda: net.regularizer(lambda1, float(config[LAMBDA2]), float(config[WEIGHT_DECAY])),
    )
    accuracies = stream.task_accuracies(net)
    content = RecordDict(
        {ARRAYS: encode_sparse_state(net.sparse_base(sparsity)), "metrics": stream.metrics(stats, accuracies)}
    )
    if stream.ends_task:
        adaptive = net.finish_task(lambda1)
        if stream.has_next_task:
            content[ADAPTIVE] = encode_sparse_state(adaptive)
    _save_net(net, context)
    return content


def train_continual(message: Message, context: Context, task: ClientTask, client: int, data_path: str | None) -> Message:
    config = message.content[CONFIG_KEY]
    server_round = int(config["server-round"])
    state_dir = state_dir_of(context)
    if state_dir is not None:
        restore_node_state(context, state_dir, server_round)
    stream = ClientStream(task, client, server_round, data_path)
    learner = str(config.get(LEARNER, SHARED))
    if learner == SHARED:
        content = train_shared(message, stream)
    elif learner == LOCAL:
        content = train_local(message, stream, context)
    elif learner == FEDWEIT:
        content = train_fedweit(message, stream, context)
    else:
        raise ValueError(f"unknown {LEARNER} {learner!r}")
    if state_dir is not None:
        save_node_state(context, state_dir, server_round)
    return Message(content, reply_to=message)
