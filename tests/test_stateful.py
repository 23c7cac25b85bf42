"""Stateful learners after a crash: SCAFFOLD's control variates, FedDyn's gradient terms
and Ditto's personal models live in the clients' node state; a run SIGKILLed mid-way and
continued with ``fedsparse run --resume`` ends exactly where the uninterrupted run ends,
on the inline engine and on Ray (whose result is the inline engine's), and, for SCAFFOLD,
on Flower's own Ray engine (``flower-ray``), where no driver holds the nodes' Contexts:
each node's ClientApp restores and saves its state in the ``state-dir`` the engine gives
it, in whichever actor serves it. Half the clients train each round, so some clients miss
rounds and resume with an older state."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fedsparse.checkpoint import checkpoint_path, load_checkpoint
from fedsparse.results import CLIENT_STATE_DIR, read_metrics, read_summary
from fedsparse.runner import run_experiment

from .conftest import REPO
from .helpers import config_of, run_killed_after, without_timings

ROUNDS = 6
SETTINGS = (
    f"federation.rounds={ROUNDS}",
    "federation.num_clients=6",
    "federation.clients_per_round=3",
    "federation.local_epochs=1",
    "federation.momentum=0",
    "model.options={channels: [4, 8], hidden: 16}",
    "output.plots=false",
)
STRATEGIES = ("scaffold", "feddyn", "ditto")
# every strategy on both of fedsparse's engines; Flower's engine (~1 min a case) with one
CASES = [(strategy, engine) for strategy in STRATEGIES for engine in ("inline", "ray")] + [("scaffold", "flower-ray")]


def comparable(run_dir: Path) -> tuple[list[dict], dict]:  # type: ignore[type-arg]
    return [without_timings(r) for r in read_metrics(run_dir)], without_timings(read_summary(run_dir))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A strategy's uninterrupted run, inline, in this process: made the first time a
    test asks for it (a selected case pays only for its own strategy)."""
    runs: dict[str, Path] = {}

    def run(strategy: str) -> Path:
        if strategy not in runs:
            runs[strategy] = tmp_path_factory.mktemp(strategy)
            run_experiment(config_of("quickstart.yaml", f"strategy.name={strategy}", *SETTINGS), runs[strategy])
        return runs[strategy]

    return run


@pytest.mark.parametrize(("strategy", "engine"), CASES)
def test_a_killed_stateful_run_resumes_to_the_uninterrupted_result(
    uninterrupted: Callable[[str], Path], tmp_path: Path, strategy: str, engine: str
) -> None:
    killed = tmp_path / "killed"
    settings = [
        arg for s in (*SETTINGS, f"strategy.name={strategy}", f"engine.backend={engine}") for arg in ("--set", s)
    ]
    command = [sys.executable, "-m", "fedsparse.cli", "run", "configs/quickstart.yaml", "--out", str(killed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_killed_after([*command, *settings, "--no-progress"], killed, env)
    assert 2 <= load_checkpoint(checkpoint_path(killed)).round < ROUNDS, "the run was not interrupted mid-way"
    assert any((killed / CLIENT_STATE_DIR).rglob("round-*.safetensors")), "no client state was saved"

    resumed = subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", "run", "--resume", str(killed), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert comparable(killed) == comparable(uninterrupted(strategy))
    summary = read_summary(killed)
    assert summary["stateful_clients"] == 6 and summary["client_state_bytes_per_client"] > 0
