"""The shared server side of pruned sub-model strategies (HeteroFL, FedRolex, AdaptCL).

Each round every sampled client gets a structured sub-model of the global model at its
pruned rate r (quantized to its bitwidth like any payload), the kept channel index sets
(ArrayRecord ``kept``, so they are counted and the reply can be checked against them),
and ``pruned-rate`` in its config. Clients with the same bitwidth and rate share one
payload. On return, every global element becomes the example-weighted mean over the
clients whose sub-model held it; elements nobody held keep their value. The kept sets
for the scatter-back are read from the very messages that were sent.

Subclasses say only which rate a client gets and which channels a rate keeps.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedsparse import protocol
from fedsparse.aggregation import to_record
from fedsparse.compat import records_of
from fedsparse.prune import ChannelLayout, Kept, SubUpdate, channel_layout, extract, scatter_mean
from fedsparse.strategy import Strategy, StrategyContext, Upload
from fedsparse.wire import decode_float_state, encode_at


class SubModelAvg(Strategy):
    scale_activations = False  # HeteroFL and FedRolex train with the 1/(1-r) scaler

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        if context.build_model is None:
            raise ValueError("sub-model strategies need the model builder in their context")
        self.layout = channel_layout(context.build_model())
        self.sent_train: dict[int, RecordDict] = {}  # client → what its train message carried

    # ------------------------------------------------------------ subclasses define
    @abstractmethod
    def rate_for(self, client: int, server_round: int) -> float:
        """The pruned rate of ``client``'s sub-model in ``server_round``."""

    @abstractmethod
    def select(self, rate: float, server_round: int, state: Mapping[str, np.ndarray]) -> Kept:
        """The channels a sub-model at ``rate`` keeps, given the model it is cut from."""

    # ------------------------------------------------------------ what clients get
    def payload_key(self, client: int, server_round: int) -> Hashable:
        return self.context.precision_of(client), self.rate_for(client, server_round)

    def payload(self, client: int, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> RecordDict:
        precision = self.context.precision_of(client)
        rate = self.rate_for(client, server_round)
        state = decode_float_state(self.model_for(precision, arrays))
        kept = self.select(rate, server_round, state)
        sub = {name: torch.from_numpy(values) for name, values in extract(state, self.layout, kept).items()}
        client_config = self.client_config(client, config)
        client_config[protocol.PRUNED_RATE] = rate
        if self.scale_activations:
            client_config[protocol.WIDTH_SCALE] = 1.0 / (1.0 - rate)
        return RecordDict(
            {
                protocol.ARRAYS: encode_at(sub, precision),
                protocol.KEPT: kept_record(self.layout.group_layers, kept),
                protocol.CONFIG: client_config,
            }
        )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.sent_train = {self.context.client_of(msg.metadata.dst_node_id): msg.content for msg in messages}
        return messages

    def pruned_rate(self, client: int) -> float:
        sent = self.sent_train.get(client)
        return float(protocol.config_of(sent)[protocol.PRUNED_RATE]) if sent is not None else 0.0  # type: ignore[arg-type]

    # ------------------------------------------------------------ what comes back
    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None
        updates = [
            SubUpdate(
                upload.state,
                read_kept(records_of(self.sent_train[upload.client], ArrayRecord)[protocol.KEPT], self.layout),
                upload.weight,
            )
            for upload in uploads
        ]
        return to_record(scatter_mean(decode_float_state(self.round_start), self.layout, updates))


def kept_record(layers: tuple[str, ...], kept: Kept) -> ArrayRecord:
    """Kept index sets as int32 arrays named after the layer whose outputs they select."""
    return ArrayRecord({layer: Array(indices.astype(np.int32)) for layer, indices in zip(layers, kept, strict=True)})


def read_kept(record: ArrayRecord, layout: ChannelLayout) -> Kept:
    return tuple(record[layer].numpy().astype(np.int64) for layer in layout.group_layers)
