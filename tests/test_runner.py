"""Nothing lost: a run interrupted mid-way and resumed from its checkpoint ends exactly
where the uninterrupted run ends, for every kind of server (and client) state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedsparse.app import make_server_app
from fedsparse.checkpoint import checkpoint_path, load_checkpoint
from fedsparse.clients import app as honest
from fedsparse.engine import run_engine
from fedsparse.results import read_metrics, read_summary
from fedsparse.runner import RunFailed, client_state_root, run_experiment

from .conftest import REPO
from .helpers import DIGITS_STREAM, config_of, run_killed_after, without_timings

CRASH_ROUND = 3


class ServerCrash(BaseException):
    """Not an ``Exception``: no engine turns it into a client error; it ends the run, like
    a kill or Ctrl-C would."""


crashing_app = ClientApp()
crashing_app.query()(honest.identify)


@crashing_app.train()
def crash_at_round(message: Message, context: Context) -> Message:
    if int(message.content["config"]["server-round"]) == CRASH_ROUND:
        raise ServerCrash
    return honest.train(message, context)


def comparable(run_dir: Path) -> tuple[list[dict], dict]:  # type: ignore[type-arg]
    rows = [without_timings(row) for row in read_metrics(run_dir)]
    summary = without_timings(read_summary(run_dir))
    return rows, summary


MIXED_BITS = (
    "federation.profiles=[{share: 0.5, bitwidth: 32}, {share: 0.3, bitwidth: 8}, {share: 0.2, bitwidth: 4}]",
    "data.server_samples=100",
)
SPEEDS = (
    "federation.profiles=[{share: 0.5, speed: 1.0, bandwidth_mbps: 50}, {share: 0.5, speed: 0.1, bandwidth_mbps: 2}]",
)
CASES = {
    "prowd": ("quickstart.yaml", "strategy.name=prowd", *MIXED_BITS),
    "grouped_avg": ("quickstart.yaml", "strategy.name=grouped_avg", *MIXED_BITS),
    "grouped_avg_asym": ("quickstart.yaml", "strategy.name=grouped_avg_asym", *MIXED_BITS),
    "adaptcl": ("quickstart.yaml", "strategy.name=adaptcl", *SPEEDS),
    "fedweit": ("fcl_split_mnist.yaml", "strategy.name=fedweit", *DIGITS_STREAM),
    "local": ("fcl_split_mnist.yaml", "strategy.name=local", *DIGITS_STREAM),
    # heads and EWC's consolidated Fisher live in the node state across the task boundary
    "fedprox_ewc": ("fcl_split_mnist.yaml", "strategy.name=fedprox", "strategy.fedprox.ewc_lambda=50", *DIGITS_STREAM),
    "fedavg_momentum": ("quickstart.yaml", "strategy.name=fedavg_momentum"),
    # Flower's own FedAdam: its moments are server state
    "fedadam": ("quickstart.yaml", "strategy.name=fedadam"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crashed_run_resumes_to_the_uninterrupted_result(tmp_path: Path, case: str) -> None:
    config, *overrides = CASES[case]
    cfg = config_of(config, "federation.rounds=4", *overrides)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run_experiment(cfg, whole)

    with pytest.raises(ServerCrash):
        run_engine(cfg, make_server_app(cfg, broken), crashing_app, client_state_root(cfg, broken))
    assert load_checkpoint(checkpoint_path(broken)).round == CRASH_ROUND - 1
    assert len(read_metrics(broken)) == CRASH_ROUND - 1

    run_experiment(cfg, broken, resume=True)
    assert comparable(broken) == comparable(whole)


def test_a_task_stream_run_without_saved_client_state_is_refused(tmp_path: Path) -> None:
    cfg = config_of("fcl_split_mnist.yaml", "strategy.name=fedweit", *DIGITS_STREAM)
    with pytest.raises(ServerCrash):
        run_engine(cfg, make_server_app(cfg, tmp_path), crashing_app)  # no client state kept
    with pytest.raises(RunFailed, match="client-state"):
        run_experiment(cfg, tmp_path, resume=True)


def _fedsparse(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedsparse.cli", *args]


def test_a_killed_cli_run_resumes_with_fedsparse_run_resume(tmp_path: Path) -> None:
    """The user's path: SIGKILL the process mid-run, then ``fedsparse run --resume``."""
    settings = [
        "--set",
        "federation.rounds=8",
        "--set",
        "federation.clients_per_round=10",
        "--set",
        "federation.local_epochs=4",
        "--set",
        "output.plots=false",
        "--no-progress",
    ]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_killed_after(_fedsparse("run", "configs/quickstart.yaml", "--out", str(killed), *settings), killed, env)
    interrupted_at = load_checkpoint(checkpoint_path(killed)).round
    assert 2 <= interrupted_at < 8, "the run was not interrupted mid-way"
    assert not (killed / "summary.json").exists()

    resumed = subprocess.run(
        _fedsparse("run", "--resume", str(killed), "--no-progress"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = subprocess.run(
        _fedsparse("run", "configs/quickstart.yaml", "--out", str(whole), *settings),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert comparable(killed) == comparable(whole)
    assert [row["round"] for row in read_metrics(killed)] == list(range(1, 9))

    again = subprocess.run(_fedsparse("run", "--resume", str(killed)), cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "has finished" in again.stderr and "Traceback" not in again.stderr
    json.loads((killed / "summary.json").read_text())
