"""Flower's own strategies by name: FedAdam, FedYogi, FedAdagrad, FedAvgM, Krum,
MultiKrum, Bulyan, FedMedian and FedTrimmedAvg, as ``flwr.serverapp.strategy`` ships them.

fedsparse keeps the parts every strategy shares (seeded sampling, the downlink at each
device's bitwidth, reply screening, the byte ledger, metrics, checkpoints) and hands the
aggregation to Flower's class: each round the Flower strategy is shown the round's model
(its ``configure_train``, whose messages are discarded) and aggregates the screened
replies (its ``aggregate_train``), each as a plain float ArrayRecord with its example
count, so low-bit uploads arrive dequantized. The result is exactly what Flower computes
on those replies, at the model's dtype (float32).

A strategy's YAML block holds the scalar arguments of its Flower constructor, with
Flower's defaults (``strategy.fedadam: {eta: 0.01}``); sampling arguments
(``fraction_train``, ``min_*``) are fedsparse's ``federation`` section, and arguments
that take code (Bulyan's ``selection_rule``) keep Flower's default. Server state (the
FedOpt moments, FedAvgM's momentum) is checkpointed, so ``--resume`` continues with it.
"""

from __future__ import annotations

import inspect
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp import strategy as flower
from pydantic import BaseModel, ConfigDict, Field, create_model

from fedsparse import compat, protocol
from fedsparse.aggregation import to_record
from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.tuning.space import tunable
from fedsparse.wire import decode_float_state

# config name → Flower's class
FLOWER_STRATEGIES: dict[str, type[flower.FedAvg]] = {
    "fedadam": flower.FedAdam,
    "fedyogi": flower.FedYogi,
    "fedadagrad": flower.FedAdagrad,
    "fedavgm": flower.FedAvgM,
    "krum": flower.Krum,
    "multikrum": flower.MultiKrum,
    "bulyan": flower.Bulyan,
    "fedmedian": flower.FedMedian,
    "fedtrimmedavg": flower.FedTrimmedAvg,
}
# constructor arguments fedsparse sets itself (sampling is the federation's, keys the protocol's)
MANAGED = {
    "fraction_train",
    "fraction_evaluate",
    "min_train_nodes",
    "min_evaluate_nodes",
    "min_available_nodes",
    "weighted_by_key",
    "arrayrecord_key",
    "configrecord_key",
    "train_metrics_aggr_fn",
    "evaluate_metrics_aggr_fn",
}
# bounds of the arguments that have them, whichever strategy takes them
BOUNDS: dict[str, dict[str, float]] = {
    "eta": {"gt": 0.0},
    "eta_l": {"gt": 0.0},
    "tau": {"gt": 0.0},
    "beta_1": {"ge": 0.0, "lt": 1.0},
    "beta_2": {"ge": 0.0, "lt": 1.0},
    "server_learning_rate": {"gt": 0.0},
    "server_momentum": {"ge": 0.0, "lt": 1.0},
    "num_malicious_nodes": {"ge": 0},
    "num_nodes_to_select": {"ge": 1},
    "beta": {"ge": 0.0, "lt": 0.5},
}

# search ranges (fedsparse tune) of the arguments worth tuning, whichever strategy takes them
RANGES: dict[str, dict[str, Any]] = {
    "eta": tunable(1e-3, 1.0, log=True),  # FedOpt's server learning rate
    "tau": tunable(1e-6, 0.1, log=True),  # FedOpt's adaptivity
    "server_learning_rate": tunable(0.1, 3.0, log=True),
    "server_momentum": tunable(0.0, 0.95),
}


def params_schema(cls: type[flower.FedAvg]) -> type[BaseModel]:
    """The YAML block of Flower strategy ``cls``: its scalar constructor arguments, typed by
    their defaults, with Flower's defaults, the bounds and the search ranges above."""
    fields: dict[str, Any] = {}
    for argument in inspect.signature(cls.__init__).parameters.values():
        default = argument.default
        if argument.name in MANAGED or not isinstance(default, (bool, int, float, str)):
            continue
        bounds: dict[str, Any] = BOUNDS.get(argument.name, {})
        extra = RANGES.get(argument.name)
        fields[argument.name] = (type(default), Field(default, **bounds, json_schema_extra=extra))
    return create_model(
        f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid", frozen=True), __doc__=cls.__doc__, **fields
    )


class FlowerAggregation(Strategy):
    """fedsparse's round around a Flower strategy's aggregation."""

    def __init__(self, inner: flower.FedAvg, context: StrategyContext) -> None:
        super().__init__(context)
        self.inner = inner

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> list[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        # the Flower strategy keeps the round's model as it does under Flower (FedOpt's
        # current arrays, FedAvgM's first model); the messages it builds are not sent
        self.inner.configure_train(server_round, to_record(decode_float_state(arrays)), ConfigRecord(), grid)
        return messages

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        replies = [
            Message(
                RecordDict(
                    {
                        protocol.ARRAYS: to_record(upload.state),
                        protocol.METRICS: MetricRecord({protocol.NUM_EXAMPLES: upload.weight}),
                    }
                ),
                dst_node_id=0,
                message_type=MessageType.TRAIN,
            )
            for upload in uploads
        ]
        arrays, _ = self.inner.aggregate_train(server_round, replies)
        if arrays is None:
            return None
        # at the model's own dtype: Flower's server optimisers compute in float64
        model = decode_float_state(self.round_start) if self.round_start is not None else {}
        return to_record(
            {
                name: value.astype(model[name].dtype, copy=False) if name in model else value
                for name, value in decode_float_state(arrays).items()
            }
        )

    # opts in to checkpoints (fedsparse.capabilities.Checkpointable)
    def checkpoint_state(self) -> StrategyState:
        return StrategyState({key: to_record(state) for key, state in compat.flower_strategy_state(self.inner).items()})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        compat.restore_flower_strategy_state(
            self.inner, {key: decode_float_state(record) for key, record in state.records.items()}
        )


def build(cls: type[flower.FedAvg], params: BaseModel, context: StrategyContext) -> FlowerAggregation:
    inner = cls(
        fraction_train=1.0,  # fedsparse samples; the messages Flower builds are discarded
        fraction_evaluate=1.0,  # never asked: fedsparse configures evaluation
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=1,
        weighted_by_key=protocol.NUM_EXAMPLES,
        arrayrecord_key=protocol.ARRAYS,
        configrecord_key=protocol.CONFIG,
        **params.model_dump(),
    )
    return FlowerAggregation(inner, context)


def _register(name: str, cls: type[flower.FedAvg]) -> None:
    summary = (inspect.getdoc(cls) or "").splitlines()[0]
    STRATEGIES.add(
        name,
        StrategySpec(
            params_schema(cls), lambda params, ctx: build(cls, params, ctx), summary=summary, stock_clients=True
        ),
    )


for _name, _cls in FLOWER_STRATEGIES.items():
    _register(_name, _cls)
