"""Local learning's client half: the client's own multi-head model, kept in its node
state between rounds, optionally under EWC (:mod:`fedsparse.clients.ewc`); nothing but
metrics goes back."""

from __future__ import annotations

from flwr.app import ArrayRecord, RecordDict

from fedsparse import protocol
from fedsparse.clients.ewc import EWCParams, penalty
from fedsparse.clients.ewc import end_of_task as ewc_end_of_task
from fedsparse.clients.ewc import kept_tensors as ewc_kept_tensors
from fedsparse.clients.learner import LEARNERS, ClientJob, Learner
from fedsparse.clients.streams import ClientStream
from fedsparse.compat import records_of
from fedsparse.models.multihead import MultiHeadNet

MODEL_STATE = "local.model"  # Context.state record: the client's own model tensors


@LEARNERS.register("local")
class LocalLearner(Learner):
    def train(self, job: ClientJob) -> RecordDict:
        stream = ClientStream(job)
        state = job.context.state
        model = job.task.initial_model()
        assert isinstance(model, MultiHeadNet)
        kept = records_of(state, ArrayRecord).get(MODEL_STATE)
        if kept is not None:
            model.load_state_dict(kept.to_torch_state_dict())
        model.select(stream.pool_id)
        ewc = EWCParams.of(protocol.learner_params(job.config))
        stats = stream.train(model, regularizer=penalty(model, state, ewc.ewc_lambda))
        accuracies = stream.task_accuracies(model)
        ewc_end_of_task(model, stream, job, ewc)
        state[MODEL_STATE] = ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})
        metrics = stream.metrics(stats, accuracies, stream.kept_tensors(model), ewc_kept_tensors(state))
        return protocol.reply(None, metrics)
