"""FedPAQ's client half: upload the model *difference*, stochastically quantized.

At a bitwidth below 32 the difference to the model received goes through an unbiased
stochastic quantizer seeded per (run, round, client); float32 clients send it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from flwr.app import ArrayRecord

from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner
from fedsparse.quant import Precision
from fedsparse.wire import encode_at


@LEARNERS.register("fedpaq")
class DeltaLearner(PlainLearner):
    keeps_received = True

    def upload(
        self,
        job: ClientJob,
        trained: Mapping[str, torch.Tensor],
        received: Mapping[str, torch.Tensor],
        precision: Precision,
    ) -> ArrayRecord:
        delta = {name: trained[name] - received[name] for name in trained}
        return encode_at(delta, precision, generator=torch.Generator().manual_seed(job.seed() + 1))
