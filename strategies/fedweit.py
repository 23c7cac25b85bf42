"""FedWeIT (Yoon et al., 2021): the server side of federated weighted inter-client transfer.

Clients keep decomposed networks (:mod:`fedsparse.decompose`); the only thing shared
every round is the base B of each layer. Per METHODS.md §3:

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
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from fedsparse.aggregation import reply_weight, to_record
from fedsparse.decompose import DecomposedNet
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.screening import ARRAYS
from fedsparse.strategies.fedavg import FedAvg, StrategyState, under_prefix
from fedsparse.strategies.local import LEARNER
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec
from fedsparse.wire import decode_float_state, encode_sparse_state

FEDWEIT = "fedweit"  # the LEARNER value
ADAPTIVE = "adaptive"  # reply record: the finished task's sparse A
KNOWLEDGE = "knowledge"  # message record: other clients' A from the task just finished
LAMBDA1 = "fedweit-lambda1"
LAMBDA2 = "fedweit-lambda2"
WEIGHT_DECAY = "fedweit-weight-decay"
SPARSITY = "fedweit-client-sparsity"


class FedWeITParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lambda1: float = Field(1e-3, ge=0.0, description="L1 weight on A, and the threshold that sparsifies A at task end")
    lambda2: float = Field(100.0, ge=0.0, description="weight of the term that keeps past tasks' weights fixed")
    client_sparsity: float = Field(
        0.3, ge=0.0, lt=1.0, description="share of each layer's output units (lowest mask gate) not uploaded"
    )
    weight_decay: float = Field(1e-4, ge=0.0, description="L2 on the current task's A and mask")


def knowledge_key(entry: int, name: str) -> str:
    return f"kb{entry}.{name}"


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


class FedWeIT(FedAvg):
    one_array_record = False

    def __init__(self, params: FedWeITParams, context: StrategyContext) -> None:
        super().__init__(context)
        if context.tasks is None:
            raise ValueError("FedWeIT learns task streams: set data.tasks")
        self.params = params
        self.rounds_per_task = context.tasks.rounds_per_task
        self.finished_adaptive: dict[int, ArrayRecord] = {}  # client → its A of the task just finished

    def initial_arrays_of(self, model: nn.Module) -> ArrayRecord:
        if not isinstance(model, MultiHeadNet):
            raise TypeError("FedWeIT runs on the multi-head net of a task stream")
        return base_record(model)

    def train_config(self, server_round: int, config: ConfigRecord) -> ConfigRecord:
        config = super().train_config(server_round, config)
        config[LEARNER] = FEDWEIT
        config[LAMBDA1] = self.params.lambda1
        config[LAMBDA2] = self.params.lambda2
        config[WEIGHT_DECAY] = self.params.weight_decay
        config[SPARSITY] = self.params.client_sparsity
        return config

    def _starts_task(self, server_round: int) -> bool:
        return server_round > 1 and (server_round - 1) % self.rounds_per_task == 0

    def payload_key(self, client: int, server_round: int) -> Hashable:
        """One payload for all, except at a task's first round: each gets the others' A."""
        return client if self._starts_task(server_round) and self.finished_adaptive else None

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        content = RecordDict(
            {
                ARRAYS: encode_sparse_state(decode_float_state(arrays)),
                self.configrecord_key: self.client_config(client, config),
            }
        )
        if self._starts_task(server_round):
            knowledge = self.knowledge_for(client)
            if knowledge:
                content[KNOWLEDGE] = knowledge
        return content

    def knowledge_for(self, client: int) -> ArrayRecord:
        """The other clients' A from the task just finished, as they sent them."""
        record = ArrayRecord()
        others = [c for c in sorted(self.finished_adaptive) if c != client]
        for entry, other in enumerate(others):
            for name, array in self.finished_adaptive[other].items():
                record[knowledge_key(entry, name)] = array
        return record

    def checkpoint_state(self) -> StrategyState:
        state = super().checkpoint_state()
        state.records.update({f"adaptive-{client}": a for client, a in self.finished_adaptive.items()})
        return state

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        super().restore_checkpoint_state(state)
        self.finished_adaptive = {int(c): a for c, a in under_prefix(state.records, "adaptive-").items()}

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        bases = [decode_float_state(msg.content.array_records[ARRAYS]) for msg in replies]
        weights = [reply_weight(msg.content, self.weighted_by_key) for msg in replies]
        if server_round % self.rounds_per_task == 0:  # a task's last round: the A that become knowledge
            self.finished_adaptive = {
                self.sampler.directory.client_of(msg.metadata.src_node_id): msg.content.array_records[ADAPTIVE]
                for msg in replies
                if ADAPTIVE in msg.content.array_records
            }
        return to_record(unit_mean(bases, weights))


def _build(params: FedWeITParams, context: StrategyContext) -> FedWeIT:
    return FedWeIT(params, context)


STRATEGIES.add(
    "fedweit",
    StrategySpec(FedWeITParams, _build, supports_tasks=True, requires_tasks=True),  # type: ignore[arg-type]
)
