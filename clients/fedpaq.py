"""FedPAQ's client half: upload the model *difference*, stochastically quantized.

At a bitwidth below 32 the difference to the model received goes through an unbiased
stochastic quantizer seeded per (run, round, client); float32 clients send it exactly.
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord

from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Trained
from fedsparse.wire import encode_at


@LEARNERS.register("fedpaq")
class DeltaLearner(PlainLearner):
    keeps_received = True

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        delta = {name: value - trained.received[name] for name, value in trained.state.items()}
        return encode_at(delta, trained.precision, generator=torch.Generator().manual_seed(job.seed() + 1))
