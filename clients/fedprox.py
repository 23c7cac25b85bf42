"""FedProx's client half: the proximal term (mu/2)·||w - w_global||² on the local loss.

``mu`` comes as ``proximal-mu`` in the message's config (Flower's key, so Flower's own
FedProx strategy drives this learner too). It applies to plain and task-stream training.
"""

from __future__ import annotations

import torch

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Regularizer


def proximal_term(model: torch.nn.Module, mu: float, anchor: list[torch.Tensor] | None = None) -> Regularizer:
    """(mu/2)·||w - w0||² over the trainable parameters; w0: ``anchor`` (one tensor per
    trainable parameter, in order, on the model's device), else their values now."""
    anchor = anchor or [p.detach().clone() for p in model.parameters() if p.requires_grad]

    def term() -> torch.Tensor:
        trained = (p for p in model.parameters() if p.requires_grad)
        drift = sum(((p - a) ** 2).sum() for p, a in zip(trained, anchor, strict=True))
        return 0.5 * mu * drift  # type: ignore[return-value]

    return term


@LEARNERS.register("fedprox")
class ProximalLearner(PlainLearner):
    def regularizer(self, job: ClientJob, model: torch.nn.Module) -> Regularizer | None:
        mu = float(job.config.get(protocol.PROXIMAL_MU, 0.0))
        return proximal_term(model, mu) if mu > 0 else None
