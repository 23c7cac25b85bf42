"""The grouped baselines for bit-heterogeneous federations.

- ``grouped_avg`` (FedGroupedAvg): clients average only within their bitwidth group;
  each group keeps its own model and is evaluated on it.
- ``grouped_avg_asym`` (FedGroupedAvg-Asymmetric): the high-precision (float) group
  averages only high-precision models; low-bit clients receive the average of all.

The model returned to the server loop (its "global" model) is the most precise group's;
a group that has not trained yet still holds the model of round 1.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from pydantic import BaseModel, ConfigDict

from fedsparse.capabilities import StrategyState, under_prefix
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.quant import Precision
from fedsparse.strategies.fedavg import mean_of
from fedsparse.strategy import Strategy, StrategyContext, Upload


class GroupedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeepsFirstModel(Strategy):
    """Remembers the model of round 1 (checkpointed as ``initial``), which a group that
    has not trained yet still holds."""

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.initial: ArrayRecord | None = None

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.initial is None:
            self.initial = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def with_first_model(self, models: dict[str, ArrayRecord | None]) -> StrategyState:
        """A checkpoint of ``models`` (those that exist) and the model of round 1."""
        models = {**models, "initial": self.initial}
        return StrategyState({name: model for name, model in models.items() if model is not None})


class GroupedAvg(KeepsFirstModel):
    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.groups: dict[Precision, ArrayRecord] = {}

    def model_for(self, precision: Precision, arrays: ArrayRecord) -> ArrayRecord:
        return self.groups.get(precision, self.initial or arrays)

    def checkpoint_state(self) -> StrategyState:
        return self.with_first_model({f"group-{precision.bits}": model for precision, model in self.groups.items()})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.initial = state.records.get("initial")
        self.groups = {
            Precision.from_bitwidth(int(bits)): m for bits, m in under_prefix(state.records, "group-").items()
        }

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        for precision in {u.precision for u in uploads}:
            self.groups[precision] = mean_of([u for u in uploads if u.precision == precision])
        return self.groups[max(self.groups, key=lambda p: p.rank)]


class GroupedAvgAsymmetric(KeepsFirstModel):
    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.high_model: ArrayRecord | None = None
        self.all_model: ArrayRecord | None = None

    def model_for(self, precision: Precision, arrays: ArrayRecord) -> ArrayRecord:
        chosen = self.high_model if precision.is_high else self.all_model
        return chosen if chosen is not None else self.initial or arrays

    def checkpoint_state(self) -> StrategyState:
        return self.with_first_model({"high": self.high_model, "all": self.all_model})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.initial = state.records.get("initial")
        self.high_model, self.all_model = state.records.get("high"), state.records.get("all")

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        self.all_model = mean_of(uploads)
        high = [u for u in uploads if u.precision.is_high]
        if high:
            self.high_model = mean_of(high)
        return self.high_model if self.high_model is not None else self.all_model


STRATEGIES.add("grouped_avg", StrategySpec(GroupedParams, lambda params, ctx: GroupedAvg(ctx)))
STRATEGIES.add("grouped_avg_asym", StrategySpec(GroupedParams, lambda params, ctx: GroupedAvgAsymmetric(ctx)))
