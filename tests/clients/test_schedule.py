"""Reduce-on-plateau on task streams: the rule itself, and its state across rounds and tasks."""

from __future__ import annotations

import math

import pytest
import torch
from flwr.app import Message, MessageType, RecordDict

from fedsparse import protocol
from fedsparse.clients.app import app
from fedsparse.clients.schedule import SCHEDULE_STATE, PlateauSchedule
from fedsparse.config import ConfigError, apply_overrides, read_yaml, validate_config
from fedsparse.sections import PlateauConfig
from fedsparse.task import ClientTask

from ..conftest import REPO
from ..helpers import DIGITS_STREAM, context_for


def test_the_rate_drops_after_patience_epochs_without_a_new_best() -> None:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    schedule = PlateauSchedule(PlateauConfig(patience=2, factor=3.0), stage=0, lr=0.3, best=math.inf, wait=2)
    for loss in (1.0, 0.9, 0.95, 0.92):  # two bests, then two epochs without one: a drop
        schedule.step(loss, optimizer)
    assert schedule.lr == pytest.approx(0.1) and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert schedule.best == 0.9 and schedule.wait == 2
    schedule.step(0.91, optimizer)
    assert schedule.lr == pytest.approx(0.1) and schedule.wait == 1
    schedule.step(0.5, optimizer)  # a new best resets the count
    assert schedule.best == 0.5 and schedule.wait == 2


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
    # Adam at lr 1.0 overshoots on digits: the validation loss stalls and the rate drops
    task = stream_task(
        "federation.optimizer=adam",
        "federation.lr=1.0",
        "federation.local_epochs=6",
        "federation.lr_plateau={patience: 1, factor: 10.0}",
    )
    context = context_for(0, 3)
    local_round(task, 1, context)
    first = dict(context.state.config_records[SCHEDULE_STATE])
    assert first["stage"] == 0 and first["lr"] < 1.0 and math.isfinite(first["best"])  # type: ignore[arg-type]
    local_round(task, 2, context)  # the same task: continues from round 1's rate and best
    second = dict(context.state.config_records[SCHEDULE_STATE])
    assert second["lr"] <= first["lr"] and second["best"] <= first["best"]  # type: ignore[operator]
    local_round(task, 3, context)  # a new task starts again at lr 1.0
    third = dict(context.state.config_records[SCHEDULE_STATE])
    assert third["stage"] == 1 and third["lr"] > second["lr"]  # type: ignore[operator]


def test_a_slowly_improving_task_keeps_its_rate(server_identity) -> None:  # type: ignore[no-untyped-def]
    task = stream_task("federation.local_epochs=3", "federation.lr_plateau={patience: 3, factor: 3.0}")
    context = context_for(1, 3)
    local_round(task, 1, context)
    record = dict(context.state.config_records[SCHEDULE_STATE])
    assert record["lr"] == task.training.lr and record["wait"] == 3


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
