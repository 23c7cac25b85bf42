"""The learning-rate rule of FedWeIT's official client on a task stream
(``federation.lr_plateau``): reduce on a plateau of the task's validation loss.

The rate and the plateau count live in the node state between rounds, so a task's
schedule runs over all its rounds as if they were one training run; a new task starts
again at the configured ``lr``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from flwr.app import ConfigRecord, RecordDict

from fedsparse.sections import PlateauConfig

SCHEDULE_STATE = "streams.lr-plateau"  # Context.state record: the current task's rate and count


@dataclass
class PlateauSchedule:
    config: PlateauConfig
    stage: int  # the task (position in the client's stream) this schedule belongs to
    lr: float
    best: float  # lowest validation loss of the task so far
    wait: int  # epochs without a new best before the next drop

    @classmethod
    def resume(cls, state: RecordDict, config: PlateauConfig, lr: float, stage: int) -> PlateauSchedule:
        """The schedule saved in ``state`` for ``stage``, or a fresh one at ``lr``."""
        record = state.config_records.get(SCHEDULE_STATE, ConfigRecord())
        saved = {key: float(value) for key, value in record.items() if isinstance(value, int | float)}
        if saved.get("stage") != stage:
            return cls(config, stage, lr, math.inf, config.patience)
        return cls(config, stage, saved["lr"], saved["best"], int(saved["wait"]))

    def step(self, validation_loss: float, optimizer: torch.optim.Optimizer) -> None:
        """One epoch's validation loss: a new best resets the count; ``patience`` epochs
        without one divide the rate by ``factor`` (applied to ``optimizer`` at once)."""
        if validation_loss < self.best:
            self.best, self.wait = validation_loss, self.config.patience
            return
        self.wait -= 1
        if self.wait > 0:
            return
        self.lr /= self.config.factor
        self.wait = self.config.patience
        for group in optimizer.param_groups:
            group["lr"] = self.lr

    def save(self, state: RecordDict) -> None:
        state[SCHEDULE_STATE] = ConfigRecord({"stage": self.stage, "lr": self.lr, "best": self.best, "wait": self.wait})
