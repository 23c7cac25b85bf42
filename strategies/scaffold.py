"""SCAFFOLD (Karimireddy et al., 2020), option II: stochastic controlled averaging.

The server keeps a control variate c (zeros at first) and sends it with the model as
the record ``control``; each client corrects its local steps by ``c - c_i`` and returns
its model y_i and its control change Δc_i (``clients/scaffold.py``). With S the round's
clients and N all clients,

    x <- x + η_g · (mean_S(y_i) - x),      c <- c + (|S|/N) · mean_S(Δc_i)

where the model mean is example-weighted, as FedAvg's (with ``server_lr: 1`` and c = 0
the model step is FedAvg's), and the control mean is the paper's plain one, so c stays
the mean of the clients' c_i. c is checkpointed; each c_i lives in its client's node
state. Both directions carry a second model-sized record: about twice FedAvg's bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.compat import records_of
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.tuning.space import tunable
from fedsparse.wire import decode_float_state

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig

log = logging.getLogger(__name__)
State = dict[str, np.ndarray]


class ScaffoldParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server_lr: float = Field(
        1.0,
        gt=0.0,
        description="η_g: server step on the averaged update",
        json_schema_extra=tunable(0.3, 3.0, log=True),
    )


def control_change(upload: Upload, like: State) -> State:
    """An upload's Δc_i; zeros (and a warning) when it is missing or not shaped as ``like``."""
    record = records_of(upload.content, ArrayRecord).get(protocol.CONTROL)
    change = decode_float_state(record) if record is not None else {}
    if change.keys() != like.keys() or any(change[n].shape != like[n].shape for n in like):
        log.warning(
            "client %d sent no usable %r record: its control change counts as zero", upload.client, protocol.CONTROL
        )
        return {name: np.zeros_like(values) for name, values in like.items()}
    return change


class Scaffold(Strategy):
    learner = "scaffold"

    def __init__(self, params: ScaffoldParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params
        self.control: State = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The base's messages, each content (shared by clients of one format) with c added."""
        messages = list(super().configure_train(server_round, arrays, config, grid))
        if not self.control:
            self.control = {name: np.zeros_like(v) for name, v in decode_float_state(arrays).items()}
        control = to_record(self.control)
        for content in {id(m.content): m.content for m in messages}.values():
            content[protocol.CONTROL] = control
        return messages

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate before configure_train"
        model = decode_float_state(self.round_start)
        mean = weighted_mean([u.state for u in uploads], [u.weight for u in uploads])
        changes = [control_change(u, self.control) for u in uploads]
        share = len(uploads) / len(self.context.sampler.directory.clients())
        for name, values in self.control.items():
            self.control[name] = values + share * sum(c[name] for c in changes) / len(changes)
        return to_record({name: x + self.params.server_lr * (mean[name] - x) for name, x in model.items()})

    def checkpoint_state(self) -> StrategyState:
        return StrategyState({"c": to_record(self.control)} if self.control else {})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        if "c" in state.records:
            self.control = decode_float_state(state.records["c"])


def problems(params: ScaffoldParams, cfg: ExperimentConfig) -> list[str]:
    """Option II reads the local step size off the clients' SGD."""
    if cfg.federation.optimizer != "sgd":
        return [
            f"strategy scaffold: its control update assumes SGD (federation.optimizer is {cfg.federation.optimizer!r})"
        ]
    return []


STRATEGIES.add("scaffold", StrategySpec(ScaffoldParams, lambda params, ctx: Scaffold(params, ctx), problems=problems))
