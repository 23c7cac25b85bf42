"""Elastic weight consolidation (Kirkpatrick et al., 2017) for task-stream learners.

After each task a client estimates the diagonal Fisher information F_i of its shared
weights on that task's training data (the mean squared gradient of the log-likelihood of
the true label, one sample at a time) and from then on adds
(lambda / 2) · sum_i F_i · (theta - theta_i*)² to its loss. The sum over past tasks is
kept in two tensors per weight, F = sum_i F_i and the F-weighted mean of the theta_i*:
sum_i F_i (theta - theta_i*)² equals F (theta - mean)² plus a constant, so the gradient
is the same and the memory does not grow with the number of tasks. Both live in the
node state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from flwr.app import ArrayRecord, RecordDict
from pydantic import BaseModel, ConfigDict, Field

from fedsparse.compat import records_of
from fedsparse.data import ArrayDataset
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.training import model_input

if TYPE_CHECKING:
    from fedsparse.clients.learner import ClientJob
    from fedsparse.clients.streams import ClientStream
    from fedsparse.config import ExperimentConfig

FISHER = "ewc.fisher"  # Context.state record: sum of the past tasks' Fisher diagonals
ANCHOR = "ewc.anchor"  # Context.state record: their Fisher-weighted mean of the weights


class EWCParams(BaseModel):
    """EWC's settings in a strategy's block (``strategy.fedavg.ewc_lambda``, …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ewc_lambda: float = Field(0.0, ge=0.0, description="EWC strength on task streams (0: off)")
    ewc_fisher_samples: int = Field(200, ge=1, description="training samples of a task its Fisher is estimated on")

    def problems(self, strategy: str, cfg: ExperimentConfig) -> list[str]:
        """EWC consolidates finished tasks: it needs task streams."""
        if self.ewc_lambda > 0 and cfg.data.tasks is None:
            return [f"strategy.{strategy}.ewc_lambda: EWC works on task streams; set data.tasks, or ewc_lambda: 0"]
        return []

    def learner_params(self) -> dict[str, Any]:
        """What a strategy sends its learners: these settings when EWC is on, else nothing."""
        return self.model_dump() if self.ewc_lambda > 0 else {}

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> EWCParams:
        """EWC's settings among a learner's parameters (others ignored)."""
        return cls.model_validate({k: v for k, v in params.items() if k in cls.model_fields})


def fisher_diagonal(
    model: MultiHeadNet, data: ArrayDataset, samples: int, generator: torch.Generator, device: torch.device
) -> dict[str, torch.Tensor]:
    """Mean squared gradient of log p(y | x) over ``samples`` random training samples,
    for each trunk parameter (with the head currently selected)."""
    model.to(device).eval()
    params = dict(model.trunk.named_parameters())
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    order = torch.randperm(len(data), generator=generator)[:samples]
    for index in order.tolist():
        x = model_input(data.x[index : index + 1]).to(device)
        y = torch.from_numpy(data.y[index : index + 1]).to(device)
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return {f"trunk.{name}": f / len(order) for name, f in fisher.items()}


def penalty(model: MultiHeadNet, state: RecordDict, strength: float) -> Callable[[], torch.Tensor] | None:
    """(strength / 2) · F · (theta - anchor)², or None before the first task has ended."""
    kept = records_of(state, ArrayRecord)
    if strength == 0 or FISHER not in kept:
        return None
    device = next(model.parameters()).device
    fisher = {k: v.to(device) for k, v in kept[FISHER].to_torch_state_dict().items()}
    anchor = {k: v.to(device) for k, v in kept[ANCHOR].to_torch_state_dict().items()}
    params = {f"trunk.{name}": p for name, p in model.trunk.named_parameters()}

    def term() -> torch.Tensor:
        total = sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
        return 0.5 * strength * total  # type: ignore[return-value]

    return term


def consolidate(model: MultiHeadNet, fisher: Mapping[str, torch.Tensor], state: RecordDict) -> None:
    """Fold the task just finished (its Fisher, the weights now) into the node state."""
    weights = {f"trunk.{name}": p.detach().cpu() for name, p in model.trunk.named_parameters()}
    new = {name: f.cpu() for name, f in fisher.items()}
    kept = records_of(state, ArrayRecord)
    if FISHER in kept:
        old_f = kept[FISHER].to_torch_state_dict()
        old_a = kept[ANCHOR].to_torch_state_dict()
        total = {n: old_f[n] + new[n] for n in new}
        anchor = {n: (old_f[n] * old_a[n] + new[n] * weights[n]) / total[n].clamp_min(1e-30) for n in new}
    else:
        total, anchor = new, weights
    state[FISHER] = ArrayRecord(total)
    state[ANCHOR] = ArrayRecord(anchor)


def end_of_task(model: MultiHeadNet, stream: ClientStream, job: ClientJob, params: EWCParams) -> None:
    """With EWC on, at the last round of a task: its Fisher on the task's training
    samples, folded into the node state with the weights now."""
    if params.ewc_lambda == 0 or not stream.ends_task:
        return
    model.select(stream.pool_id)
    generator = torch.Generator().manual_seed(job.seed() + 1)
    fisher = fisher_diagonal(model, stream.current.train, params.ewc_fisher_samples, generator, job.device)
    consolidate(model, fisher, job.context.state)


def kept_tensors(state: RecordDict) -> list[torch.Tensor]:
    """EWC's tensors in the node state (what only further training needs)."""
    kept = records_of(state, ArrayRecord)
    records = [kept[r].to_torch_state_dict() for r in (FISHER, ANCHOR) if r in kept]
    return [t for tensors in records for t in tensors.values()]
