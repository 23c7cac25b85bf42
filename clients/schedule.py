"""The learning-rate rule of FedWeIT's official client on a task stream
(``federation.lr_plateau``): reduce on a plateau of the task's validation loss, checked
once a round, after local training (the official client checks after every epoch and
trains one epoch a round).

The rate and the plateau count live in the node state between rounds, so a task's
schedule runs over all its rounds; a new task starts again at the configured ``lr``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flwr.app import ConfigRecord, RecordDict

from fedsparse.compat import records_of
from fedsparse.sections import PlateauConfig

SCHEDULE_STATE = "streams.lr-plateau"  # Context.state record: the current task's rate and count


@dataclass
class PlateauSchedule:
    config: PlateauConfig
    stage: int  # the task (position in the client's stream) this schedule belongs to
    lr: float
    best: float  # lowest validation loss of the task so far
    wait: int  # rounds without a new best before the next drop

    @classmethod
    def resume(cls, state: RecordDict, config: PlateauConfig, lr: float, stage: int) -> PlateauSchedule:
        """The schedule saved in ``state`` for ``stage``, or a fresh one at ``lr``."""
        record = records_of(state, ConfigRecord).get(SCHEDULE_STATE, ConfigRecord())
        saved = {key: float(value) for key, value in record.items() if isinstance(value, int | float)}
        if saved.get("stage") != stage:
            return cls(config, stage, lr, math.inf, config.patience)
        return cls(config, stage, saved["lr"], saved["best"], int(saved["wait"]))

    def step(self, validation_loss: float) -> None:
        """A round's validation loss: a new best resets the count; ``patience`` rounds
        without one divide the rate by ``factor`` for the rounds that follow."""
        if validation_loss < self.best:
            self.best, self.wait = validation_loss, self.config.patience
            return
        self.wait -= 1
        if self.wait > 0:
            return
        self.lr /= self.config.factor
        self.wait = self.config.patience

    def save(self, state: RecordDict) -> None:
        state[SCHEDULE_STATE] = ConfigRecord({"stage": self.stage, "lr": self.lr, "best": self.best, "wait": self.wait})
