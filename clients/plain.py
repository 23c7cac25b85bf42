"""The plain learner: train the model received, upload the trained model.

What every device adds applies to every learner built on this one: at a bitwidth below
32 the client trains with quantization-aware training (a float latent copy, forward
through Q_b, straight-through gradients) and uploads Q_b(latent) bit-packed; a pruned
sub-model simply arrives with narrower arrays and trains with hidden activations scaled
by ``width-scale`` when the server asks for it.

On a task stream (``data.tasks``) the model is the multi-head net: the trunk arrives and
goes back, each task's head stays in the node state; the client trains its current
task's head with the trunk, optionally under EWC (:mod:`fedsparse.clients.ewc`), and
reports its accuracy on every task seen so far (:mod:`fedsparse.clients.streams`).

Subclasses change one step: :meth:`PlainLearner.regularizer` (a term added to the loss)
or :meth:`PlainLearner.upload` (what goes back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from flwr.app import ArrayRecord, RecordDict

from fedsparse import protocol
from fedsparse.clients.ewc import EWCParams, penalty
from fedsparse.clients.ewc import end_of_task as ewc_end_of_task
from fedsparse.clients.ewc import kept_tensors as ewc_kept_tensors
from fedsparse.clients.learner import LEARNERS, ClientJob, Learner
from fedsparse.clients.streams import ClientStream
from fedsparse.compat import records_of
from fedsparse.models.multihead import HEADS, TRUNK, MultiHeadNet
from fedsparse.prune import scaled_activations
from fedsparse.quant import Precision
from fedsparse.quant.qat import quantization_aware
from fedsparse.training import fit
from fedsparse.wire import encode_at, encode_state, float_tensors

Regularizer = Callable[[], torch.Tensor]
HEADS_STATE = "plain.heads"  # Context.state record: the client's task heads (task streams)


@dataclass(frozen=True)
class Trained:
    """What local training produced, for :meth:`PlainLearner.upload`."""

    state: Mapping[str, torch.Tensor]  # the trained model, on the CPU
    received: Mapping[str, torch.Tensor]  # the model as it arrived (if ``keeps_received``), else empty
    precision: Precision  # the device's format


@LEARNERS.register(protocol.PLAIN)
class PlainLearner(Learner):
    def regularizer(self, job: ClientJob, model: torch.nn.Module) -> Regularizer | None:
        """A term added to every batch's loss, built once ``model`` is on its device."""
        return None

    keeps_received = False  # whether :meth:`upload` reads the model received

    def upload(self, job: ClientJob, trained: Trained) -> ArrayRecord:
        """The arrays sent back: the trained model at the device's bitwidth."""
        return encode_at(dict(trained.state), trained.precision)

    def train(self, job: ClientJob) -> RecordDict:
        if job.task.tasks is not None:
            return self.train_stream(job)
        precision = job.precision()
        data = job.client_data()
        model = job.received_model()
        received = {name: t.clone() for name, t in model.state_dict().items()} if self.keeps_received else {}
        model.to(job.device)
        width_scale = float(job.config.get(protocol.WIDTH_SCALE, 1.0))
        with quantization_aware(model, precision), scaled_activations(model, width_scale):
            stats = fit(
                model,
                data.train,
                job.task.training,
                generator=torch.Generator().manual_seed(job.seed()),
                device=job.device,
                regularizer=self.regularizer(job, model),
            )
        trained = Trained({name: t.cpu() for name, t in model.state_dict().items()}, received, precision)
        metrics = protocol.train_metrics(
            stats.num_examples, stats.loss, stats.accuracy, **{protocol.BITWIDTH: precision.bits}
        )
        return protocol.reply(self.upload(job, trained), metrics)

    def train_stream(self, job: ClientJob) -> RecordDict:
        """One round of a task stream: the shared trunk arrives and goes back; each task's
        head stays in the node state; with EWC on, a task's end consolidates it."""
        stream, state = ClientStream(job), job.context.state
        model = job.task.initial_model()  # a client's heads start as the run's initial ones
        assert isinstance(model, MultiHeadNet)
        heads = records_of(state, ArrayRecord).get(HEADS_STATE)
        if heads is not None:
            model.load_part(heads.to_torch_state_dict(), HEADS)
        model.load_part(float_tensors(protocol.arrays_of(job.message.content)), TRUNK)
        model.select(stream.pool_id)
        model.to(job.device)
        ewc = EWCParams.of(protocol.learner_params(job.config))
        terms = [self.regularizer(job, model), penalty(model, state, ewc.ewc_lambda)]
        stats = stream.train(model, regularizer=summed([t for t in terms if t is not None]))
        accuracies = stream.task_accuracies(model)
        ewc_end_of_task(model, stream, job, ewc)
        state[HEADS_STATE] = ArrayRecord({name: t.detach().cpu() for name, t in model.heads_state().items()})
        metrics = stream.metrics(stats, accuracies, stream.kept_tensors(model), ewc_kept_tensors(state))
        return protocol.reply(encode_state(model.body_state()), metrics)


def summed(terms: list[Regularizer]) -> Regularizer | None:
    """One loss term adding ``terms`` (itself when there is one; None when none)."""
    if len(terms) <= 1:
        return terms[0] if terms else None
    return lambda: sum((term() for term in terms[1:]), terms[0]())
