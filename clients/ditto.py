"""Ditto's client half (Li et al., 2021): a global model and a personal one.

The client trains the received global model w^t as FedAvg does and uploads it. It also
keeps a personal model v_k in its node state (the received global model before its
first round) and trains it for the same local epochs on

    f_k(v) + (λ/2)·||v - w^t||²

then reports v_k's loss and accuracy on its own held-out split (``personal_loss``,
``personal_accuracy``; the server's row holds their example-weighted mean over the
round's clients). v_k never leaves the node; it trains in float32 whatever the device's
bitwidth. A client that misses rounds keeps its v_k as it left it.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, RecordDict
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.clients.fedprox import proximal_term
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner
from fedsparse.compat import records_of
from fedsparse.training import Stats, evaluate, fit
from fedsparse.tuning.space import tunable

PERSONAL_STATE = "ditto.personal"  # Context.state record: this client's personal model v_k


class DittoParams(BaseModel):
    """Ditto's one hyperparameter (``strategy.ditto``), sent to its clients as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lam: float = Field(
        0.1, ge=0.0, description="λ: pull of the personal model towards the global one",
        json_schema_extra=tunable(1e-3, 10.0, log=True),
    )  # fmt: skip


def personalize(job: ClientJob, lam: float) -> Stats:
    """Train this client's personal model one round towards the received global model,
    keep it, and return its statistics on the client's held-out split."""
    model = job.received_model()
    anchor = [p.detach().clone().to(job.device) for p in model.parameters() if p.requires_grad]
    kept = records_of(job.context.state, ArrayRecord).get(PERSONAL_STATE)
    if kept is not None:
        model.load_state_dict(kept.to_torch_state_dict())
    model.to(job.device)
    data = job.client_data()
    fit(
        model,
        data.train,
        job.task.training,
        generator=torch.Generator().manual_seed(job.seed()),
        device=job.device,
        regularizer=proximal_term(model, lam, anchor) if lam > 0 else None,
    )
    job.context.state[PERSONAL_STATE] = ArrayRecord({n: t.detach().cpu() for n, t in model.state_dict().items()})
    return evaluate(model, data.val, job.device)


@LEARNERS.register("ditto")
class DittoLearner(PlainLearner):
    def train(self, job: ClientJob) -> RecordDict:
        content = super().train(job)
        stats = personalize(job, DittoParams.model_validate(protocol.learner_params(job.config)).lam)
        metrics = protocol.metrics_of(content)
        assert metrics is not None, "a plain learner's reply carries metrics"
        metrics[protocol.PERSONAL_LOSS] = stats.loss
        metrics[protocol.PERSONAL_ACCURACY] = stats.accuracy
        return content
