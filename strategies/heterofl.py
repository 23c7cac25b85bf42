"""HeteroFL (Diao et al., 2021) and FedRolex (Alam et al., 2022): static-width sub-models.

Each client's width w comes from its device profile (a known capability level, see
:func:`fedsparse.devices.heterofl_width`) and never changes; it trains the sub-model with
ceil(w·C) channels in every hidden layer, scaling hidden activations by 1/w. HeteroFL
always keeps the **first** channels, so the rest are trained only by full-width clients;
FedRolex rolls the window by one channel per round, so every channel is trained evenly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from fedsparse.catalog import STRATEGIES, StrategySpec, prunes_model
from fedsparse.prune import Kept, first_k, rolling
from fedsparse.strategies.submodel import SubModelAvg


class StaticWidthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeteroFL(SubModelAvg):
    scale_activations = True

    def rate_for(self, client: int, server_round: int) -> float:
        return 1.0 - self.context.width_of(client)

    def select(self, rate: float, server_round: int, state: Mapping[str, np.ndarray]) -> Kept:
        return first_k(self.layout, rate)


class FedRolex(HeteroFL):
    def select(self, rate: float, server_round: int, state: Mapping[str, np.ndarray]) -> Kept:
        return rolling(self.layout, rate, offset=server_round - 1)


STRATEGIES.add(
    "heterofl", StrategySpec(StaticWidthParams, lambda params, ctx: HeteroFL(ctx), model_problems=prunes_model)
)
STRATEGIES.add(
    "fedrolex", StrategySpec(StaticWidthParams, lambda params, ctx: FedRolex(ctx), model_problems=prunes_model)
)
