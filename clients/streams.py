"""A client's view of its task stream in the current round, for task-stream learners.

The round number says which task of its stream a client learns (``data.tasks``:
``rounds_per_task`` rounds each); after training it reports its accuracy on every task
it has seen so far (``task-accuracy``, in stream order), on that task's test set with
that task's head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

from fedsparse import protocol
from fedsparse.clients.learner import ClientJob
from fedsparse.clients.schedule import PlateauSchedule
from fedsparse.data import ContinualData
from fedsparse.decompose import DecomposedNet
from fedsparse.models.multihead import MultiHeadNet
from fedsparse.models.size import stored_bytes
from fedsparse.training import Stats, evaluate, fit


class TaskAccuracies(NamedTuple):
    """A client's accuracy on each task of its stream so far, in stream order: on the
    tasks' test splits, and on their validation splits (empty without one)."""

    test: list[float]
    val: list[float]


class ClientStream:
    """One client's task stream at the round its message belongs to."""

    def __init__(self, job: ClientJob) -> None:
        self.job = job
        self.server_round = protocol.server_round(job.config)
        self.data: ContinualData = job.task.continual_data(job.data_path)
        self.stage = self.data.stage_of_round(self.server_round)
        self.current = self.data.task(job.client, self.stage)

    @property
    def pool_id(self) -> int:
        return self.current.spec.pool_id

    @property
    def ends_task(self) -> bool:
        return self.data.is_last_round_of_stage(self.server_round)

    @property
    def has_next_task(self) -> bool:
        return self.stage + 1 < self.data.config.num_tasks

    def train(self, model: torch.nn.Module, regularizer: Callable[[], torch.Tensor] | None = None) -> Stats:
        """Local epochs on the current task's training split, trainable parameters only;
        under ``federation.lr_plateau``, at the task's scheduled rate
        (:mod:`fedsparse.clients.schedule`), which this round's validation loss then updates."""
        training, state, device = self.job.task.training, self.job.context.state, self.job.device
        generator = torch.Generator().manual_seed(self.job.seed())
        if training.lr_plateau is None:
            return fit(model, self.current.train, training, generator=generator, device=device, regularizer=regularizer)
        schedule = PlateauSchedule.resume(state, training.lr_plateau, training.lr, self.stage)
        stats = fit(
            model,
            self.current.train,
            training,
            generator=generator,
            device=device,
            regularizer=regularizer,
            lr=schedule.lr,
        )
        schedule.step(evaluate(model, self.current.val, device).loss)
        schedule.save(state)
        return stats

    def kept_tensors(self, model: MultiHeadNet) -> list[torch.Tensor]:
        """What a client keeps of a multi-head net: the trunk and the heads of the tasks
        of its stream so far (the others are still the run's initial ones)."""
        seen = {f"heads.{self.data.task(self.job.client, stage).spec.pool_id}." for stage in range(self.stage + 1)}
        heads = [t for name, t in model.heads_state().items() if name.startswith(tuple(seen))]
        return [*model.body_state().values(), *heads]

    def task_accuracies(self, model: MultiHeadNet | DecomposedNet) -> TaskAccuracies:
        """Accuracy on each task of the stream so far (this one included), with its head,
        on its test split and, where tasks hold a validation split out, on that."""
        test, val = [], []
        for stage in range(self.stage + 1):
            seen = self.data.task(self.job.client, stage)
            model.select(seen.spec.pool_id)
            test.append(evaluate(model, seen.test, self.job.device).accuracy)
            if len(seen.val):
                val.append(evaluate(model, seen.val, self.job.device).accuracy)
        return TaskAccuracies(test, val)

    def metrics(
        self,
        stats: Stats,
        accuracies: TaskAccuracies,
        serving: Iterable[torch.Tensor],
        training_only: Iterable[torch.Tensor] = (),
    ) -> dict[str, Any]:
        """A task-stream reply's metrics: training, the accuracy on every task so far
        (test, and validation where there is a split), and the bytes the client keeps:
        ``serving``, every tensor it needs to serve its tasks, and with ``training_only``
        (what only further training needs) its state."""
        served = stored_bytes(serving)
        extra = {
            protocol.TASK_ACCURACY: accuracies.test,
            **({protocol.TASK_VAL_ACCURACY: accuracies.val} if accuracies.val else {}),
            protocol.MODEL_SIZE: served,
            protocol.STATE_SIZE: served + stored_bytes(training_only),
        }
        return protocol.train_metrics(stats.num_examples, stats.loss, stats.accuracy, **extra)
