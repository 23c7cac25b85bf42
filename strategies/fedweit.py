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
  forwarded exactly as they arrived.

Heads, masks, A and attention never leave the client.

Two switches of ``strategy.fedweit`` make the ablations that test the method's claim of
inter-client transfer: ``knowledge_base: false`` (no A is shared; each client learns
from its own tasks and the shared base only) and ``communicate: false`` (nothing is
sent at all; the same decomposition trained on each client alone, roughly APD).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict
from torch import nn

from fedsparse import protocol
from fedsparse.aggregation import to_record
from fedsparse.capabilities import StrategyState, under_prefix
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.clients.fedweit import FedWeITParams
from fedsparse.decompose import DecomposedNet
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
        self.finished_adaptive: dict[int, ArrayRecord] = {}  # client → its A of the task just finished

    def initial_arrays(self, model: nn.Module) -> ArrayRecord:
        if not isinstance(model, MultiHeadNet):
            raise TypeError("FedWeIT runs on the multi-head net of a task stream")
        return base_record(model) if self.params.communicate else ArrayRecord()

    def learner_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def _starts_task(self, server_round: int) -> bool:
        return server_round > 1 and (server_round - 1) % self.rounds_per_task == 0

    def payload_key(self, client: int, server_round: int) -> Hashable:
        """One payload for all, except at a task's first round: each gets the others' A."""
        return client if self._starts_task(server_round) and self.finished_adaptive else None

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        if not self.params.communicate:  # the clients learn alone: the message only says which round it is
            return RecordDict({protocol.CONFIG: self.client_config(client, config)})
        content = RecordDict(
            {
                protocol.ARRAYS: encode_sparse_state(decode_float_state(arrays)),
                protocol.CONFIG: self.client_config(client, config),
            }
        )
        if self._starts_task(server_round):
            knowledge = self.knowledge_for(client)
            if knowledge:
                content[protocol.KNOWLEDGE] = knowledge
        return content

    def knowledge_for(self, client: int) -> ArrayRecord:
        """The other clients' A from the task just finished, as they sent them."""
        record = ArrayRecord()
        others = [c for c in sorted(self.finished_adaptive) if c != client]
        for entry, other in enumerate(others):
            for name, array in self.finished_adaptive[other].items():
                record[protocol.knowledge_key(entry, name)] = array
        return record

    def checkpoint_state(self) -> StrategyState:
        return StrategyState({f"adaptive-{client}": a for client, a in self.finished_adaptive.items()})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.finished_adaptive = {int(c): a for c, a in under_prefix(state.records, "adaptive-").items()}

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        if not self.params.communicate:
            return self.round_start
        if server_round % self.rounds_per_task == 0:  # a task's last round: the A that become knowledge
            self.finished_adaptive = {
                u.client: u.content.array_records[protocol.ADAPTIVE]
                for u in uploads
                if protocol.ADAPTIVE in u.content.array_records
            }
        return to_record(unit_mean([u.state for u in uploads], [u.weight for u in uploads]))


STRATEGIES.add(
    "fedweit",
    StrategySpec(FedWeITParams, lambda params, ctx: FedWeIT(params, ctx), supports_tasks=True, requires_tasks=True),
)
