"""The grouped baselines for bit-heterogeneous federations (METHODS.md §1).

- ``grouped_avg`` (FedGroupedAvg): clients average only within their bitwidth group;
  each group keeps its own model and is evaluated on it.
- ``grouped_avg_asym`` (FedGroupedAvg-Asymmetric): the high-precision (float) group
  averages only high-precision models; low-bit clients receive the average of all.

The model returned to the server loop (its "global" model) is the most precise group's;
a group that has not trained yet still holds the model of round 1.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, Message
from pydantic import BaseModel, ConfigDict

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.quant import Precision
from fedsparse.strategies.fedavg import FedAvg, StrategyState, Upload, under_prefix
from fedsparse.strategies.registry import STRATEGIES, StrategyContext, StrategySpec


class GroupedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _mean_record(uploads: list[Upload]) -> ArrayRecord:
    return to_record(weighted_mean([u.state for u in uploads], [u.weight for u in uploads]))


class GroupedAvg(FedAvg):
    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.groups: dict[Precision, ArrayRecord] = {}

    def model_for(self, precision: Precision, global_arrays: ArrayRecord) -> ArrayRecord:
        return self.groups.get(precision, self.initial_arrays or global_arrays)

    def checkpoint_state(self) -> StrategyState:
        state = super().checkpoint_state()
        state.records.update({f"group-{precision.bits}": model for precision, model in self.groups.items()})
        return state

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        super().restore_checkpoint_state(state)
        self.groups = {Precision.from_bitwidth(int(bits)): m for bits, m in under_prefix(state.records, "group-").items()}

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        uploads = self.uploads(replies)
        for precision in {u.precision for u in uploads}:
            self.groups[precision] = _mean_record([u for u in uploads if u.precision == precision])
        return self.groups[max(self.groups, key=lambda p: p.rank)]


class GroupedAvgAsymmetric(FedAvg):
    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.high_model: ArrayRecord | None = None
        self.all_model: ArrayRecord | None = None

    def model_for(self, precision: Precision, global_arrays: ArrayRecord) -> ArrayRecord:
        chosen = self.high_model if precision.is_high else self.all_model
        return chosen if chosen is not None else self.initial_arrays or global_arrays

    def checkpoint_state(self) -> StrategyState:
        state = super().checkpoint_state()
        for name, model in (("high", self.high_model), ("all", self.all_model)):
            if model is not None:
                state.records[name] = model
        return state

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        super().restore_checkpoint_state(state)
        self.high_model, self.all_model = state.records.get("high"), state.records.get("all")

    def aggregate_arrays(self, server_round: int, replies: list[Message]) -> ArrayRecord | None:
        uploads = self.uploads(replies)
        self.all_model = _mean_record(uploads)
        high = [u for u in uploads if u.precision.is_high]
        if high:
            self.high_model = _mean_record(high)
        return self.high_model if self.high_model is not None else self.all_model


STRATEGIES.add("grouped_avg", StrategySpec(GroupedParams, lambda params, ctx: GroupedAvg(ctx)))
STRATEGIES.add("grouped_avg_asym", StrategySpec(GroupedParams, lambda params, ctx: GroupedAvgAsymmetric(ctx)))
