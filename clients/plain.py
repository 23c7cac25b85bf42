"""The plain learner: train the model received, upload the trained model.

What every device adds applies to every learner built on this one: at a bitwidth below
32 the client trains with quantization-aware training (a float latent copy, forward
through Q_b, straight-through gradients) and uploads Q_b(latent) bit-packed; a pruned
sub-model simply arrives with narrower arrays and trains with hidden activations scaled
by ``width-scale`` when the server asks for it.

On a task stream (``data.tasks``) the model is the multi-head net: the client trains the
head of its current task and reports its accuracy on every task seen so far
(:mod:`fedsparse.clients.streams`).

Subclasses change one step: :meth:`PlainLearner.regularizer` (a term added to the loss)
or :meth:`PlainLearner.upload` (what goes back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from flwr.app import ArrayRecord, RecordDict

from fedsparse import protocol
from fedsparse.clients.learner import LEARNERS, ClientJob, Learner
from fedsparse.clients.streams import ClientStream
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.prune import scaled_activations
from fedsparse.quant import Precision
from fedsparse.quant.qat import quantization_aware
from fedsparse.training import fit
from fedsparse.wire import encode_at, encode_state, load_into

Regularizer = Callable[[], torch.Tensor]


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
        """One round of a task stream on the shared multi-head model."""
        stream = ClientStream(job)
        model = job.task.build_model()
        assert isinstance(model, MultiHeadNet)
        load_into(model, protocol.arrays_of(job.message.content))
        model.select(stream.pool_id)
        model.to(job.device)
        stats = stream.train(model, regularizer=self.regularizer(job, model))
        accuracies = stream.task_accuracies(model)
        state = {name: t.detach().cpu() for name, t in model.state_dict().items()}
        return protocol.reply(encode_state(state), stream.metrics(stats, accuracies))
