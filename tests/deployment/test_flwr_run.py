"""`flwr run .` in a fresh checkout: Flower's local simulation runs the project's app.

No SuperLink of one's own: the flwr CLI starts Flower's local SuperLink in simulation
mode with its default federation of 2 simulated SuperNodes, and configs/deployment.yaml
(3 clients) takes its client count from them (fedsparse.deployment.fitted_to_simulation).
The SuperLink is started with runtime dependency installation off, so the run uses the
installed environment. Every process the CLI left running is stopped at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fedsparse.results import read_metrics, read_summary
from fedsparse.runlog import RUN_LOG

from ..conftest import REPO
from .apps import MIN_ACCURACY, RUN_SECONDS
from .processes import LocalSimulation

pytestmark = pytest.mark.deployment

ROUNDS = 2  # configs/deployment.yaml
SUPERNODES = 2  # Flower's default simulation federation


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalSimulation]:
    simulation = LocalSimulation(tmp_path)
    try:
        yield simulation
    finally:
        assert simulation.close() == [], "processes survived SIGKILL"
        assert simulation.superlinks() == []


def test_flwr_run_dot_runs_the_local_simulation_to_the_last_round(local: LocalSimulation) -> None:
    submitted = local.flwr(REPO, "run", ".", "--format", "json")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    payload = json.loads(submitted.stdout[submitted.stdout.index("{") :])  # after the CLI's own lines
    assert payload["success"], payload
    run_id = int(payload["run-id"])

    status = local.wait_finished(REPO, run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", status
    run_dir = local.runs_root / "deployment" / str(run_id)
    summary, rows = read_summary(run_dir), read_metrics(run_dir)
    assert summary["status"] == "ok" and summary["rounds_aggregated"] == ROUNDS
    assert summary["num_clients"] == summary["clients_discovered"] == SUPERNODES
    assert summary["final_accuracy"] > MIN_ACCURACY
    assert [row["round"] for row in rows] == list(range(1, ROUNDS + 1))
    assert all([c["id"] for c in row["clients"]] == list(range(SUPERNODES)) for row in rows)
    assert all(c["bytes_down"] > 0 and c["bytes_up"] > 0 for row in rows for c in row["clients"])
    written = yaml.safe_load((run_dir / "config.yaml").read_text())["federation"]
    assert (written["num_clients"], written["clients_per_round"], written["min_replies"]) == (2, 2, 2)
    logged = (run_dir / RUN_LOG).read_text()
    assert "Flower's simulation has 2 SuperNode(s): federation.num_clients 3 -> 2" in logged
    assert f"round {ROUNDS}/{ROUNDS} · accuracy" in logged
