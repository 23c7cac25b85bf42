"""FedDyn's client half (Acar et al., 2021): dynamic regularization.

Client k keeps g_k, the gradient of its loss at its last model (the paper's
∇L_k(θ_k^{t-1}); zeros before its first round), in its node state. It minimises

    L_k(θ) - <g_k, θ> + (α/2)·||θ - θ^{t-1}||²

from the received θ^{t-1}, then keeps ``g_k <- g_k - α (θ_k^t - θ^{t-1})`` and uploads
θ_k^t. A client that misses rounds keeps its g_k as it left it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from flwr.app import ArrayRecord, RecordDict
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.clients.fedprox import proximal_term
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Regularizer, Trained, summed
from fedsparse.clients.scaffold import Tensors, linear_term
from fedsparse.compat import records_of
from fedsparse.tuning.space import tunable

GRADIENT_STATE = "feddyn.gradient"  # Context.state record: this client's g_k


class FedDynParams(BaseModel):
    """FedDyn's one hyperparameter (``strategy.feddyn``), sent to its clients as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(
        0.01, gt=0.0, description="α: weight of the dynamic regularizer", json_schema_extra=tunable(1e-3, 1.0, log=True)
    )


def next_gradient(gradient: Mapping[str, torch.Tensor], received: Tensors, trained: Tensors, alpha: float) -> Tensors:
    """``g_k - α (θ_k^t - θ^{t-1})`` per array."""
    return {name: gradient[name] - alpha * (trained[name].float() - received[name]) for name in gradient}


@LEARNERS.register("feddyn")
class FedDynLearner(PlainLearner):
    """One instance per message: :meth:`upload` computes the next g_k, :meth:`train` keeps it."""

    keeps_received = True

    def gradient(self, job: ClientJob, like: Mapping[str, torch.Tensor]) -> Tensors:
        """This client's g_k (zeros, shaped as ``like``, before its first round)."""
        kept = records_of(job.context.state, ArrayRecord).get(GRADIENT_STATE)
        if kept is None:
            return {name: torch.zeros(t.shape) for name, t in like.items() if t.is_floating_point()}
        return dict(kept.to_torch_state_dict())

    def regularizer(self, job: ClientJob, model: torch.nn.Module) -> Regularizer | None:
        alpha = FedDynParams.model_validate(protocol.learner_params(job.config)).alpha
        gradient = self.gradient(job, model.state_dict())
        return summed([linear_term(model, {n: -g for n, g in gradient.items()}), proximal_term(model, alpha)])

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        alpha = FedDynParams.model_validate(protocol.learner_params(job.config)).alpha
        received = {name: t.float() for name, t in trained.received.items()}
        self.next = next_gradient(self.gradient(job, received), received, dict(trained.state), alpha)
        return super().upload(job, trained)

    def train(self, job: ClientJob) -> RecordDict:
        content = super().train(job)
        job.context.state[GRADIENT_STATE] = ArrayRecord({n: t.contiguous() for n, t in self.next.items()})
        return content
