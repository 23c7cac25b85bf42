"""Experiment trackers: TensorBoard, MLflow and Weights & Biases, one callback each.

Every tracker logs the resolved config as hyperparameters under dotted keys
(:func:`hyperparameters`) when training begins and, after every round, each number of
that round's metrics row (:func:`round_scalars`) at step = round. The row is the one
:class:`~fedsparse.callbacks.output.MetricsWriter` wrote to ``metrics.jsonl``
(``result.row``), so trackers come after it in the callback order.

A resumed run continues the tracker's own run: TensorBoard appends to the same log
folder and hides what the interrupted process logged from the first resumed round on;
MLflow and W&B keep their run's id in the tracker's part of the checkpoint and reopen
that run. Rounds that the interrupted process logged after its last checkpoint are
logged again (MLflow then holds two values at those steps: its history cannot be
edited; W&B keeps the first); they are the same but for wall-clock seconds.

The tracker libraries are imported inside the callbacks, never by this module, so
neither the core nor the client side needs them; a tracker whose package is missing is
refused when the config is validated.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedsparse.callbacks.base import Callback, RoundResult

if TYPE_CHECKING:
    from fedsparse.config import ExperimentConfig, OutputConfig
    from fedsparse.server import RoundLoop

TENSORBOARD_DIR = "tensorboard"  # inside the run folder
HPARAM_METRICS = ("accuracy", "loss")  # the scalars TensorBoard's HParams tab shows beside the config
MLFLOW_DEFAULT_EXPERIMENT = "fedsparse"
MLFLOW_BATCH = 100  # MLflow's log_batch takes at most 100 params (and 1000 metrics) per call

Param = str | int | float | bool


def flatten(value: Any, expand: Callable[[list[Any]], bool], sep: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` for every leaf of nested dicts, and of lists where ``expand`` says
    so (their items keyed by index); path parts joined by ``sep``. Empty containers and
    lists not expanded are leaves."""
    if isinstance(value, dict) and value:
        items: Iterator[tuple[Any, Any]] = iter(value.items())
    elif isinstance(value, list) and value and expand(value):
        items = enumerate(value)
    else:
        yield prefix, value
        return
    for key, item in items:
        yield from flatten(item, expand, sep, f"{prefix}{sep}{key}" if prefix else str(key))


def round_scalars(row: dict[str, Any]) -> dict[str, float]:
    """Every number in a metrics row, keyed by its path in the row joined by ``/``
    (``accuracy``, ``accuracy_by_bitwidth/8``, ``task_accuracy/<client>/<index>``);
    booleans as 0/1 (``skipped``); ``None`` and text left out. ``round`` is the step, not
    a scalar. The per-client lists become counts: ``num_clients`` (clients the round
    moved bytes with), ``num_accepted`` (replies aggregated) and ``num_rejected``."""
    clients, rejected = row.get("clients") or [], row.get("rejected") or []
    rest = {key: value for key, value in row.items() if key not in ("round", "clients", "rejected")}
    scalars = {
        key: float(value) for key, value in flatten(rest, lambda _: True, "/") if isinstance(value, (int, float))
    }
    scalars["num_clients"] = len(clients)
    scalars["num_accepted"] = sum(client.get("num_examples") is not None for client in clients)
    scalars["num_rejected"] = len(rejected)
    return scalars


def hyperparameters(cfg: ExperimentConfig) -> dict[str, Param]:
    """The resolved config (what ``config.yaml`` holds) under dotted keys: sections and
    lists of sections are spread out (``federation.profiles.0.bitwidth``); other lists and
    empty sections are JSON text (``model.options.channels``: ``[16, 32]``), null is ``"null"``."""
    resolved = cfg.model_dump(mode="json")
    spread = flatten(resolved, lambda items: any(isinstance(item, dict) for item in items), ".")
    return {key: value if isinstance(value, Param) else json.dumps(value) for key, value in spread}


def _text(value: Param) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    """``items`` in slices that MLflow's ``log_batch`` takes in one call."""
    return (items[first : first + MLFLOW_BATCH] for first in range(0, len(items), MLFLOW_BATCH))


class Tracker(Callback):
    """What every tracker shares: it starts (or reopens) its run with the config when
    training begins and logs the row's scalars after each round. Subclasses implement
    :meth:`start`, :meth:`log` and :meth:`finish`, and release their run in ``close``."""

    def on_train_begin(self, loop: RoundLoop, first_round: int) -> None:
        self.start(loop.writer.run_dir, first_round, hyperparameters(loop.federation.cfg))

    def after_round(self, result: RoundResult) -> None:
        if result.row is None:
            raise RuntimeError(f"{type(self).__name__} logs the metrics row: put it after MetricsWriter")
        self.log(round_scalars(result.row), result.server_round)

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.finish()

    def start(self, run_dir: Path, first_round: int, params: dict[str, Param]) -> None:
        """Open (or, with ``first_round`` > 1, reopen) the run of ``run_dir``, named by
        that path as given, with the config ``params``."""
        raise NotImplementedError

    def log(self, scalars: dict[str, float], step: int) -> None:
        """Log one round's scalars at ``step``."""
        raise NotImplementedError

    def finish(self) -> None:
        """The run completed: mark it so and release it."""
        raise NotImplementedError


class TensorBoardTracker(Tracker):
    """Event files in ``<run folder>/tensorboard``: one scalar series per metric, the
    config in the HParams tab. A new run starts the folder afresh; a resumed one appends
    with ``purge_step``, so TensorBoard drops what the interrupted process logged from
    the first resumed round on."""

    def __init__(self, output: OutputConfig) -> None:
        self.writer: Any = None
        self.session_end: Any = None

    def start(self, run_dir: Path, first_round: int, params: dict[str, Param]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        log_dir = run_dir / TENSORBOARD_DIR
        if first_round == 1:
            shutil.rmtree(log_dir, ignore_errors=True)
        self.writer = SummaryWriter(str(log_dir), purge_step=None if first_round == 1 else first_round)
        experiment, session_start, self.session_end = hparams(params, dict.fromkeys(HPARAM_METRICS))
        if first_round == 1:
            self.writer.file_writer.add_summary(experiment)
            self.writer.file_writer.add_summary(session_start)

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():  # float32, all TensorBoard's scalar dashboard reads
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self) -> None:
        self.writer.file_writer.add_summary(self.session_end)
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MlflowTracker(Tracker):
    """A run in an MLflow experiment, named after the run folder: the config as params,
    each scalar as a metric at step = round. Its checkpoint part is the tracking URI
    and run id; a resumed run reopens that run there."""

    key = "mlflow"

    def __init__(self, output: OutputConfig) -> None:
        self.tracking_uri = output.mlflow_tracking_uri
        self.experiment = output.mlflow_experiment
        self.run_id: str | None = None
        self.client: Any = None

    def start(self, run_dir: Path, first_round: int, params: dict[str, Param]) -> None:
        from mlflow.entities import Param as MlflowParam
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.tracking_uri)
        self.tracking_uri = self.client.tracking_uri  # resolved: a resumed run finds its run where it is
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or MLFLOW_DEFAULT_EXPERIMENT
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=str(run_dir)).info.run_id
        for batch in _batches([MlflowParam(key, _text(value)) for key, value in params.items()]):
            self.client.log_batch(self.run_id, params=batch)

    def log(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for batch in _batches([Metric(key, value, now, step) for key, value in scalars.items()]):
            self.client.log_batch(self.run_id, metrics=batch)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")
        self.client = None

    def close(self) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED")
        self.client = None

    def checkpoint_values(self) -> Any:
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id}

    def restore_values(self, values: Any) -> None:
        self.tracking_uri, self.run_id = values["tracking_uri"], values["run_id"]


class WandbTracker(Tracker):
    """A W&B run named after the run folder: the config as its config, each scalar in
    its history at step = round. Its checkpoint part is the run's id and project; a
    resumed run reopens that run (``resume="allow"``), skipping rounds W&B already has."""

    key = "wandb"

    def __init__(self, output: OutputConfig) -> None:
        self.project = output.wandb_project
        self.mode = output.wandb_mode
        self.run_id: str | None = None
        self.run: Any = None

    def start(self, run_dir: Path, first_round: int, params: dict[str, Param]) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project,
            mode=self.mode,
            name=str(run_dir),
            config=params,
            id=self.run_id,
            resume="allow" if self.run_id is not None else None,
        )
        self.run_id, self.project = self.run.id, self.run.project

    def log(self, scalars: dict[str, float], step: int) -> None:
        if step >= self.run.starting_step:  # a resumed online run starts after the last step W&B holds
            self.run.log(scalars, step=step)

    def finish(self) -> None:
        self.run.finish()
        self.run = None

    def close(self) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1)
        self.run = None

    def checkpoint_values(self) -> Any:
        return {"id": self.run_id, "project": self.project}

    def restore_values(self, values: Any) -> None:
        self.run_id, self.project = values["id"], values["project"]


TRACKERS: dict[str, Callable[[OutputConfig], Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": MlflowTracker,
    "wandb": WandbTracker,
}


def tracker_callbacks(output: OutputConfig) -> list[Tracker]:
    """The trackers ``output.trackers`` asks for, in its order."""
    return [TRACKERS[name](output) for name in output.trackers]
