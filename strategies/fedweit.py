"""FedWeIT (Yoon et al., 2021): the server side of federated weighted inter-client transfer.

Clients keep decomposed networks (:mod:`fedsparse.decompose`); the only thing shared
every round is the base B of each layer:

* down: the global base, sparse-encoded (units that no client sent are zero, and a
  client keeps its own base where it receives zeros);
* up: B ⊙ keep, the base with the client's least-gated ``client_sparsity`` share of
  output units zeroed, sparse-encoded (a row bitmap plus the kept rows' values);
* aggregation: each output unit is the example-weighted mean over the clients that sent
  it; a unit nobody sent is zero;
* at a task's last round each client also uploads its hard-sparsified task-adaptive A
  (record ``adaptive``); in the next round every client receives the others' A
  (record ``knowledge``: the j-th other client's layer ``name`` as ``kb<j>.<name>``),
  forwarded exactly as they arrived. With partial participation a client that missed a
  task's last round uploads that A the next time it trains (it joins the following
  stage's knowledge base), and a client that missed a stage's first round gets the
  stage's knowledge base with its first message of the stage.

Heads, masks, A and attention never leave the client.

Two switches of ``strategy.fedweit`` make the ablations that test the method's claim of
inter-client transfer: ``knowledge_base: false`` (no A is shared; each client learns
from its own tasks and the shared base only) and ``communicate: false`` (nothing is
sent at all; the same decomposition trained on each client alone, roughly APD).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from torch import nn

from fedsparse import protocol
from fedsparse.aggregation import to_record
from fedsparse.capabilities import StrategyState, under_prefix
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.fedweit import FedWeITParams
from fedsparse.compat import records_of
from fedsparse.decompose import DecomposedNet
from fedsparse.decompose.layers import decomposition_problems
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.wire import decode_float_state, encode_sparse_state


def base_record(model: MultiHeadNet) -> ArrayRecord:
    """The shared part of the run's plain model: the weights FedWeIT decomposes, as bases."""
    return to_record({name: tensor.numpy() for name, tensor in DecomposedNet(model).base_state().items()})


def unit_mean(bases: list[dict[str, np.ndarray]], weights: list[float]) -> dict[str, np.ndarray]:
    """Per output unit (row), the weighted mean over the uploads in which that row is non-zero."""
    out: dict[str, np.ndarray] = {}
    for name in bases[0]:
        stacked = np.stack([base[name] for base in bases]).astype(np.float64)
        rows = stacked.reshape(len(bases), stacked.shape[1], -1)
        sent = (rows != 0).any(axis=2)  # (clients, units)
        w = np.asarray(weights, dtype=np.float64)[:, None] * sent
        total = w.sum(axis=0)
        summed = np.einsum("cu,cur->ur", w, rows)
        mean = np.divide(summed, total[:, None], out=np.zeros_like(summed), where=total[:, None] > 0)
        out[name] = mean.reshape(stacked.shape[1:]).astype(np.float32)
    return out


class FedWeIT(Strategy):
    learner = "fedweit"

    def __init__(self, params: FedWeITParams, context: StrategyContext) -> None:
        super().__init__(context)
        if context.tasks is None:
            raise ValueError("FedWeIT learns task streams: set data.tasks")
        self.params = params
        self.rounds_per_task = context.tasks.rounds_per_task
        self.pending: dict[int, ArrayRecord] = {}  # client → an A received since the knowledge base formed
        self.knowledge: dict[int, ArrayRecord] = {}  # the current stage's knowledge base, by sender
        self.stage = 0  # the stage (0-based task position) the knowledge base belongs to
        self.served: set[int] = set()  # clients that received this stage's knowledge base
        self.last_round: dict[int, int] = {}  # client → the last round it trained in

    def initial_arrays(self, model: nn.Module) -> ArrayRecord:
        if not isinstance(model, MultiHeadNet):
            raise TypeError("FedWeIT runs on the multi-head net of a task stream")
        return base_record(model) if self.params.communicate else ArrayRecord()

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """At a new stage's first round the A received so far become its knowledge base."""
        stage = (server_round - 1) // self.rounds_per_task
        if stage != self.stage:
            self.knowledge, self.pending, self.stage, self.served = self.pending, {}, stage, set()
        return super().configure_train(server_round, arrays, config, grid)

    def _needs_knowledge(self, client: int) -> bool:
        return client not in self.served and any(other != client for other in self.knowledge)

    def payload_key(self, client: int, server_round: int) -> Hashable:
        """One payload for all, except for a client's first message of a stage: it also
        gets the others' A (a client that missed the stage's first round gets them later)."""
        return client if self._needs_knowledge(client) else None

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        if not self.params.communicate:  # the clients learn alone: the message only says which round it is
            return RecordDict({protocol.CONFIG: self.client_config(client, config)})
        content = RecordDict(
            {
                protocol.ARRAYS: encode_sparse_state(decode_float_state(arrays)),
                protocol.CONFIG: self.client_config(client, config),
            }
        )
        if self._needs_knowledge(client):
            content[protocol.KNOWLEDGE] = self.knowledge_for(client)
            self.served.add(client)
        return content

    def _finishes_a_task(self, client: int, server_round: int) -> bool:
        """Whether ``client`` finishes a task in ``server_round``: the task's last round,
        or its first round in a later stage after missing its task's last round. An A
        sent at any other time is ignored."""
        if server_round % self.rounds_per_task == 0:
            return True
        previous = self.last_round.get(client)
        stage_of = lambda r: (r - 1) // self.rounds_per_task  # noqa: E731
        return (
            previous is not None
            and stage_of(previous) < stage_of(server_round)
            and previous % self.rounds_per_task != 0
        )

    def knowledge_for(self, client: int) -> ArrayRecord:
        """The other clients' A in this stage's knowledge base, as they sent them."""
        record = ArrayRecord()
        others = [c for c in sorted(self.knowledge) if c != client]
        for entry, other in enumerate(others):
            for name, array in self.knowledge[other].items():
                record[protocol.knowledge_key(entry, name)] = array
        return record

    def checkpoint_state(self) -> StrategyState:
        records = {f"pending-{c}": a for c, a in self.pending.items()}
        records.update({f"knowledge-{c}": a for c, a in self.knowledge.items()})
        last = {str(c): r for c, r in self.last_round.items()}
        return StrategyState(records, {"stage": self.stage, "served": sorted(self.served), "last_round": last})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.pending = {int(c): a for c, a in under_prefix(state.records, "pending-").items()}
        self.knowledge = {int(c): a for c, a in under_prefix(state.records, "knowledge-").items()}
        self.stage, self.served = int(state.values["stage"]), set(state.values["served"])
        self.last_round = {int(c): int(r) for c, r in state.values["last_round"].items()}

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        if not self.params.communicate:
            return self.round_start
        for upload in uploads:
            adaptive = records_of(upload.content, ArrayRecord).get(protocol.ADAPTIVE)
            if adaptive is not None and self._finishes_a_task(upload.client, server_round):
                self.pending[upload.client] = adaptive
            self.last_round[upload.client] = server_round
        return to_record(unit_mean([u.state for u in uploads], [u.weight for u in uploads]))


STRATEGIES.add(
    "fedweit",
    StrategySpec(
        FedWeITParams,
        lambda params, ctx: FedWeIT(params, ctx),
        model_problems=decomposition_problems,
        supports_tasks=True,
        requires_tasks=True,
    ),
)
