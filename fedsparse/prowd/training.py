"""Training ProWD's dequantizer on the server, from the high-precision weights it has.

Each round: for every rung k, input Q_k(w) and target Q_{k+1}(w) (w itself on the last
rung) for every high-precision model w (the float clients' uploads and the current
global model). The reconstruction loss is the MSE measured in units of rung k's step, so
every rung counts alike; it is estimated on a random sample of elements per step.
Optionally, a distillation term: KL between the predictions of the model with the true
weights and with weights quantized to each low rung and dequantized progressively, on a
small server buffer of held-out samples (λ = 0 switches it off).

The optimiser persists across rounds, so the dequantizer keeps learning as the weights
evolve (its state is part of the strategy state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from fedsparse.data import ArrayDataset
from fedsparse.prowd.dequantizer import FlatWeights, ProgressiveDequantizer, features
from fedsparse.quant import Precision
from fedsparse.training import model_input

TensorState = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class TrainingSettings:
    steps: int = 30
    lr: float = 1e-2
    batch_elements: int = 16384
    distill_weight: float = 1.0
    distill_batch: int = 128
    distill_steps: int = 5  # the last steps of a round add the distillation term (it costs ~20× a step)


@dataclass
class _Rung:
    values: torch.Tensor
    feats: torch.Tensor
    step: torch.Tensor
    target: torch.Tensor


class DequantizerTrainer:
    def __init__(
        self,
        dequantizer: ProgressiveDequantizer,
        settings: TrainingSettings,
        seed: int,
        build_model: Callable[[], nn.Module] | None = None,
        buffer: ArrayDataset | None = None,
    ) -> None:
        if settings.distill_weight > 0 and (build_model is None or buffer is None or len(buffer) == 0):
            raise ValueError("distillation needs a model builder and a non-empty server buffer")
        self.dequantizer = dequantizer
        self.settings = settings
        self.optimizer = torch.optim.Adam(dequantizer.parameters(), lr=settings.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.model = build_model() if settings.distill_weight > 0 and build_model else None
        self.buffer = buffer

    def _rungs(self, states: Sequence[TensorState], flat: FlatWeights) -> list[_Rung]:
        ladder = self.dequantizer.ladder
        rungs = []
        for k, block in enumerate(self.dequantizer.typed_blocks()):
            values, feats, steps, targets = [], [], [], []
            for state in states:
                x = flat.quantized(state, ladder[k])
                f, s = features(x, flat, block.source)
                values.append(x)
                feats.append(f)
                steps.append(s)
                targets.append(flat.quantized(state, ladder[k + 1]))
            rungs.append(_Rung(torch.cat(values), torch.cat(feats), torch.cat(steps), torch.cat(targets)))
        return rungs

    def _reconstruction(self, rungs: list[_Rung]) -> torch.Tensor:
        loss = torch.zeros(())
        for block, rung in zip(self.dequantizer.typed_blocks(), rungs, strict=True):
            idx = torch.randint(len(rung.values), (self.settings.batch_elements,), generator=self.generator)
            step = rung.step[idx]
            keep = step > 0
            pred = block.correct(rung.values[idx], rung.feats[idx], step)
            loss = loss + (((pred - rung.target[idx]) / step.clamp_min(1e-12)) ** 2)[keep].mean()
        return loss

    def _distillation(self, reference: TensorState, flat: FlatWeights, starts: Sequence[Precision]) -> torch.Tensor:
        assert self.model is not None and self.buffer is not None
        idx = torch.randint(len(self.buffer), (self.settings.distill_batch,), generator=self.generator)
        x = model_input(self.buffer.x[idx.numpy()])
        with torch.no_grad():
            teacher = F.softmax(functional_call(self.model, dict(reference), (x,)), dim=1)
        loss = torch.zeros(())
        for start in starts:
            restored = flat.unflatten(self.dequantizer(flat.quantized(reference, start), flat, start))
            logits = functional_call(self.model, {**reference, **restored}, (x,))
            loss = loss + F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
        return loss / max(len(starts), 1)

    def fit(
        self, states: Sequence[TensorState], reference: TensorState, starts: Sequence[Precision]
    ) -> dict[str, float]:
        """Train on high-precision ``states``; distil on ``reference`` from each low ``start``."""
        flat = FlatWeights.of(reference)
        rungs = self._rungs(states, flat)
        distill = self.settings.distill_weight > 0 and bool(starts)
        reconstruction = distillation = torch.zeros(())
        self.dequantizer.train()
        first_distill_step = self.settings.steps - self.settings.distill_steps
        for step in range(self.settings.steps):
            reconstruction = self._reconstruction(rungs)
            loss = reconstruction
            if distill and step >= first_distill_step:
                distillation = self._distillation(reference, flat, starts)
                loss = loss + self.settings.distill_weight * distillation
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.dequantizer.eval()
        return {
            "dequantizer_reconstruction": float(reconstruction.detach()) / max(len(rungs), 1),
            "dequantizer_distillation": float(distillation.detach()),
        }
