"""Experiment trackers: what TensorBoard, MLflow and W&B hold after a run, read back with
each library's own reader, is the config and exactly the numbers of ``metrics.jsonl``;
a resumed run continues the same tracker run; a tracker whose package is missing is a
config error naming the extra."""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedsparse import protocol
from fedsparse.app import make_server_app
from fedsparse.callbacks import MetricsWriter, Tracker
from fedsparse.callbacks.trackers import TENSORBOARD_DIR, TRACKERS, hyperparameters, round_scalars
from fedsparse.cli import EXIT_BAD_CONFIG, main
from fedsparse.clients import app as honest
from fedsparse.config import ConfigError, TrackerName, apply_overrides, read_yaml, validate_config
from fedsparse.engine import run_engine
from fedsparse.results import RunWriter, read_metrics
from fedsparse.server import default_callbacks

from ..conftest import REPO

ROUNDS = 3
CRASH_ROUND = 2
INSTALLED = [name for name in TRACKERS if importlib.util.find_spec(name) is not None]


class ServerCrash(BaseException):
    """Ends the run like a kill would (no engine turns it into a client error)."""


crashing_app = ClientApp()
crashing_app.query()(honest.identify)


@crashing_app.train()
def crash_at_round(message: Message, context: Context) -> Message:
    if int(message.content[protocol.CONFIG][protocol.SERVER_ROUND]) == CRASH_ROUND:
        raise ServerCrash
    return honest.train(message, context)


def tracked_config(store: Path):  # type: ignore[no-untyped-def]
    raw = read_yaml(REPO / "configs" / "quickstart.yaml")
    settings = [
        f"federation.rounds={ROUNDS}",
        "output.progress=false",
        "output.plots=false",
        f"output.trackers=[{', '.join(INSTALLED)}]",
        f"output.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
    ]
    return validate_config(apply_overrides(raw, settings))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One MLflow store (creating one costs seconds) and one offline W&B folder (W&B
    reads its environment once per process), for the module."""
    folder = tmp_path_factory.mktemp("trackers")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_DIR", str(folder))
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_SILENT", "true")
        env.setenv("WANDB_CONSOLE", "off")
        yield folder


@pytest.fixture(scope="module")
def whole(store: Path) -> Path:
    """A run of every installed tracker, start to end."""
    run_dir, cfg = store / "whole", tracked_config(store)
    run_engine(cfg, make_server_app(cfg, run_dir))
    return run_dir


@pytest.fixture(scope="module")
def resumed(store: Path) -> Path:
    """A run of every installed tracker, crashed in round 2 and resumed to the end."""
    run_dir, cfg = store / "resumed", tracked_config(store)
    with pytest.raises(ServerCrash):
        run_engine(cfg, make_server_app(cfg, run_dir), crashing_app)
    assert len(read_metrics(run_dir)) == CRASH_ROUND - 1
    run_engine(cfg, make_server_app(cfg, run_dir, resume=True))
    return run_dir


def expected(run_dir: Path) -> dict[int, dict[str, float]]:
    """What every tracker must hold: each metrics.jsonl row's scalars, by round."""
    return {row["round"]: round_scalars(row) for row in read_metrics(run_dir)}


# --------------------------------------------------------------------------- readers


def tensorboard_scalars(run_dir: Path) -> tuple[dict[int, dict[str, float]], dict[str, Any]]:
    """(scalars by step, hyperparameters), as TensorBoard's own loader sees the log folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    events = EventAccumulator(str(run_dir / TENSORBOARD_DIR))
    events.Reload()
    by_step: dict[int, dict[str, float]] = {}
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            by_step.setdefault(event.step, {})[tag] = event.value
    start = HParamsPluginData.FromString(events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    return by_step, {key: getattr(value, value.WhichOneof("kind")) for key, value in hparams.items()}


def mlflow_run(store: Path, run_dir: Path) -> tuple[Any, dict[int, dict[str, float]]]:
    """(the run, its metrics by step: the latest value logged at each step)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fedsparse")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_dir}'")
    assert len(runs) == 1, f"one MLflow run per fedsparse run, found {len(runs)}"
    by_step: dict[int, dict[str, float]] = {}
    for key in runs[0].data.metrics:
        for metric in sorted(client.get_metric_history(runs[0].info.run_id, key), key=lambda m: m.timestamp):
            by_step.setdefault(metric.step, {})[key] = metric.value
    return runs[0], by_step


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` file (a LevelDB-style log of W&B's own protobuf
    ``Record``s; wandb ships no Python reader for it)."""
    from wandb.proto import wandb_internal_pb2

    data, block, position, pending = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            yield wandb_internal_pb2.Record.FromString(pending)
            pending = b""


def wandb_runs(store: Path, run_dir: Path) -> list[tuple[Any, dict[int, dict[str, float]]]]:
    """Each offline W&B run of the fedsparse run ``run_dir``, oldest first: (its run
    record, its history by step)."""
    found = []
    for path in sorted(store.glob("wandb/offline-run-*/run-*.wandb")):
        records = list(wandb_records(path))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        if run.display_name != str(run_dir):
            continue
        history: dict[int, dict[str, float]] = {}
        for record in (r for r in records if r.WhichOneof("record_type") == "history"):
            items = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history[items["_step"]] = {k: v for k, v in items.items() if not k.startswith("_")}
        found.append((run, history))
    return found


# --------------------------------------------------------------------------- tests


def test_the_row_flattens_to_numbers_and_counts() -> None:
    row = {
        "round": 4,
        "skipped": True,
        "bytes_up": 10,
        "accuracy_by_bitwidth": {"8": 0.5, "32": 0.75},
        "task_accuracy": {"0": [0.9, 0.8], "3": [0.7]},
        "forgetting": None,
        "note": "text",
        "clients": [{"id": 0, "num_examples": 5}, {"id": 1, "num_examples": None}],
        "rejected": [{"id": 1, "reason": "late"}],
    }
    assert round_scalars(row) == {
        "skipped": 1.0,
        "bytes_up": 10.0,
        "accuracy_by_bitwidth/8": 0.5,
        "accuracy_by_bitwidth/32": 0.75,
        "task_accuracy/0/0": 0.9,
        "task_accuracy/0/1": 0.8,
        "task_accuracy/3/0": 0.7,
        "num_clients": 2,
        "num_accepted": 1,
        "num_rejected": 1,
    }


def test_the_config_flattens_to_dotted_hyperparameters(quickstart_cfg) -> None:  # type: ignore[no-untyped-def]
    params = hyperparameters(quickstart_cfg)
    assert params["federation.rounds"] == quickstart_cfg.federation.rounds
    assert params["federation.profiles.0.bitwidth"] == 32
    assert params["strategy.fedprox.mu"] == 0.01
    assert params["data.path"] == "null"
    assert params["output.trackers"] == "[]"


def test_every_tracker_name_has_a_callback_placed_after_the_metrics_writer(quickstart_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert set(TRACKERS) == set(get_args(TrackerName))
    quickstart_cfg.output.trackers = list(TRACKERS)
    callbacks = default_callbacks(quickstart_cfg, RunWriter(tmp_path, ""))
    kinds = [type(callback) for callback in callbacks]
    trackers = [i for i, callback in enumerate(callbacks) if isinstance(callback, Tracker)]
    assert [kinds[i] for i in trackers] == list(TRACKERS.values())
    assert min(trackers) == kinds.index(MetricsWriter) + 1


def test_tensorboard_holds_every_rows_numbers_and_the_config(whole: Path) -> None:
    pytest.importorskip("tensorboard")
    by_step, params = tensorboard_scalars(whole)
    rows = expected(whole)
    assert sorted(by_step) == list(range(1, ROUNDS + 1))
    for step, scalars in rows.items():
        assert by_step[step] == pytest.approx(scalars, rel=1e-6)  # TensorBoard keeps float32
        for key in ("bytes_up", "bytes_down"):
            assert by_step[step][key] == scalars[key]
    assert params["federation.rounds"] == ROUNDS
    assert params["output.trackers"] == json.dumps(INSTALLED)


def test_mlflow_holds_every_rows_numbers_and_the_config(store: Path, whole: Path) -> None:
    pytest.importorskip("mlflow")
    run, by_step = mlflow_run(store, whole)
    assert by_step == expected(whole)
    assert run.data.params["federation.rounds"] == str(ROUNDS)
    assert run.data.params["strategy.name"] == "fedavg"
    assert run.info.status == "FINISHED"


def test_wandb_offline_holds_every_rows_numbers_and_the_config(store: Path, whole: Path) -> None:
    pytest.importorskip("wandb")
    [(run, history)] = wandb_runs(store, whole)
    assert history == expected(whole)
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["federation.rounds"] == ROUNDS


def test_a_resumed_run_continues_each_trackers_run(store: Path, resumed: Path) -> None:
    rows = expected(resumed)
    assert sorted(rows) == list(range(1, ROUNDS + 1))
    if "tensorboard" in INSTALLED:
        by_step, _ = tensorboard_scalars(resumed)
        assert {step: scalars["accuracy"] for step, scalars in by_step.items()} == pytest.approx(
            {step: scalars["accuracy"] for step, scalars in rows.items()}, rel=1e-6
        )
    if "mlflow" in INSTALLED:
        run, by_step = mlflow_run(store, resumed)  # one run, not one per process
        assert by_step == rows
        assert run.info.status == "FINISHED"
    if "wandb" in INSTALLED:
        (first, before), (second, after) = wandb_runs(store, resumed)
        assert first.run_id == second.run_id  # synced, both files land in one W&B run
        assert {**before, **after} == rows
        assert sorted(after) == list(range(CRASH_ROUND, ROUNDS + 1))


def missing(name: str):  # type: ignore[no-untyped-def]
    """``importlib.util.find_spec`` as if ``name`` were not installed."""
    real = importlib.util.find_spec

    def find_spec(module: str, package: str | None = None):  # type: ignore[no-untyped-def]
        return None if module == name else real(module, package)

    return find_spec


def test_a_tracker_not_installed_is_a_config_error_naming_its_extra(
    quickstart_raw: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", missing("mlflow"))
    message = "output.trackers: 'mlflow' needs the mlflow package; pip install 'fedsparse[mlflow]'"
    with pytest.raises(ConfigError) as error:
        validate_config(apply_overrides(quickstart_raw, ["output.trackers=[mlflow]"]))
    assert error.value.problems == [message]
    code = main(["validate", str(REPO / "configs" / "quickstart.yaml"), "--set", "output.trackers=[mlflow]"])
    assert code == EXIT_BAD_CONFIG
    assert capsys.readouterr().err.strip() == f"error: {message}"


@pytest.mark.parametrize(
    ("trackers", "problem"),
    [
        ("[mlflow, tensorboard, mlflow]", "output.trackers: listed more than once: mlflow"),
        ("[neptune]", "output.trackers.0: must be one of"),
    ],
)
def test_a_tracker_listed_twice_or_unknown_is_refused(quickstart_raw: dict, trackers: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate_config(apply_overrides(quickstart_raw, [f"output.trackers={trackers}"]))
    assert error.value.problems[0].startswith(problem)
