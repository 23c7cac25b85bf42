"""Builders for hand-made Flower messages in unit tests, and a one-call simulation."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict

from fedsparse import protocol
from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
from fedsparse.config import apply_overrides, read_yaml, validate_config
from fedsparse.results import read_metrics, read_summary
from fedsparse.runner import run_experiment
from fedsparse.task import ClientTask

from .conftest import REPO

# the start-up steps the quickstart announces before round 1, in order
QUICKSTART_STEPS = (
    "loading data (digits)",
    "partitioning it among 10 clients",
    "starting the inline engine",
    "building the model (cnn)",
    "finding the 10 clients",
    "preparing round 1 (fedavg)",
)

# task streams on the bundled digits, small enough for a test: 3 clients, 2 tasks of 2 rounds
DIGITS_STREAM = (
    "data.dataset=digits",
    "data.path=null",
    "model.options={channels: [8, 16], hidden: 32}",
    "federation.num_clients=3",
    "federation.clients_per_round=3",
    "data.tasks.num_tasks=2",
    "data.tasks.rounds_per_task=2",
    "federation.rounds=4",
    "data.tasks.max_train_per_task=null",
    "data.tasks.max_test_per_task=null",
    "federation.lr=0.005",
    "federation.local_epochs=1",
    "federation.batch_size=32",
)


def config_of(name: str, *overrides: str):  # type: ignore[no-untyped-def]
    """``configs/<name>`` with ``overrides``, validated, without progress display or plots."""
    raw = read_yaml(REPO / "configs" / name)
    return validate_config(apply_overrides(raw, ["output.progress=false", "output.plots=false", *overrides]))


TIMINGS = ("round_seconds", "wall_seconds")  # wall-clock fields: they differ between any two runs
CLIENT_PLACEMENT = ("started", "finished", "node")  # where and when a client ran: differ likewise


def without_timings(record: dict) -> dict:  # type: ignore[type-arg]
    """A metrics row or summary without its wall-clock fields (its clients' included), to
    compare two runs."""
    kept = {key: value for key, value in record.items() if key not in TIMINGS}
    if "clients" in kept:
        kept["clients"] = [{k: v for k, v in c.items() if k not in CLIENT_PLACEMENT} for c in kept["clients"]]
    return kept


def simulate(config: str, out: Path, *overrides: str, client_app=None) -> tuple[list[dict], dict]:  # type: ignore[no-untyped-def,type-arg]
    """Run ``configs/<config>`` with ``--set``-style overrides; return (metrics rows, summary)."""
    raw = apply_overrides(read_yaml(REPO / "configs" / config), ["output.progress=false", *overrides])
    cfg = validate_config(raw)
    run_experiment(cfg, out, client_app=client_app)
    return read_metrics(out), read_summary(out)


def context_for(client_id: int, num_clients: int) -> Context:
    return Context(
        run_id=1,
        node_id=1000 + client_id,
        node_config={"partition-id": client_id, "num-partitions": num_clients},
        state=RecordDict(),
        run_config={},
    )


def train_message(task: ClientTask, arrays: ArrayRecord, node_id: int, **config: object) -> Message:
    record = task.to_config()
    record[protocol.SERVER_ROUND] = 1
    for key, value in config.items():
        record[key] = value  # type: ignore[assignment]
    content = RecordDict({protocol.ARRAYS: arrays, protocol.CONFIG: record})
    return Message(content, dst_node_id=node_id, message_type=MessageType.TRAIN)


def reply_from(sent: Message, arrays: ArrayRecord | None, metrics: dict) -> Message:
    """A reply as the engine would deliver it: from the node ``sent`` went to."""
    return Message(protocol.reply(arrays, metrics), reply_to=sent)


def config_record(**values: object) -> ConfigRecord:
    return ConfigRecord(values)  # type: ignore[arg-type]


def run_killed_after(command: list[str], run_dir: Path, env: dict[str, str], rounds: int = 2) -> None:
    """Run ``command`` (a ``fedsparse run`` writing ``run_dir``) and SIGKILL it once its
    checkpoint has reached ``rounds`` rounds (or after 300 s, or when it ends)."""
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if load_checkpoint(checkpoint_path(run_dir)).round >= rounds:
                    break
            except CheckpointError:
                pass
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)


def sweep_module() -> ModuleType:
    """``simulations/sweep.py`` (a script folder, not a package) as a module."""
    spec = importlib.util.spec_from_file_location("sweep", REPO / "simulations" / "sweep.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
