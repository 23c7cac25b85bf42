"""End to end: the CLI, results, hostile clients and real MNIST, on both engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fedsparse.config import read_yaml, validate_config
from fedsparse.models import build_model
from fedsparse.plots import PLOT_FILES
from fedsparse.results import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, read_metrics, read_summary
from fedsparse.runlog import RUN_LOG
from fedsparse.wire import encode_model

from .conftest import REPO
from .helpers import QUICKSTART_STEPS, simulate


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fedsparse run configs/quickstart.yaml | cat`` as a user types it (stdout is a
    pipe, not a terminal); its output is kept beside the run folder as ``stdout.txt``."""
    out = tmp_path_factory.mktemp("quickstart") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", "run", "configs/quickstart.yaml", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "final accuracy" in result.stdout
    (out.parent / "stdout.txt").write_text(result.stdout)
    return out


def test_outside_a_terminal_each_round_is_one_line_and_the_run_log_has_them(quickstart_run: Path) -> None:
    printed = (quickstart_run.parent / "stdout.txt").read_text().splitlines()
    rounds = [line for line in printed if line.startswith("round ")]
    assert len(rounds) == 15 and rounds[0].startswith("round 1/15 · accuracy ") and rounds[-1].endswith(" MB")
    accuracies = [float(line.split("accuracy ")[1].split(" ")[0]) for line in rounds]
    assert accuracies == [round(row["accuracy"], 4) for row in read_metrics(quickstart_run)]
    logged = (quickstart_run / RUN_LOG).read_text().splitlines()
    assert sum(1 for line in logged if " round " in line and "/15 · accuracy" in line) == 15
    assert all(line[:4].isdigit() for line in logged)  # every record timestamped


def test_the_cli_says_what_it_does_before_round_1_and_run_log_times_it(quickstart_run: Path) -> None:
    printed = (quickstart_run.parent / "stdout.txt").read_text().splitlines()
    steps = QUICKSTART_STEPS
    assert printed[: len(steps) + 2] == [
        "checking configs/quickstart.yaml…",
        *(f"{what}…" for what in steps),
        printed[len(steps) + 1],
    ]
    assert printed[len(steps) + 1].startswith("round 1/15 · ")
    logged = [
        line.split("start-up: ")[1]
        for line in (quickstart_run / RUN_LOG).read_text().splitlines()
        if "start-up: " in line
    ]
    assert [line.rsplit(" took ", 1)[0] for line in logged] == ["checking configs/quickstart.yaml", *steps, logged[-1]]
    assert logged[-1].startswith("round 1 begins ") and logged[-1].endswith(" s after the start")


def test_quickstart_reaches_90_percent_and_writes_every_result(quickstart_run: Path) -> None:
    for name in (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, *PLOT_FILES):
        assert (quickstart_run / name).stat().st_size > 0, name
    summary = read_summary(quickstart_run)
    assert summary["final_accuracy"] >= 0.90
    rows = read_metrics(quickstart_run)
    assert summary["rounds_completed"] == len(rows) == 15
    for row in rows:
        assert {"round", "accuracy", "loss", "bytes_up", "bytes_down", "clients"} <= set(row)
        assert len(row["clients"]) == 5
        assert all({"id", "bytes_up", "bytes_down", "num_examples"} <= set(c) for c in row["clients"])
    resolved = validate_config(read_yaml(quickstart_run / CONFIG_FILE))
    assert resolved.federation.rounds == 15  # the resolved config loads again


def test_ledger_equals_the_encoded_sizes(quickstart_run: Path) -> None:
    summary, rows = read_summary(quickstart_run), read_metrics(quickstart_run)
    cfg = validate_config(read_yaml(quickstart_run / CONFIG_FILE))
    model_bytes = encode_model(build_model(cfg.model.name, (1, 8, 8), 10)).count_bytes()
    params = summary["model_parameters"]
    assert 4 * params < model_bytes < 4 * params + 1500  # float32 + a small fixed header
    for row in rows:
        for client in row["clients"]:
            assert client["bytes_down"] == model_bytes and client["bytes_up"] == model_bytes
        assert row["bytes_down"] == sum(c["bytes_down"] for c in row["clients"])
        assert row["bytes_up"] == sum(c["bytes_up"] for c in row["clients"])
    assert summary["bytes_up_total"] == sum(r["bytes_up"] for r in rows)
    assert summary["bytes_down_total"] == sum(r["bytes_down"] for r in rows)


def test_plot_command_redraws(quickstart_run: Path) -> None:
    for name in PLOT_FILES:
        (quickstart_run / name).unlink()
    result = subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", "plot", str(quickstart_run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert all((quickstart_run / name).stat().st_size > 5000 for name in PLOT_FILES)


@pytest.mark.parametrize("backend", ["inline", "ray"])
def test_hostile_replies_are_rejected_and_the_run_goes_on(tmp_path: Path, backend: str) -> None:
    from .hostile_client import EXPECTED_REASONS, app

    rows, summary = simulate(
        "quickstart.yaml",
        tmp_path,
        "federation.rounds=3",
        "federation.clients_per_round=10",
        "federation.min_replies=3",
        "federation.max_skipped_share=0.25",
        "output.plots=false",
        f"engine.backend={backend}",
        client_app=app,
    )
    first, second, third = rows
    assert not first["skipped"] and not third["skipped"]
    reasons = {r["id"]: r["reason"] for r in first["rejected"]}
    assert sorted(reasons) == sorted(EXPECTED_REASONS)
    for cid, expected in EXPECTED_REASONS.items():
        assert expected in reasons[cid], (cid, reasons[cid])
    assert second["skipped"] and sorted(r["id"] for r in second["rejected"]) == list(range(8))
    assert summary["rounds_skipped"] == 1 and summary["rounds_aggregated"] == 2
    assert summary["status"] == "degraded" and summary["replies_rejected"] == 7 + 8 + 6
    assert summary["status_reason"].startswith("1 of 3 rounds skipped (federation.max_skipped_share is 0.25)")
    assert json.dumps(rows)  # every row serializable, no NaN leaked into the metrics
    assert third["accuracy"] > 0.3 and summary["final_accuracy"] == third["accuracy"]
    assert 6 in {c["id"] for c in third["clients"] if c["num_examples"] is not None}  # honest again: counted
    logged = (tmp_path / RUN_LOG).read_text()
    assert f"WARNING fedsparse.server: {summary['status_reason']}" in logged
    for row in rows:
        for rejection in row["rejected"]:
            assert f"rejected reply of client {rejection['id']}: {rejection['reason']}" in logged


def test_a_run_that_aggregates_no_round_fails_loudly(tmp_path: Path) -> None:
    """Every reply rejected (here: each client misses a 1 µs deadline): ``fedsparse run``
    exits 1 with the reason on one line and no traceback; ``summary.json`` and
    ``run.log`` say the same."""
    out = tmp_path / "run"
    settings = ["federation.rounds=2", "federation.clients_per_round=3", "federation.deadline_seconds=0.000001"]
    result = subprocess.run(
        [sys.executable, "-m", "fedsparse.cli", "run", "configs/quickstart.yaml", "--out", str(out), "--no-progress"]
        + [arg for setting in [*settings, "output.plots=false"] for arg in ("--set", setting)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: no round aggregated (2 of 2 skipped); rejected replies: 6x 'missed the 1e-06 s")
    summary = read_summary(out)
    assert (summary["status"], summary["rounds_aggregated"], summary["replies_rejected"]) == ("failed", 0, 6)
    assert summary["status_reason"] == last.removeprefix("error: ")
    assert summary["top_rejections"][0]["count"] == 6
    assert f"ERROR   fedsparse.app: run failed: {summary['status_reason']}" in (out / RUN_LOG).read_text()


def test_a_client_past_the_round_timeout_is_left_out_and_the_round_completes(tmp_path: Path) -> None:
    from .hostile_client import SLOW_CLIENT, SLOW_SECONDS, slow_app

    rows, summary = simulate(
        "quickstart.yaml",
        tmp_path,
        "federation.rounds=2",
        "federation.clients_per_round=10",
        f"federation.round_timeout={SLOW_SECONDS - 1}",
        "output.plots=false",
        "engine.backend=inline",
        client_app=slow_app,
    )
    first, second = rows
    assert first["rejected"] == [{"id": SLOW_CLIENT, "reason": "no reply before the round timeout"}]
    assert not first["skipped"] and not second["skipped"] and second["rejected"] == []
    answered = {c["id"] for c in first["clients"] if c["num_examples"] is not None}
    assert answered == set(range(10)) - {SLOW_CLIENT}
    assert summary["final_accuracy"] > 0.3


@pytest.mark.parametrize(
    ("config", "rounds", "minimum"),
    [("mnist_iid.yaml", 3, 0.97), ("mnist_dirichlet.yaml", 3, 0.90)],
)
def test_fedavg_on_real_mnist(tmp_path: Path, mnist_dir: Path, config: str, rounds: int, minimum: float) -> None:
    rows, summary = simulate(
        config,
        tmp_path,
        f"data.path={mnist_dir}",
        f"federation.rounds={rounds}",
        "output.plots=false",
        "engine.backend=inline",
    )
    assert summary["final_accuracy"] >= minimum
    assert rows[0]["accuracy"] < summary["final_accuracy"]
