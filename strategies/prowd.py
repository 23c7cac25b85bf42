"""ProWD (Yoon et al., ICML 2022) as a Flower strategy: thin glue around
:mod:`fedsparse.prowd`.

Each round: train the progressive dequantizer on the high-precision weights the server
holds (the float clients' uploads and the current global model), restore every low-bit
upload through it, then aggregate selectively (low-bit elements count only where they
agree in sign with the high-precision mean update). ``dequantizer: false`` uses plain
scale dequantization; ``selective: false`` averages everything. With both off and
``low_bit_update: from_global`` it is FedAvg.
With no high-precision client in a round, the (dequantized) mean is used.

Each round with high- and low-precision uploads reports, per low bitwidth b (mean over
its clients): ``prowd_kept_fraction_<b>bit``, the share of update elements that agree
in sign with the high-precision mean update Δ_H; ``prowd_update_ratio_<b>bit``,
‖Δ_l‖ / ‖Δ_H‖; and ``prowd_kept_ratio_<b>bit``, the same on the agreeing elements only
(whether or not selection is on, so every variant is measured alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.aggregation import to_record, weighted_mean
from fedsparse.capabilities import StrategyState
from fedsparse.catalog import STRATEGIES, StrategySpec
from fedsparse.prowd import (
    DequantizerTrainer,
    LowBitUpdate,
    ProgressiveDequantizer,
    TrainingSettings,
    bit_ladder,
    compare_to_high,
    high_update,
    selective_mean,
)
from fedsparse.quant import FLOAT32, Precision
from fedsparse.strategy import Strategy, StrategyContext, Upload, quantized_copy
from fedsparse.tuning.space import tunable
from fedsparse.wire import decode_float_state, encode_state, float_tensors

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig


def _tensors(state: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.array(values)) for name, values in state.items()}


class ProWDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dequantizer: bool = Field(True, description="trainable progressive dequantizer (off: scale dequantization)")
    selective: bool = Field(True, description="keep low-bit elements only where they agree with the float update")
    distill_weight: float = Field(1.0, ge=0.0, description="λ of the distillation term; needs data.server_samples")
    steps: int = Field(30, ge=1, description="dequantizer optimisation steps per round")
    lr: float = Field(1e-2, gt=0.0, json_schema_extra=tunable(1e-3, 0.1, log=True))
    hidden: int = Field(16, ge=1, description="width of each block's per-element MLP")
    batch_elements: int = Field(16384, ge=1, description="weights sampled per step for the reconstruction loss")
    distill_batch: int = Field(128, ge=1, description="server-buffer samples per distillation step")
    distill_steps: int = Field(5, ge=0, description="steps per round (the last ones) that add distillation")
    low_bit_update: Literal["from_received", "from_global"] = Field(
        "from_received", description="a low-bit update is measured from the model the client received, or from θ_global"
    )
    normalise: Literal["agreeing", "all"] = Field(
        "all",
        description="selective: divide each element by every client's weight (all: a disagreeing update "
        "counts as zero) or by the weight of the clients that contributed to it (agreeing)",
    )


class ProWD(Strategy):
    def __init__(self, params: ProWDParams, context: StrategyContext) -> None:
        super().__init__(context)
        self.params = params
        self.last_metrics: dict[str, float] = {}
        self.dequantizer: ProgressiveDequantizer | None = None
        self.trainer: DequantizerTrainer | None = None
        ladder = bit_ladder(set(context.precisions) or {FLOAT32})
        if params.dequantizer and len(ladder) > 1:  # an all-float32 federation has nothing to dequantize
            self.dequantizer = ProgressiveDequantizer(ladder, hidden=params.hidden)
            settings = TrainingSettings(
                steps=params.steps,
                lr=params.lr,
                batch_elements=params.batch_elements,
                distill_weight=params.distill_weight,
                distill_batch=params.distill_batch,
                distill_steps=params.distill_steps,
            )
            self.trainer = DequantizerTrainer(
                self.dequantizer, settings, context.seed, context.build_model, context.server_data
            )

    def _restore(self, state: Mapping[str, np.ndarray], precision: Precision) -> Mapping[str, np.ndarray]:
        """D(θ) progressively from ``precision``'s rung; scale dequantization without a dequantizer."""
        if self.dequantizer is None:
            return state
        restored = self.dequantizer.restore(_tensors(state), precision)
        return {name: t.numpy() for name, t in restored.items()}

    def _low_bit_state(
        self, upload: Upload, start: Mapping[str, np.ndarray], received_cache: dict[Precision, Mapping[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """The model a low-bit client stands for, as the global model plus its update.

        ``from_global`` (the method's specification): D(θ_l) itself, i.e. update D(θ_l) - θ_global.
        ``from_received``: θ_global + D(θ_l) - D(Q_b(θ_global)), the change from the model
        the client actually received, so the quantization error of its starting point
        (which at 2 bits dwarfs a round of training) is not counted as an update.
        """
        restored = self._restore(upload.state, upload.precision)
        if self.params.low_bit_update == "from_global":
            return dict(restored)
        if upload.precision not in received_cache:  # one per bitwidth, shared by its clients
            assert self.round_start is not None
            received = decode_float_state(quantized_copy(self.round_start, upload.precision))
            received_cache[upload.precision] = self._restore(received, upload.precision)
        restored_received = received_cache[upload.precision]
        return {name: start[name] + (restored[name] - restored_received[name]) for name in start}

    def aggregate(self, server_round: int, uploads: list[Upload]) -> ArrayRecord | None:
        assert self.round_start is not None, "aggregate before configure_train"
        start = decode_float_state(self.round_start)
        high = [(u.state, u.weight) for u in uploads if u.precision.is_high]
        low_uploads = [u for u in uploads if not u.precision.is_high]
        self.last_metrics = {}
        if self.trainer is not None and low_uploads:
            reference = float_tensors(self.round_start)
            states = [_tensors(s) for s, _ in high] + [reference]
            starts = sorted({u.precision for u in low_uploads}, key=lambda p: p.rank)
            self.last_metrics.update(self.trainer.fit(states, reference, starts))
        received_cache: dict[Precision, Mapping[str, np.ndarray]] = {}
        low = [(self._low_bit_state(u, start, received_cache), u.weight) for u in low_uploads]
        if high and low:
            delta_high = high_update(start, high)
            measured = [
                (u.precision, compare_to_high(start, delta_high, state))
                for u, (state, _) in zip(low_uploads, low, strict=True)
            ]
            self.last_metrics.update(low_bit_metrics(measured))
        if self.params.selective and high and low:
            state = selective_mean(start, high, low, self.params.normalise)
        else:
            pairs = high + low
            state = weighted_mean([s for s, _ in pairs], [w for _, w in pairs])
        return to_record(state)

    def aggregation_metrics(self) -> dict[str, float]:
        return self.last_metrics

    def checkpoint_state(self) -> StrategyState:
        return StrategyState({"prowd": self.state_arrays()})

    def restore_checkpoint_state(self, state: StrategyState) -> None:
        self.load_state_arrays(state.records["prowd"])

    def state_arrays(self) -> ArrayRecord:
        """The dequantizer's weights, optimiser moments and sampling RNG, for the server checkpoint."""
        if self.dequantizer is None or self.trainer is None:
            return ArrayRecord()
        state = {f"dequantizer.{k}": v for k, v in self.dequantizer.state_dict().items()}
        state["generator"] = self.trainer.generator.get_state()
        for index, moments in self.trainer.optimizer.state_dict()["state"].items():
            for key, value in moments.items():
                state[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
        return encode_state(state)

    def load_state_arrays(self, record: ArrayRecord) -> None:
        if self.dequantizer is None or self.trainer is None:
            return
        tensors = {k: t.clone() for k, t in float_tensors(record).items()}
        self.trainer.generator.set_state(tensors.pop("generator"))
        prefix = "dequantizer."
        self.dequantizer.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        optimizer_state = self.trainer.optimizer.state_dict()
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                optimizer_state["state"].setdefault(int(index), {})[name] = value
        self.trainer.optimizer.load_state_dict(optimizer_state)


def low_bit_metrics(measured: list[tuple[Precision, LowBitUpdate]]) -> dict[str, float]:
    """Per low bitwidth, the mean over its clients of each :class:`LowBitUpdate` field, and
    ``prowd_kept_fraction`` over every low-bit client."""
    metrics = {"prowd_kept_fraction": float(np.mean([m.kept for _, m in measured]))}
    for precision in sorted({p for p, _ in measured}, key=lambda p: p.rank):
        group = [m for p, m in measured if p == precision]
        suffix = f"{precision.bits}bit"
        metrics[f"prowd_kept_fraction_{suffix}"] = float(np.mean([m.kept for m in group]))
        metrics[f"prowd_update_ratio_{suffix}"] = float(np.mean([m.size for m in group]))
        metrics[f"prowd_kept_ratio_{suffix}"] = float(np.mean([m.kept_size for m in group]))
    return metrics


def _problems(params: ProWDParams, cfg: ExperimentConfig) -> list[str]:
    if params.dequantizer and params.distill_weight > 0 and cfg.data.server_samples == 0:
        return ["strategy.prowd.distill_weight: distillation needs data.server_samples > 0 (or set it to 0)"]
    return []


STRATEGIES.add(
    "prowd",
    StrategySpec(ProWDParams, lambda params, ctx: ProWD(params, ctx), problems=_problems),
)
