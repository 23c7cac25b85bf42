"""The project's own app (`flwr run` on this repository) on a real SuperLink and SuperNodes.

configs/deployment.yaml: 3 digits clients, all trained every round, 2 rounds of FedAvg
at float32. The SuperNodes declare the profile the config assigns them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsparse.results import read_metrics, read_summary
from fedsparse.runlog import RUN_LOG

from ..conftest import REPO
from .apps import MIN_ACCURACY, RUN_SECONDS, model_bytes
from .conftest import NODES
from .processes import Federation

pytestmark = pytest.mark.deployment

ROUNDS = 2


def test_plain_run_trains_and_meters_every_byte(shared_federation: Federation) -> None:
    fed = shared_federation
    run_id = fed.submit(REPO)
    status = fed.wait_finished(run_id, RUN_SECONDS)
    assert status["status"] == "finished:completed", (status, fed.run_log(run_id))

    run_dir = fed.run_dir("deployment", run_id)
    summary, rows = read_summary(run_dir), read_metrics(run_dir)
    assert summary["clients_discovered"] == NODES and summary["rounds_skipped"] == 0
    assert summary["final_accuracy"] > MIN_ACCURACY
    assert [row["round"] for row in rows] == list(range(1, ROUNDS + 1))
    expected = model_bytes("cnn")
    for row in rows:
        assert [c["id"] for c in row["clients"]] == list(range(NODES)) and row["rejected"] == []
        assert all(c["bytes_down"] == c["bytes_up"] == expected for c in row["clients"])
    assert summary["bytes_down_total"] == summary["bytes_up_total"] == ROUNDS * NODES * expected
    assert summary["status"] == "ok" and summary["rounds_aggregated"] == ROUNDS
    logged = (run_dir / RUN_LOG).read_text()  # the run folder a simulated run gets
    assert f"round {ROUNDS}/{ROUNDS} · accuracy" in logged and "finished (ok)" in logged


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_hostile_run_config_reads_and_writes_nothing(shared_federation: Federation, tmp_path: Path) -> None:
    """A ``config`` out of the installed app or an ``out`` out of the operator's results
    root fails the run before the ServerApp reads or writes anything (absolute configs
    and symlinks: tests/deployment/test_paths.py)."""
    fed = shared_federation
    escaped = tmp_path / "escaped"
    before = _files(fed.runs_root)
    runs = [fed.submit(REPO, config="../../../../../../../etc/passwd"), fed.submit(REPO, out=str(escaped))]
    for run_id in runs:
        status = fed.wait_finished(run_id, RUN_SECONDS)
        assert status["status"] == "finished:failed", status
        assert "outside" in str(status["status-details"]) and "refused" in str(status["status-details"]), status
    assert _files(fed.runs_root) == before and not escaped.exists()
