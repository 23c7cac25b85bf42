"""Reduce-on-plateau on task streams: the rule itself, and its state across rounds and tasks."""

from __future__ import annotations

import math

import pytest
from flwr.app import Message, MessageType, RecordDict

from fedsparse import protocol
from fedsparse.clients.app import app
from fedsparse.clients.schedule import SCHEDULE_STATE, PlateauSchedule
from fedsparse.config import ConfigError, apply_overrides, read_yaml, validate_config
from fedsparse.sections import PlateauConfig
from fedsparse.task import ClientTask

from ..conftest import REPO
from ..helpers import DIGITS_STREAM, context_for


def test_the_rate_drops_after_patience_rounds_without_a_new_best() -> None:
    schedule = PlateauSchedule(PlateauConfig(patience=2, factor=3.0), stage=0, lr=0.3, best=math.inf, wait=2)
    for loss in (1.0, 0.9, 0.95, 0.92):  # two bests, then two rounds without one: a drop
        schedule.step(loss)
    assert schedule.lr == pytest.approx(0.1) and schedule.best == 0.9 and schedule.wait == 2
    schedule.step(0.91)
    assert schedule.lr == pytest.approx(0.1) and schedule.wait == 1
    schedule.step(0.5)  # a new best resets the count
    assert schedule.best == 0.5 and schedule.wait == 2
    schedule.step(math.nan)  # a diverged round is no improvement
    assert schedule.wait == 1


def stream_task(*overrides: str) -> ClientTask:
    raw = apply_overrides(
        read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"),
        [*DIGITS_STREAM, "strategy.name=local", "data.tasks.val_fraction=0.2", *overrides],
    )
    return ClientTask.from_experiment(validate_config(raw))


def local_round(task: ClientTask, server_round: int, context) -> None:  # type: ignore[no-untyped-def]
    config = task.to_config()
    config[protocol.SERVER_ROUND] = server_round
    protocol.with_learner(config, "local")
    message = Message(RecordDict({protocol.CONFIG: config}), dst_node_id=1000, message_type=MessageType.TRAIN)
    reply = app(message, context)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""


def test_the_schedule_carries_over_rounds_and_restarts_with_each_task(server_identity) -> None:  # type: ignore[no-untyped-def]
    task = stream_task("federation.lr_plateau={patience: 1, factor: 10.0}")
    context = context_for(0, 3)
    records = []
    for server_round in (1, 2, 3):  # rounds 1-2: the first task; 3: the second
        local_round(task, server_round, context)
        records.append(dict(context.state.config_records[SCHEDULE_STATE]))
    first, second, third = records
    assert first == {"stage": 0, "lr": task.training.lr, "best": first["best"], "wait": 1}
    assert math.isfinite(first["best"])  # type: ignore[arg-type]
    # round 2 either improved on round 1's loss or, with patience 1, dropped the rate
    improved = second["best"] < first["best"] and second["lr"] == task.training.lr  # type: ignore[operator]
    dropped = second["best"] == first["best"] and second["lr"] == pytest.approx(task.training.lr / 10)
    assert second["stage"] == 0 and (improved or dropped)
    # a new task starts afresh: its first round is its best so far, at the configured rate
    assert third["stage"] == 1 and third["lr"] == task.training.lr and third["wait"] == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.tasks=null", "strategy.name=fedavg"], "federation.lr_plateau: schedules task streams only"),
        (["data.tasks.val_fraction=0.0"], "federation.lr_plateau: needs a validation set"),
    ],
)
def test_a_schedule_without_a_validation_set_is_a_config_error(overrides: list[str], message: str) -> None:
    raw = apply_overrides(
        read_yaml(REPO / "configs" / "fcl_split_mnist.yaml"),
        [*DIGITS_STREAM, "federation.lr_plateau={patience: 3}", *overrides],
    )
    with pytest.raises(ConfigError) as error:
        validate_config(raw)
    assert any(line.startswith(message) for line in error.value.problems)
