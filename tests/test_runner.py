"""Nothing lost: a run interrupted mid-way and resumed from its checkpoint ends exactly
where the uninterrupted run ends, for every kind of server (and client) state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedsparse.app import make_server_app
from fedsparse.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
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


# --------------------------------------------------------------------------- interrupts, write errors, extending

LONG_RUN = [
    "--set",
    "federation.rounds=8",
    "--set",
    "federation.clients_per_round=10",
    "--set",
    "federation.local_epochs=3",
    "--set",
    "output.plots=false",
]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_fedsparse(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 8-round run, uninterrupted, through the CLI."""
    out = tmp_path_factory.mktemp("whole") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = _cli("run", "configs/quickstart.yaml", "--out", str(out), *LONG_RUN, "--no-progress", env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return out


def _interrupted_at_round(run_dir: Path, signum: int, env: dict[str, str]) -> tuple[int, str]:
    """Start the 8-round run into ``run_dir``, send ``signum`` once its second round is
    checkpointed (mid-way through the third); its exit status and stderr."""
    command = _fedsparse("run", "configs/quickstart.yaml", "--out", str(run_dir), *LONG_RUN)
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if load_checkpoint(checkpoint_path(run_dir)).round >= 2:
                    break
            except CheckpointError:
                pass
            time.sleep(0.01)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_cli_run_says_how_to_resume_and_resumes_exactly(
    tmp_path: Path, whole_run: Path, signum: int
) -> None:
    """Ctrl-C (or SIGTERM) mid-round: one line naming the last completed round and the
    resume command, exit 130, the line in run.log, metrics and checkpoint at that round;
    the command it names finishes the run as if it had never stopped."""
    run_dir = tmp_path / "stopped"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    status, stderr = _interrupted_at_round(run_dir, signum, env)
    done = load_checkpoint(checkpoint_path(run_dir)).round
    assert 2 <= done < 8, "the run was not interrupted mid-way"
    command = f"fedsparse run --resume {run_dir}"
    assert status == 130
    assert stderr.splitlines() == [f"interrupted after round {done} of 8; continue with: {command}"]
    assert stderr.splitlines()[0] in (run_dir / "run.log").read_text().splitlines()[-1]
    assert [row["round"] for row in read_metrics(run_dir)] == list(range(1, done + 1))
    assert not (run_dir / "summary.json").exists()

    resumed = _cli(*command.split()[1:], "--no-progress", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert comparable(run_dir) == comparable(whole_run)


def test_extending_a_finished_run_equals_running_the_longer_run(tmp_path: Path, whole_run: Path) -> None:
    """``--resume RUN --set federation.rounds=8`` on a finished 3-round run: the 8-round
    run, row for row; other changes, or fewer rounds, are refused with one line."""
    run_dir = tmp_path / "short"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    short = [*LONG_RUN, "--set", "federation.rounds=3", "--no-progress"]
    assert _cli("run", "configs/quickstart.yaml", "--out", str(run_dir), *short, env=env).returncode == 0

    refused = _cli("run", "--resume", str(run_dir), "--set", "federation.rounds=8", "--set", "federation.lr=0.1")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: --resume --set may change only federation.rounds and output.* (not federation.lr)"
    ]
    fewer = _cli("run", "--resume", str(run_dir), "--set", "federation.rounds=3")
    assert fewer.returncode == 2 and "has completed 3 rounds" in fewer.stderr and len(fewer.stderr.splitlines()) == 1

    extended = _cli("run", "--resume", str(run_dir), "--set", "federation.rounds=8", "--no-progress", env=env)
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert comparable(run_dir) == comparable(whole_run)
    assert "rounds: 8" in (run_dir / "config.yaml").read_text()


def _blocking_checkpoints_from_round(run_dir: Path, blocked_round: int) -> ClientApp:
    """fedsparse's client, which in ``blocked_round`` puts a folder where the server
    writes its next checkpoint: that write fails as a full disk's would, for root too."""
    app = ClientApp()
    app.query()(honest.identify)

    @app.train()
    def train(message: Message, context: Context) -> Message:
        if int(message.content["config"]["server-round"]) == blocked_round:
            (run_dir / "checkpoint.safetensors.partial").mkdir(exist_ok=True)
        return honest.train(message, context)

    return app


def test_a_failed_checkpoint_write_is_one_line_and_the_metrics_stay_with_the_checkpoint(tmp_path: Path) -> None:
    cfg = config_of("quickstart.yaml", "federation.rounds=4")
    broken, whole = tmp_path / "broken", tmp_path / "whole"
    with pytest.raises(RunFailed) as failed:
        run_experiment(cfg, broken, client_app=_blocking_checkpoints_from_round(broken, 3))
    blocker = broken / "checkpoint.safetensors.partial"
    assert str(failed.value) == f"{blocker}: cannot write (Is a directory)"
    assert load_checkpoint(checkpoint_path(broken)).round == 2
    assert [row["round"] for row in read_metrics(broken)] == [1, 2]
    assert not (broken / "summary.json").exists()
    assert f"run failed: {failed.value}" in (broken / "run.log").read_text().splitlines()[-1]

    blocker.rmdir()
    run_experiment(cfg, broken, resume=True)
    run_experiment(cfg, whole)
    assert comparable(broken) == comparable(whole)


def test_a_lost_metrics_line_comes_back_from_the_checkpoint(tmp_path: Path) -> None:
    """Killed between a round's checkpoint and its metrics line: the resumed run has the line."""
    cfg = config_of("quickstart.yaml", "federation.rounds=3")
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    with pytest.raises(ServerCrash):
        run_engine(cfg, make_server_app(cfg, cut), crashing_app, client_state_root(cfg, cut))
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    (cut / "metrics.jsonl").write_text(lines[0] + "\n")  # round 2's line never reached the disk
    run_experiment(cfg, cut, resume=True)
    run_experiment(cfg, whole)
    assert comparable(cut) == comparable(whole)


@pytest.mark.parametrize("where", ["under a file", "in /sys"])
def test_an_unwritable_output_folder_is_one_line_and_nothing_is_written(tmp_path: Path, where: str) -> None:
    """Root may write anywhere chmod forbids, but not under a regular file, nor into sysfs."""
    if where == "in /sys":
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here")
        out = Path("/sys/fedsparse-test-output/run")
    else:
        (tmp_path / "a-file").write_text("")
        out = tmp_path / "a-file" / "run"
    result = _cli("run", "configs/quickstart.yaml", "--out", str(out), "--set", "federation.rounds=1", "--no-progress")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {out.parent}") and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.parent.exists() or out.parent.is_file()
