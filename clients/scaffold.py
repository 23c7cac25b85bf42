"""SCAFFOLD's client half (Karimireddy et al., 2020), option II.

The message brings the global model x and the server's control variate c (record
``control``); the client keeps its own control variate c_i in its node state (zeros
before its first round). Every local step follows ``g(y) - c_i + c``: the correction
``c - c_i`` is added as the linear loss term ``<c - c_i, y>``, whose gradient it is, so
the configured optimizer applies it. After K local steps at rate η (option II; with SGD momentum β, η is the
steady-state step lr/(1-β))

    c_i+ = c_i - c + (x - y) / (K η)

is kept, and the reply carries y (the model, at the device's bitwidth) and
Δc_i = c_i+ - c_i (``control``, float32): about twice FedAvg's upload, as the paper says.
A client that misses rounds keeps its c_i as it left it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from flwr.app import ArrayRecord, RecordDict

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob
from fedsparse.clients.plain import PlainLearner, Regularizer, Trained
from fedsparse.compat import records_of
from fedsparse.wire import encode_state, float_tensors

CONTROL_STATE = "scaffold.control"  # Context.state record: this client's control variate c_i

Tensors = dict[str, torch.Tensor]


def linear_term(model: torch.nn.Module, slope: Mapping[str, torch.Tensor]) -> Regularizer:
    """``sum <slope[name], w>`` over the model's trainable parameters named in ``slope``:
    its gradient adds ``slope`` to each such parameter's gradient."""
    pairs = [(p, slope[name].to(p.device)) for name, p in model.named_parameters() if p.requires_grad and name in slope]

    def term() -> torch.Tensor:
        return sum(((p * s).sum() for p, s in pairs), torch.zeros(()))

    return term


def local_steps(num_examples: int, batch_size: int, epochs: int) -> int:
    """K: the optimizer steps of ``epochs`` epochs over ``num_examples`` in ``batch_size`` batches."""
    return epochs * math.ceil(num_examples / batch_size)


def next_control(
    own: Mapping[str, torch.Tensor],
    server: Mapping[str, torch.Tensor],
    received: Tensors,
    trained: Tensors,
    steps_lr: float,
) -> Tensors:
    """Option II: ``c_i - c + (x - y) / (K η)`` per array (``steps_lr`` = K η; 0 when the
    client took no step, which keeps ``c_i``)."""
    if steps_lr == 0:
        return dict(own)
    return {name: own[name] - server[name] + (received[name] - trained[name].float()) / steps_lr for name in server}


@LEARNERS.register("scaffold")
class ScaffoldLearner(PlainLearner):
    """One instance per message: :meth:`regularizer` reads the controls, :meth:`upload`
    computes the client's next one, :meth:`train` keeps it and sends its change."""

    keeps_received = True

    def controls(self, job: ClientJob) -> tuple[Tensors, Tensors]:
        """(c, c_i): the server's, from the message, and this client's (zeros at first)."""
        server = float_tensors(records_of(job.message.content, ArrayRecord)[protocol.CONTROL])
        kept = records_of(job.context.state, ArrayRecord).get(CONTROL_STATE)
        own = kept.to_torch_state_dict() if kept is not None else {n: torch.zeros_like(t) for n, t in server.items()}
        return server, dict(own)

    def regularizer(self, job: ClientJob, model: torch.nn.Module) -> Regularizer | None:
        server, own = self.controls(job)
        return linear_term(model, {name: server[name] - own[name] for name in server})

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        server, own = self.controls(job)
        training = job.task.training
        steps = local_steps(len(job.client_data().train), training.batch_size, training.local_epochs)
        received = {name: t.float() for name, t in trained.received.items()}
        effective_lr = training.lr / (1 - training.momentum)  # SGD with momentum, in its steady state
        self.control = next_control(own, server, received, dict(trained.state), steps * effective_lr)
        self.change = {name: self.control[name] - own[name] for name in server}
        return super().upload(job, trained)

    def train(self, job: ClientJob) -> RecordDict:
        content = super().train(job)
        job.context.state[CONTROL_STATE] = ArrayRecord({n: t.contiguous() for n, t in self.control.items()})
        content[protocol.CONTROL] = encode_state(self.change)
        return content
