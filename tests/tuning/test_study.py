"""``fedsparse tune`` on digits: reproducible trials, resuming without repeating a
finished trial, and a test split that tuning never reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fedsparse.comparison.execute import SeedResult
from fedsparse.tuning import tune
from fedsparse.tuning.plan import TUNING_SEED_OFFSET, plan_tune
from fedsparse.tuning.report import TRIALS_CSV, TUNED_DIR
from fedsparse.tuning.study import trial_score, validation_score

from ..conftest import REPO

QUICKSTART = REPO / "configs" / "quickstart.yaml"
SETTINGS = ["federation.rounds=3", "federation.num_clients=5", "federation.clients_per_round=5"]


def _plan(out: Path, *extra: str, plugins: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return plan_tune(
        QUICKSTART, [*SETTINGS, *extra], strategies=["fedavg", "fedprox"], trials=3, seeds=1, out=out, plugins=plugins
    )


def _tuned_files(out: Path) -> dict[str, Any]:
    """trials.csv and every tuned config, the command (which names the folder) left out."""
    files: dict[str, Any] = {TRIALS_CSV: (out / TRIALS_CSV).read_text()}
    for path in sorted((out / TUNED_DIR).glob("*.yaml")):
        files[path.name] = yaml.safe_load(path.read_text())
        files[path.name].get("compare", {}).get("tuning", {}).pop("command", None)
    return files


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "plain"
    tune(_plan(out), report=lambda line: None)
    return out


def test_the_objective_is_the_mean_validation_accuracy_of_the_last_rounds_over_seeds() -> None:
    rows = [{"round": r, "val_accuracy": v} for r, v in enumerate([0.1, 0.5, 0.6, 0.7], start=1)]
    assert validation_score([*rows, {"round": 5}], 3) == pytest.approx(0.6)
    assert validation_score([{"round": 1, "accuracy": 0.9}], 3) is None
    runs = [SeedResult("fedavg", s, Path("."), {}, rows) for s in (0, 1)]
    assert trial_score(runs, 2) == pytest.approx(0.65)
    failed = SeedResult("fedavg", 2, Path("."), {}, [], failure="failed: diverged")
    assert trial_score([*runs, failed], 2) is None


def test_the_same_study_seed_gives_the_same_trials_and_tuned_configs(uninterrupted: Path, tmp_path: Path) -> None:
    tune(_plan(tmp_path / "again"), report=lambda line: None)
    first, second = _tuned_files(uninterrupted), _tuned_files(tmp_path / "again")
    assert first == second
    lines = first[TRIALS_CSV].splitlines()
    assert len(lines) == 1 + 2 * 3  # header, 3 trials per strategy
    assert {line.split(",")[2] for line in lines[1:]} == {"complete"}
    # trial 0 is the config's own setting; the others differ from it
    fedavg = [line.split(",") for line in lines[1:] if line.startswith("fedavg,")]
    assert fedavg[0][5:8] == ["2", "0.05", "0.9"]
    assert len({tuple(row[5:8]) for row in fedavg}) == 3


def test_an_interrupted_tune_resumes_without_repeating_finished_trials(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"

    class Interrupt(Exception):
        pass

    def stop_at_second_wave(line: str) -> None:
        if line.startswith("wave 2:"):
            raise Interrupt

    with pytest.raises(Interrupt):
        tune(_plan(out), report=stop_at_second_wave)
    finished = out / "runs" / "fedavg" / "trial0" / f"seed{TUNING_SEED_OFFSET}" / "summary.json"
    stamp = finished.stat().st_mtime_ns
    lines: list[str] = []
    tune(_plan(out), report=lines.append)
    assert finished.stat().st_mtime_ns == stamp  # trial 0 was not run again
    assert not any(line.startswith("wave") and "trial 0" in line for line in lines)
    assert sum(line.startswith("wave") for line in lines) == 2  # trial 1 (left running) and trial 2
    assert _tuned_files(out) == _tuned_files(uninterrupted)


def test_tuning_never_reads_the_test_split(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "poisoned"
    plan = _plan(out, "data.dataset=digits_poisoned_test", plugins=("tests.tuning.poisoned_digits",))
    tune(plan, report=lambda line: None)
    assert (out / TRIALS_CSV).read_text() == (uninterrupted / TRIALS_CSV).read_text()
    for run in (out / "runs").rglob("metrics.jsonl"):
        assert '"accuracy":' not in run.read_text()  # no round was evaluated on the test split
