"""The client half of FedAvg with update clipping: train as the plain learner does,
then scale the update (trained minus received) to an L2 norm of at most ``clip_norm``
and upload the model it leads to, at the device's bitwidth."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from flwr.app import ArrayRecord
from pydantic import BaseModel, ConfigDict, Field

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Trained
from fedsparse.wire import encode_at


class ClipParams(BaseModel):
    """The learner's hyperparameters (``strategy.fedavg_clipped`` in the YAML), sent as they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_norm: float = Field(1.0, gt=0.0, description="largest L2 norm of a client's update")


def clipped(
    trained: Mapping[str, torch.Tensor], received: Mapping[str, torch.Tensor], clip_norm: float
) -> dict[str, torch.Tensor]:
    """``received`` plus the update ``trained - received`` scaled to a norm of at most
    ``clip_norm``; tensors that are not floating point (counters) are kept as trained."""
    update = {name: trained[name] - received[name] for name in trained if trained[name].is_floating_point()}
    norm = float(sum(float((u.double() ** 2).sum()) for u in update.values())) ** 0.5
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return {name: received[name] + update[name] * scale if name in update else trained[name] for name in trained}


@LEARNERS.register("clipped")
class ClippedLearner(PlainLearner):
    keeps_received = True

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        params = ClipParams.model_validate(protocol.learner_params(job.config))
        return encode_at(clipped(trained.state, trained.received, params.clip_norm), trained.precision)
