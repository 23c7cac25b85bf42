"""FedWeIT's client half: a decomposed net (:mod:`fedsparse.decompose`) in the node state.

Each round the global base arrives (written where non-zero: a client keeps its own base
where it receives zeros), the client trains B and its current task's A, mask and
attention under FedWeIT's regularizer, and sends back its sparse base B ⊙ keep. At a
task's first round it also receives the other clients' A from the task just finished
(record ``knowledge``), its knowledge base; at a task's last round it uploads its own
hard-sparsified A (record ``adaptive``). Heads, masks, A and attention never leave it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob, Learner
from fedsparse.clients.streams import ClientStream
from fedsparse.compat import records_of
from fedsparse.decompose import DecomposedNet
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.wire import encode_sparse_state, float_tensors

log = logging.getLogger(__name__)

NET_STATE = "fedweit.net"  # Context.state record: the decomposed net's tensors
STRUCTURE = "fedweit.structure"  # Context.state record: its tasks and roles


class FedWeITParams(BaseModel):
    """FedWeIT's hyperparameters (``strategy.fedweit``), sent to its clients as they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lambda1: float = Field(1e-3, ge=0.0, description="L1 weight on A, and the threshold that sparsifies A at task end")
    lambda2: float = Field(100.0, ge=0.0, description="weight of the term that keeps past tasks' weights fixed")
    client_sparsity: float = Field(
        0.3, ge=0.0, lt=1.0, description="share of each layer's output units (lowest mask gate) not uploaded"
    )
    weight_decay: float = Field(
        1e-4, ge=0.0, description="L2 on the current task's A and mask (and B in the first task)"
    )
    knowledge_base: bool = Field(
        True, description="share finished tasks' A between clients (false: no inter-client transfer)"
    )
    communicate: bool = Field(
        True, description="exchange the base with the server (false: each client alone, nothing sent; roughly APD)"
    )


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
        entry, name = protocol.split_knowledge_key(key)
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


def restore_net(job: ClientJob) -> DecomposedNet:
    """The client's decomposed net from its node state (a fresh one the first time)."""
    plain = job.task.initial_model()
    assert isinstance(plain, MultiHeadNet)
    state = job.context.state
    kept = records_of(state, ArrayRecord).get(NET_STATE)
    if kept is None:
        return DecomposedNet(plain)
    tensors = kept.to_torch_state_dict()
    return DecomposedNet.restore(plain, dict(records_of(state, ConfigRecord)[STRUCTURE]), tensors)


def save_net(net: DecomposedNet, context: Context) -> None:
    context.state[NET_STATE] = ArrayRecord({k: v.detach().cpu() for k, v in net.state_dict().items()})
    context.state[STRUCTURE] = ConfigRecord(dict(net.structure()))


@LEARNERS.register("fedweit")
class FedWeITLearner(Learner):
    def train(self, job: ClientJob) -> RecordDict:
        params = FedWeITParams.model_validate(protocol.learner_params(job.config))
        stream = ClientStream(job)
        net = restore_net(job)
        if params.communicate:
            net.load_global_base(float_tensors(protocol.arrays_of(job.message.content)))
        extra = {}
        if stream.pool_id not in net.tasks:
            if net.current is not None:  # missed that task's last round: close it, and its A goes up now
                late = net.finish_task(params.lambda1)
                if params.communicate and params.knowledge_base:
                    extra[protocol.ADAPTIVE] = encode_sparse_state(late)
            knowledge = read_knowledge(
                records_of(job.message.content, ArrayRecord).get(protocol.KNOWLEDGE), net.base_shapes()
            )
            net.add_task(stream.pool_id, knowledge)
        net.select(stream.pool_id)
        stats = stream.train(
            net, regularizer=lambda: net.regularizer(params.lambda1, params.lambda2, params.weight_decay)
        )
        accuracies = stream.task_accuracies(net)
        base = encode_sparse_state(net.sparse_base(params.client_sparsity)) if params.communicate else None
        if stream.ends_task:
            adaptive = net.finish_task(params.lambda1)
            if stream.has_next_task and params.communicate and params.knowledge_base:
                extra[protocol.ADAPTIVE] = encode_sparse_state(adaptive)
        save_net(net, job.context)
        return protocol.reply(base, stream.metrics(stats, accuracies, *net.kept_tensors()), **extra)
